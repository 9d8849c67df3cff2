"""The run directory's prepared data: vocabulary from train only, save/load round trip, and
refusing files that do not belong together."""
import json

import numpy as np
import pandas as pd
import pytest

from sentiment_lib.runtime import lock as run_lock
from sentiment_lib import config, profiles, rundir
from sentiment_lib.rundir import Prepared, encode_reviews, load_prepared, prepared_dir, save_prepared
from sentiment_lib.text import UNK, tokenize


@pytest.fixture
def subsets(frame_from_rows):
    rows = [
        ("train", 1, "A great film, great acting."),
        ("train", 0, "A bad film, bad acting!"),
        ("train", 1, "Great fun."),
        ("train", 0, "!!! ..."),  # no token left after cleaning: dropped
        ("train", 0, "Bad, bad, bad."),
        ("test", 1, "A great zebra."),  # 'zebra' only occurs in test
        ("test", 0, "Bad zebra film."),
        ("train", 1, "Great film."),
        ("train", 0, "Bad acting."),
    ]
    frame = frame_from_rows(rows)
    frame["subset"] = ["train"] * 5 + ["test"] * 2 + ["val"] * 2
    frame.loc[4, "rating"] = pd.NA  # a CSV-style missing rating becomes -1
    return frame


def prepare(frame, **params):
    vocab, splits, kept, stats = encode_reviews(frame, vocab_size=100, min_freq=1, remove_stopwords=False)
    return Prepared({"profile": "smoke", **params}, vocab, splits, kept), stats


def test_vocab_comes_from_train_only(subsets):
    (prep, stats) = prepare(subsets)
    assert "zebra" not in prep.vocab and "great" in prep.vocab and "bad" in prep.vocab
    test_ids = [ids.tolist() for ids in prep.splits["test"].ids]
    assert test_ids[0] == [prep.vocab.stoi[t] if t != "zebra" else UNK for t in ["a", "great", "zebra"]]
    assert UNK in test_ids[1]
    assert stats["dropped_empty"] == 1
    assert [len(s) for s in prep.splits.values()] == [4, 2, 2]
    assert prep.splits["train"].ratings.tolist() == [8, 3, 8, -1]


def test_save_and_load_round_trip(tmp_path, subsets):
    prep, _ = prepare(subsets, max_len=16)
    save_prepared(prepared_dir(tmp_path / "run"), prep)
    assert sorted(p.name for p in (tmp_path / "run" / "prepared").iterdir()) == \
        ["encoded.npz", "params.json", "reviews.parquet", "vocab.json"]
    loaded = load_prepared(tmp_path / "run")
    assert loaded.vocab.itos == prep.vocab.itos
    assert loaded.params["max_len"] == 16 and loaded.params["vocab_fingerprint"] == prep.vocab.fingerprint()
    for name in ("train", "val", "test"):
        a, b = prep.splits[name], loaded.splits[name]
        assert [x.tolist() for x in a.ids] == [x.tolist() for x in b.ids]
        assert a.labels.tolist() == b.labels.tolist() and a.ratings.tolist() == b.ratings.tolist()
        # The reviews table lines up with the encoded rows.
        texts = loaded.texts(name)
        assert len(texts) == len(b)
        for text, ids in zip(texts, b.ids):
            assert loaded.vocab.encode(tokenize(text)).tolist() == ids.tolist()
        assert loaded.reviews.loc[loaded.reviews["subset"] == name, "label"].tolist() == b.labels.tolist()


def test_the_unlabelled_reviews_round_trip_and_older_run_directories_load_without_them(tmp_path, subsets):
    from sentiment_lib.batching import EncodedSplit

    prep, _ = prepare(subsets)
    extra = EncodedSplit([np.array([2, 3], dtype=np.int32), np.array([4], dtype=np.int32)], np.array([-1, -1]))
    save_prepared(prepared_dir(tmp_path / "with"), Prepared(prep.params, prep.vocab, prep.splits, prep.reviews,
                                                            unlabelled=extra))
    loaded = load_prepared(tmp_path / "with").unlabelled
    assert [row.tolist() for row in loaded.ids] == [[2, 3], [4]] and loaded.labels.tolist() == [-1, -1]
    save_prepared(prepared_dir(tmp_path / "without"), prep)
    assert load_prepared(tmp_path / "without").unlabelled is None
    assert rundir.without_stopwords(load_prepared(tmp_path / "with")).unlabelled is None


def test_load_by_profile_name_uses_the_run_dir(subsets):
    prep, _ = prepare(subsets)
    save_prepared(prepared_dir("smoke"), prep)
    assert prepared_dir("smoke") == config.run_dir("smoke") / "prepared"
    assert load_prepared("smoke", expect_profile="smoke").vocab.itos == prep.vocab.itos


def test_missing_prepared_data_names_notebook_02(tmp_path):
    with pytest.raises(FileNotFoundError, match="02_preprocessing") as err:
        load_prepared("quick")
    assert "PROFILE=quick" in str(err.value)
    with pytest.raises(FileNotFoundError, match="02_preprocessing"):
        load_prepared(tmp_path / "nowhere")


def test_another_runs_vocab_is_refused(tmp_path, subsets):
    prep, _ = prepare(subsets)
    save_prepared(prepared_dir(tmp_path / "a"), prep)
    other, _ = prepare(subsets.assign(text=subsets["text"].str.replace("great", "superb", case=False)))
    save_prepared(prepared_dir(tmp_path / "b"), other)
    (tmp_path / "a" / "prepared" / "vocab.json").write_text(
        (tmp_path / "b" / "prepared" / "vocab.json").read_text())
    with pytest.raises(ValueError, match="vocab.json .* does not match"):
        load_prepared(tmp_path / "a")


def test_profile_mismatch_is_refused(tmp_path, subsets):
    prep, _ = prepare(subsets)
    save_prepared(prepared_dir(tmp_path / "run"), prep)
    with pytest.raises(ValueError, match="made for profile 'smoke', not 'quick'"):
        load_prepared(tmp_path / "run", expect_profile="quick")


def test_save_writes_params_last_so_a_partial_dir_reads_as_missing(tmp_path, subsets):
    prep, _ = prepare(subsets)
    directory = prepared_dir(tmp_path / "run")
    save_prepared(directory, prep)
    params = json.loads((directory / "params.json").read_text())
    assert params["vocab_len"] == len(prep.vocab) and params["profile"] == "smoke"
    (directory / "params.json").unlink()
    with pytest.raises(FileNotFoundError):
        load_prepared(tmp_path / "run")


def test_ids_beyond_the_vocab_are_refused(tmp_path, subsets):
    prep, _ = prepare(subsets)
    big = prep.splits["train"].ids[0].copy()
    big[0] = len(prep.vocab) + 5
    prep.splits["train"].ids[0] = big
    save_prepared(prepared_dir(tmp_path / "run"), prep)
    with pytest.raises(ValueError, match="exceed the vocabulary"):
        load_prepared(tmp_path / "run")


def test_the_manifest_merges_sections_and_keys_in_the_run_directory(isolated_dirs):
    assert rundir.read_manifest("smoke") == {}
    rundir.record("smoke", "data", {"reviews": 10, "distinct": 9})
    rundir.record("smoke", "models", {"lstm": {"accuracy": 0.8}})
    rundir.record("smoke", "data", {"distinct": 8, "vocab": 100})
    summary = json.loads(config.manifest_path("smoke").read_text())
    assert summary == {"profile": "smoke", "data": {"reviews": 10, "distinct": 8, "vocab": 100},
                       "models": {"lstm": {"accuracy": 0.8}}}
    assert config.manifest_path("smoke") == isolated_dirs["artifacts"].resolve() / "smoke" / "metrics.json"
    rundir.record("smoke", "data", {"only": 1}, merge=False)
    assert rundir.read_manifest("smoke")["data"] == {"only": 1}
    assert rundir.read_manifest("smoke")["models"] == {"lstm": {"accuracy": 0.8}}
    assert rundir.read_manifest("quick") == {}


def test_without_stopwords_drops_them_from_every_review_and_keeps_negations():
    from sentiment_lib.batching import EncodedSplit
    from sentiment_lib.text import Vocab

    vocab = Vocab(["<pad>", "<unk>", "the", "film", "not", "good", "and", "is"])
    split = EncodedSplit([np.array([2, 3, 7, 4, 5]), np.array([2, 6]), np.array([3, 1])], np.array([1, 0, 1]))
    prepared = rundir.Prepared({"remove_stopwords": False}, vocab, {"train": split}, pd.DataFrame())
    filtered = rundir.without_stopwords(prepared)
    words = [[vocab.itos[i] for i in ids] for ids in filtered.splits["train"].ids]
    assert words == [["film", "not", "good"], ["the"], ["film", "<unk>"]]  # only stop words: the first stays
    assert filtered.params["remove_stopwords"] is True and prepared.params["remove_stopwords"] is False
    assert [len(ids) for ids in prepared.splits["train"].ids] == [5, 2, 2]  # the original is untouched


def test_an_empty_lock_left_by_a_dead_run_is_taken_over():
    import os
    import time

    path = config.run_dir("smoke") / run_lock.LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    old = time.time() - 60
    os.utime(path, (old, old))
    with run_lock.lock("smoke") as held:
        assert f'"pid": {os.getpid()}' in held.read_text()
    assert not path.exists()


def test_the_run_settings_table_shows_the_ladder_rows_only_where_asked(subsets):
    prep, _ = prepare(subsets)
    params = profiles.resolve("smoke", ladder_epochs=7, vat=0.3)
    plain, with_ladder = rundir.run_settings(params, prep), rundir.run_settings(params, prep, ladder=True)
    assert plain.loc["train reviews"].item() == f"{len(prep.splits['train']):,}"
    assert not any("ladder" in row for row in plain.index)
    assert with_ladder.loc["ladder networks: epochs"].item() == "up to 7"
    assert with_ladder.loc["ladder networks: ε of AT / VAT"].item() == "0.25 / 0.3"
    without_vat = rundir.run_settings(params.replace(vat=0.0), prep, ladder=True)
    assert without_vat.loc["ladder networks: ε of AT / VAT"].item() == "0.25 / off"
    assert with_ladder.drop(["ladder networks: epochs", "ladder networks: ε of AT / VAT"]).equals(plain)
