"""Exploration statistics on a tiny reviews table."""
import pytest

from sentiment_lib import eda
from sentiment_lib.text import stop_words, tokenize


@pytest.fixture
def reviews(frame_from_rows):
    return frame_from_rows([
        ("train", 1, "A great film.<br />Great!"),
        ("train", 1, "A great film.<br />Great!"),  # duplicate, same label
        ("train", 0, "Same text, two labels"),
        ("train", 1, "Same text, two labels"),  # duplicate, conflicting label
        ("train", 0, "Shared with test &amp; bad"),
        ("test", 0, "Shared with test &amp; bad"),  # in both splits
        ("test", 1, " ".join(["word"] * 250)),
        ("test", 0, " ".join(["bad"] * 120)),
        ("train", -1, "A great film.<br />Great!"),  # unlabelled: ignored by duplicates
    ])


def test_duplicates_counts(reviews):
    assert eda.duplicates(reviews) == {"labelled": 8, "distinct_texts": 5, "duplicate_rows": 3,
                                       "conflicting_labels": 1, "train_test_overlap": 1}


def test_length_bins_cover_every_review(reviews):
    lens = eda.lengths(reviews)
    assert lens["words"].tolist()[6:8] == [250, 120]
    table = eda.length_bins(lens)
    assert table["share_of_reviews"].sum() == pytest.approx(1.0, abs=1e-3)
    assert table["reviews"].sum() == len(reviews)
    assert table["reviews"].iloc[0] == 7 and table["reviews"].iloc[1] == 1 and table["reviews"].iloc[2] == 1
    assert table["positive_share"].iloc[2] == 1.0  # the 250-word review is positive


def test_top_words_excludes_stop_words(reviews):
    tokens = [tokenize(t) for t in reviews["text"]]
    table = eda.top_words(tokens, n=5)
    assert table["word"].iloc[0] == "word" and table["count"].iloc[0] == 250
    assert set(table["word"]).isdisjoint(stop_words())
    assert "a" not in set(table["word"]) and "with" not in set(table["word"])
    per_label = eda.top_words(tokens, labels=reviews["label"], n=3)
    assert set(per_label["label"]) == {"positive", "negative", "unlabelled"}
    assert per_label.groupby("label")["share"].sum().le(1.0 + 1e-9).all()
    kept = eda.top_words([["the", "the", "film"]], n=5, remove_stopwords=False)
    assert kept["word"].tolist() == ["the", "film"]


def test_html_noise_and_overview(reviews):
    noise = eda.html_noise(reviews)
    assert noise["reviews"] == 9 and noise["tags_total"] == 3 and noise["top_tags"] == {"<br />": 3}
    assert noise["share_with_entity"] == pytest.approx(2 / 9)
    table = eda.overview(reviews)
    assert table.loc["train", "total"] == 6 and table.loc["test", "total"] == 3
    assert table.loc["train", "unlabelled"] == 1 and table["empty_text"].sum() == 0
