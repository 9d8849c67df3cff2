"""Train / validation / test splits: leakage-free, stratified, seeded; subsampling."""
import pandas as pd
import pytest

from sentiment_lib.data import DataError
from sentiment_lib.splits import class_balance, make_splits, subsample


@pytest.fixture
def official(frame_from_rows):
    """60 distinct training reviews (30/30), 3 in-train duplicates, 2 training copies of test
    reviews, 40 test reviews (one of them a duplicate inside test) and 5 unlabelled ones."""
    rows = [("train", i % 2, f"train review {i}") for i in range(60)]
    rows += [("train", 0, "train review 0"), ("train", 1, "train review 1"), ("train", 1, "train review 3")]
    rows += [("train", 1, "test review 1"), ("train", 0, "test review 2")]
    rows += [("test", i % 2, f"test review {i}") for i in range(39)] + [("test", 0, "test review 0")]
    rows += [("train", -1, f"unlabelled {i}") for i in range(5)]
    return frame_from_rows(rows)


def test_standard_split_keeps_test_whole_and_drops_leaks(official):
    out, report = make_splits(official, "standard", val_fraction=0.1, seed=0)
    test = out[out["subset"] == "test"]
    expected_test = official[official["split"] == "test"]
    assert sorted(test["text"]) == sorted(expected_test["text"])  # all 40, the duplicate included
    train_val = out[out["subset"] != "test"]
    assert train_val["text"].is_unique
    assert set(train_val["text"]).isdisjoint(test["text"])
    assert set(train_val["text"]) == {f"train review {i}" for i in range(60)}
    assert (out["label"] >= 0).all()
    assert report.duplicates_within_train == 3 and report.cross_split_duplicates == 2
    assert report.dropped == 5 and report.labelled_reviews == 105
    assert report.sizes == {"train": 54, "val": 6, "test": 40}
    assert out["subset"].tolist() == ["train"] * 54 + ["val"] * 6 + ["test"] * 40


def test_standard_validation_is_stratified_and_seeded(official):
    out, _ = make_splits(official, "standard", val_fraction=0.2, seed=1)
    val = out[out["subset"] == "val"]
    assert len(val) == 12 and val["label"].sum() == 6
    again, _ = make_splits(official, "standard", val_fraction=0.2, seed=1)
    other, _ = make_splits(official, "standard", val_fraction=0.2, seed=2)
    pd.testing.assert_frame_equal(out, again)
    assert set(other.loc[other["subset"] == "val", "text"]) != set(val["text"])


@pytest.fixture
def pooled(frame_from_rows):
    """200 distinct labelled texts (100/100) spread over both official splits, plus duplicates
    (inside train, and across train and test)."""
    rows = [("train" if i < 100 else "test", i % 2, f"review {i}") for i in range(200)]
    rows += [("train", 0, "review 0"), ("test", 0, "review 2"), ("test", 1, "review 5")]
    return frame_from_rows(rows)


def test_random_split_is_70_15_15_with_no_text_in_two_subsets(pooled):
    out, report = make_splits(pooled, "random", seed=0)
    assert report.sizes == {"train": 140, "val": 30, "test": 30}
    assert out["text"].is_unique
    assert set(out["text"]) == {f"review {i}" for i in range(200)}
    for name, part in out.groupby("subset"):
        assert part["label"].mean() == pytest.approx(0.5), name
    assert report.duplicates_within_train == 3 and report.cross_split_duplicates == 2
    assert report.distinct_texts == 200


def test_same_seed_same_split_other_seed_other_split(pooled):
    a, _ = make_splits(pooled, "random", seed=7)
    b, _ = make_splits(pooled, "random", seed=7)
    c, _ = make_splits(pooled, "random", seed=8)
    pd.testing.assert_frame_equal(a, b)
    assert set(a.loc[a["subset"] == "test", "text"]) != set(c.loc[c["subset"] == "test", "text"])


def test_standard_split_of_a_csv_source_suggests_random(frame_from_rows):
    frame = frame_from_rows([("all", i % 2, f"r{i}") for i in range(20)])
    with pytest.raises(DataError, match="SPLIT='random'"):
        make_splits(frame, "standard")
    out, _ = make_splits(frame, "random")
    assert len(out) == 20


def test_unknown_split_method_is_refused(pooled):
    with pytest.raises(ValueError, match="'standard' or 'random'"):
        make_splits(pooled, "x")


def test_subsample_sizes_and_stratification(pooled):
    out, _ = make_splits(pooled, "random", seed=0)
    small = subsample(out, {"train": 20, "val": 10, "test": None}, seed=3)
    counts = small["subset"].value_counts().to_dict()
    assert counts == {"train": 20, "val": 10, "test": 30}
    assert small.loc[small["subset"] == "train", "label"].sum() == 10
    assert small.loc[small["subset"] == "val", "label"].sum() == 5
    assert set(small["text"]) <= set(out["text"])
    assert small["subset"].tolist() == ["train"] * 20 + ["val"] * 10 + ["test"] * 30
    pd.testing.assert_frame_equal(small, subsample(out, {"train": 20, "val": 10, "test": None}, seed=3))
    # Asking for more than there is keeps everything.
    assert len(subsample(out, {"train": 10_000}, seed=0)) == len(out)
    with pytest.raises(ValueError, match="at least 2"):
        subsample(out, {"train": 1})


def test_class_balance(pooled):
    out, _ = make_splits(pooled, "random", seed=0)
    table = class_balance(out)
    assert table.index.tolist() == ["train", "val", "test"]
    assert table.loc["train", "reviews"] == 140 and table.loc["train", "positive"] == 70
    assert (table["positive_share"] == 0.5).all()
