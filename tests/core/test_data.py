"""Data acquisition: parsing the three source kinds, finding the source, checksums, hostile or
damaged archives, malformed reviews and CSVs, and the parquet cache."""
import gzip
import hashlib
import json
import os
import shutil
import tarfile

import numpy as np
import pandas as pd
import pytest

from sentiment_lib import data
from sentiment_lib.data import DataError
from sentiment_lib.files import atomic_path, write_json_atomic

COLUMNS = ["split", "id", "rating", "label", "text"]
DTYPES = {"split": "string", "id": "int32", "rating": "Int8", "label": "int8", "text": "string"}


def as_rows(frame):
    return [(s, int(i), None if pd.isna(r) else int(r), int(y), t)
            for s, i, r, y, t in frame[COLUMNS].itertuples(index=False)]


def cache_files():
    """Everything in the cache dir, temp files included."""
    folder = data.cache_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


def test_archive_parses_into_the_typed_reviews_table(tiny_archive, tiny_table):
    frame = data.read_archive(tiny_archive)
    assert list(frame.columns) == COLUMNS
    assert {c: str(t) for c, t in frame.dtypes.items()} == DTYPES
    assert as_rows(frame) == tiny_table
    unsup = frame[frame["text"] == "An unlabelled review about a film."]
    assert unsup["label"].tolist() == [-1] and unsup["rating"].tolist() == [0]
    # README, urls_*.txt and directory members are skipped; the text is kept as written (HTML, UTF-8).
    assert len(frame) == 7
    assert "<br /><br />" in frame["text"].iloc[2]
    assert "Amélie" in frame["text"].iloc[3]


def test_extracted_folder_and_its_parent_give_the_archive_table(tiny_archive, tiny_folder):
    expected = data.read_archive(tiny_archive)
    pd.testing.assert_frame_equal(data.read_folder(tiny_folder), expected)
    pd.testing.assert_frame_equal(data.read_folder(tiny_folder.parent), expected)


def test_csv_parses_with_split_all_and_no_ratings(tiny_csv):
    frame = data.read_csv(tiny_csv)
    assert list(frame.columns) == COLUMNS
    assert {c: str(t) for c, t in frame.dtypes.items()} == DTYPES
    assert frame["split"].tolist() == ["all"] * 4
    assert frame["id"].tolist() == [0, 1, 2, 3]
    assert frame["rating"].isna().all()
    assert frame["label"].tolist() == [1, 0, 1, 0]  # " Positive " and "NEGATIVE" are normalised
    assert frame["text"].tolist()[:2] == ['A wonderful film, with "quotes" and a comma.',
                                          "Terrible.\nTwo lines, even."]


def test_load_reviews_reads_each_source_kind(tiny_archive, tiny_folder, tiny_csv, tiny_table):
    assert as_rows(data.load_reviews(tiny_archive)) == tiny_table
    assert as_rows(data.load_reviews(tiny_folder)) == tiny_table
    assert data.load_reviews(str(tiny_csv))["split"].unique().tolist() == ["all"]


def test_labelled_drops_the_unlabelled_reviews(tiny_archive):
    frame = data.read_archive(tiny_archive)
    assert sorted(data.labelled(frame)["label"].unique().tolist()) == [0, 1]
    assert len(data.labelled(frame)) == 6


# --------------------------------------------------------------------------------------------
# Finding the source
# --------------------------------------------------------------------------------------------


def test_find_source_prefers_argument_then_env_then_archive_folder_csv(
        tmp_path, monkeypatch, make_archive, make_folder, make_csv):
    raw = data.raw_dir()
    archive = make_archive(raw / data.ARCHIVE_NAME)
    folder = make_folder(raw)
    csv = make_csv(raw / data.CSV_NAME)
    assert data.find_source() == archive.resolve()
    archive.unlink()
    assert data.find_source() == folder.resolve()
    shutil.rmtree(folder)
    assert data.find_source() == csv.resolve()

    other = make_csv(tmp_path / "elsewhere.csv")
    monkeypatch.setenv("IMDB_SOURCE", str(other))
    assert data.find_source() == other.resolve()
    explicit = make_csv(tmp_path / "explicit.csv")
    assert data.find_source(explicit) == explicit.resolve()


def test_no_source_anywhere_names_make_data_and_imdb_source():
    with pytest.raises(DataError) as err:
        data.find_source()
    message = str(err.value)
    assert "make data" in message and "IMDB_SOURCE" in message
    assert str(data.raw_dir()) in message
    with pytest.raises(DataError, match="make data"):
        data.load_reviews()


def test_imdb_source_pointing_nowhere_is_an_error(tmp_path, monkeypatch):
    missing = tmp_path / "nope.tar.gz"
    monkeypatch.setenv("IMDB_SOURCE", str(missing))
    with pytest.raises(DataError) as err:
        data.find_source()
    assert str(missing) in str(err.value) and "IMDB_SOURCE" in str(err.value)


# --------------------------------------------------------------------------------------------
# Checksums
# --------------------------------------------------------------------------------------------


def test_verify_checksum_accepts_the_right_digest_in_every_spelling(tiny_archive):
    raw = tiny_archive.read_bytes()
    sha, md5 = hashlib.sha256(raw).hexdigest(), hashlib.md5(raw).hexdigest()
    data.verify_checksum(tiny_archive, f"sha256:{sha}")
    data.verify_checksum(tiny_archive, sha.upper())  # bare hex is sha256
    data.verify_checksum(tiny_archive, f"md5:{md5}")


def test_wrong_checksum_raises_naming_the_fix(tiny_archive):
    with pytest.raises(DataError) as err:
        data.verify_checksum(tiny_archive, "sha256:" + "0" * 64)
    message = str(err.value)
    assert "Checksum mismatch" in message and "make data" in message and "IMDB_SHA256" in message
    assert hashlib.sha256(tiny_archive.read_bytes()).hexdigest() in message


def test_load_reviews_checks_expected_hash_and_env_before_parsing(tiny_archive, monkeypatch):
    with pytest.raises(DataError, match="Checksum mismatch"):
        data.load_reviews(tiny_archive, expected_hash="md5:" + "f" * 32)
    assert cache_files() == []
    monkeypatch.setenv("IMDB_SHA256", "sha256:" + "1" * 64)
    with pytest.raises(DataError, match="IMDB_SHA256"):
        data.load_reviews(tiny_archive)
    assert cache_files() == []
    monkeypatch.setenv("IMDB_SHA256", "sha256:" + hashlib.sha256(tiny_archive.read_bytes()).hexdigest())
    assert len(data.load_reviews(tiny_archive)) == 7


# --------------------------------------------------------------------------------------------
# Damaged and hostile archives
# --------------------------------------------------------------------------------------------


def test_truncated_archive_is_refused_and_leaves_no_cache(tiny_archive, tiny_csv):
    _, good = data.load_reviews(tiny_csv, return_info=True)  # the cache dir exists, with one table
    raw = tiny_archive.read_bytes()
    tiny_archive.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError) as err:
        data.load_reviews(tiny_archive)
    assert "truncated or corrupt" in str(err.value) and "make data" in str(err.value)
    assert cache_files() == [good.cache.name]  # no new table, no temp file


@pytest.mark.parametrize("compress", [False, True], ids=["tar", "tar.gz"])
def test_tar_cut_at_a_header_boundary_is_refused(tmp_path, make_archive, compress):
    """tarfile alone reads such an archive as a shorter, complete one (silently dropping reviews)."""
    plain = make_archive(tmp_path / "full.tar", mode="w").read_bytes()
    # Cut right after the third member's data, at a 512-byte boundary: a complete-looking prefix.
    with tarfile.open(tmp_path / "full.tar") as tar:
        third = tar.getmembers()[6]  # 3 dirs, README, urls, then reviews
        cut = third.offset_data + -(-third.size // 512) * 512
    prefix = plain[:cut] + b"x" * 100  # and a partial header
    path = tmp_path / ("cut.tar.gz" if compress else "cut.tar")
    path.write_bytes(gzip.compress(prefix) if compress else prefix)
    with pytest.raises(DataError, match="truncated or corrupt"):
        data.read_archive(path)
    path.write_bytes(gzip.compress(plain[:cut]) if compress else plain[:cut])  # no end marker at all
    with pytest.raises(DataError, match="truncated or corrupt"):
        data.read_archive(path)


def test_gzip_with_a_corrupt_crc_is_refused(tiny_archive):
    raw = bytearray(tiny_archive.read_bytes())
    raw[-8] ^= 0xFF  # the CRC32 in the gzip trailer
    tiny_archive.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="truncated or corrupt"):
        data.read_archive(tiny_archive)


def test_plain_uncompressed_archive_is_read(tmp_path, make_archive, tiny_table):
    path = make_archive(tmp_path / "aclImdb_v1.tar", mode="w")
    assert as_rows(data.read_archive(path)) == tiny_table


def _symlink(name, target):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


def _hardlink(name, target):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.LNKTYPE, target
    return info


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "hardlink"])
def test_archive_with_an_escaping_member_is_refused_and_writes_nothing(
        tmp_path, monkeypatch, make_archive, kind):
    work = tmp_path / "work" / "deep"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    outside = tmp_path / "work" / "evil.txt"
    absolute = tmp_path / "abs_evil.txt"
    extra = {
        "dotdot": [(tarfile.TarInfo("../evil.txt"), b"pwned")],
        "absolute": [(tarfile.TarInfo(str(absolute)), b"pwned")],
        "symlink": [_symlink("aclImdb/train/pos/5_8.txt", str(outside))],
        "hardlink": [_hardlink("aclImdb/train/pos/5_8.txt", "../evil.txt")],
    }[kind]
    path = make_archive(tmp_path / "src" / "aclImdb_v1.tar.gz", extra=extra)
    with pytest.raises(DataError) as err:
        data.load_reviews(path)
    assert "Refusing archive" in str(err.value)
    assert not outside.exists() and not absolute.exists()
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "src" / "evil.txt").exists()
    assert sorted(p.name for p in (tmp_path / "src").iterdir()) == ["aclImdb_v1.tar.gz"]
    assert list(work.iterdir()) == []
    assert cache_files() == []


@pytest.mark.parametrize("text, words", [
    (b"Bad \xff\xfe bytes here", "not valid UTF-8"),
    (b"  \n\t ", "is empty"),
])
def test_bad_review_in_archive_names_the_member(tmp_path, make_archive, tiny_reviews, text, words):
    path = make_archive(tmp_path / "a.tar.gz", reviews=tiny_reviews + [("train", "pos", 5, 8, text)])
    with pytest.raises(DataError) as err:
        data.read_archive(path)
    assert "aclImdb/train/pos/5_8.txt" in str(err.value) and words in str(err.value)


@pytest.mark.parametrize("text, words", [(b"\xc3\x28 invalid", "not valid UTF-8"), (b"", "is empty")])
def test_bad_review_in_folder_names_the_file(tmp_path, make_folder, tiny_reviews, text, words):
    folder = make_folder(tmp_path / "x", reviews=tiny_reviews + [("test", "neg", 3, 2, text)])
    with pytest.raises(DataError) as err:
        data.read_folder(folder)
    assert str(folder / "test" / "neg" / "3_2.txt") in str(err.value) and words in str(err.value)


def test_archive_or_folder_without_reviews_is_an_error(tmp_path, make_archive):
    path = make_archive(tmp_path / "empty.tar.gz", reviews=[])
    with pytest.raises(DataError, match="holds no"):
        data.read_archive(path)
    (tmp_path / "nothing").mkdir()
    with pytest.raises(DataError, match="holds no"):
        data.read_folder(tmp_path / "nothing")


# --------------------------------------------------------------------------------------------
# Malformed CSVs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rows, columns, words", [
    ([("good", "positive")], ("text", "sentiment"), "lacks column(s) ['review']"),
    ([("good", "positive"), ("meh", "neutral")], ("review", "sentiment"), "unknown sentiment label(s) ['neutral']"),
    ([("good", "positive"), ("   ", "negative")], ("review", "sentiment"), "empty review(s) at row(s) [1]"),
])
def test_malformed_csv_is_refused_naming_the_problem(tmp_path, make_csv, rows, columns, words):
    path = make_csv(tmp_path / "bad.csv", rows=rows, columns=columns)
    with pytest.raises(DataError) as err:
        data.read_csv(path)
    assert words in str(err.value)


def test_non_utf8_csv_is_refused(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("review,sentiment\nCafé au lait,positive\n".encode("latin-1"))
    with pytest.raises(DataError, match="UTF-8"):
        data.read_csv(path)


# --------------------------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------------------------


def test_cache_is_reused_on_the_second_load(tiny_archive, monkeypatch):
    first, info1 = data.load_reviews(tiny_archive, return_info=True)
    assert info1.rebuilt and info1.cache.exists() and info1.cache.parent == data.cache_dir()
    assert info1.source == tiny_archive.resolve()
    monkeypatch.setattr(data, "parse_source", lambda *a, **k: pytest.fail("source parsed again"))
    second, info2 = data.load_reviews(tiny_archive, return_info=True)
    assert not info2.rebuilt and info2.cache == info1.cache
    pd.testing.assert_frame_equal(first, second)
    assert cache_files() == [info1.cache.name]


def test_cache_is_rebuilt_when_the_source_file_changes(tiny_archive, make_archive, tiny_reviews):
    _, info1 = data.load_reviews(tiny_archive, return_info=True)
    stat = tiny_archive.stat()
    os.utime(tiny_archive, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))  # touch
    _, info2 = data.load_reviews(tiny_archive, return_info=True)
    assert info2.rebuilt and info2.cache != info1.cache

    make_archive(tiny_archive, reviews=tiny_reviews + [("test", "pos", 1, 8, "Another fine film.")])
    frame, info3 = data.load_reviews(tiny_archive, return_info=True)
    assert info3.rebuilt and len(frame) == 8 and "Another fine film." in frame["text"].tolist()
    _, info4 = data.load_reviews(tiny_archive, return_info=True)
    assert not info4.rebuilt and info4.cache == info3.cache


def test_cache_of_a_folder_is_rebuilt_when_a_review_inside_changes(tiny_folder):
    _, info1 = data.load_reviews(tiny_folder, return_info=True)
    review = tiny_folder / "train" / "neg" / "0_2.txt"
    review.write_text("Edited: still terrible, but longer now.")
    frame, info2 = data.load_reviews(tiny_folder, return_info=True)
    assert info2.rebuilt and "Edited: still terrible, but longer now." in frame["text"].tolist()
    (tiny_folder / "test" / "pos" / "7_9.txt").write_text("A new review.")
    frame, info3 = data.load_reviews(tiny_folder, return_info=True)
    assert info3.rebuilt and len(frame) == 8
    _, info4 = data.load_reviews(tiny_folder, return_info=True)
    assert not info4.rebuilt


def test_cached_table_keeps_the_dtypes(tiny_csv):
    data.load_reviews(tiny_csv)
    frame, info = data.load_reviews(tiny_csv, return_info=True)
    assert not info.rebuilt
    assert {c: str(t) for c, t in frame.dtypes.items()} == DTYPES
    assert frame["rating"].isna().all()


# --------------------------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------------------------


def test_atomic_path_leaves_nothing_when_the_writer_fails(tmp_path):
    dest = tmp_path / "out" / "table.parquet"
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(dest) as tmp:
            tmp.write_text("half written")
            raise RuntimeError("boom")
    assert list(dest.parent.iterdir()) == []


def test_atomic_path_keeps_the_old_file_on_failure_and_replaces_it_on_success(tmp_path):
    dest = tmp_path / "metrics.json"
    dest.write_text("old")
    with pytest.raises(ValueError):
        with atomic_path(dest) as tmp:
            tmp.write_text("new")
            raise ValueError
    assert dest.read_text() == "old"
    with atomic_path(dest) as tmp:
        tmp.write_text("new")
    assert dest.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_write_json_atomic_handles_numpy_and_paths_and_fails_cleanly(tmp_path):
    dest = tmp_path / "x.json"
    write_json_atomic({"a": np.int64(3), "b": np.arange(2), "p": tmp_path}, dest)
    assert json.loads(dest.read_text()) == {"a": 3, "b": [0, 1], "p": str(tmp_path)}
    with pytest.raises(TypeError):
        write_json_atomic({"bad": object()}, tmp_path / "y.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]


def test_write_atomic_parquet_round_trips(tmp_path):
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    data.write_atomic_parquet(frame, tmp_path / "f.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "f.parquet"), frame)
    assert [p.name for p in tmp_path.iterdir()] == ["f.parquet"]



# --------------------------------------------------------------------------------------------
# Odd input, found when it was tried
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("given", ["sha256:abc", "sha1:" + "0" * 40, "md5:" + "0" * 31, "not a checksum", "0" * 63])
def test_a_malformed_checksum_is_named_as_malformed_not_as_a_mismatch(tiny_archive, given):
    with pytest.raises(DataError, match="is not a checksum: write it as sha256:<64 hex digits>") as err:
        data.verify_checksum(tiny_archive, given)
    assert "mismatch" not in str(err.value)


@pytest.mark.parametrize("missing", ["test", "train"])
def test_a_source_without_a_split_is_refused_naming_it(tmp_path, make_archive, make_folder, tiny_reviews, missing):
    partial = [r for r in tiny_reviews if r[0] != missing]
    archive = make_archive(tmp_path / "partial.tar.gz", reviews=partial)
    with pytest.raises(DataError, match=f"no labelled {missing} reviews.*partial copy"):
        data.read_archive(archive)
    folder = make_folder(tmp_path / "folder", reviews=partial)
    with pytest.raises(DataError, match=f"no labelled {missing} reviews"):
        data.read_folder(folder)


def test_files_in_review_folders_that_are_not_reviews_are_counted_and_reported(tmp_path, make_archive,
                                                                               make_folder, tiny_table):
    import tarfile

    def info(name, payload):
        member = tarfile.TarInfo(name)
        member.size = len(payload)
        return member, payload

    odd = [info("aclImdb/train/pos/notes.txt", b"x"), info("aclImdb/test/neg/7_x.txt", b"y")]
    archive = make_archive(tmp_path / "odd.tar.gz", extra=odd)
    with pytest.warns(UserWarning, match=r"2 file\(s\) in the review folders .* not named <id>_<rating>\.txt"):
        frame = data.read_archive(archive)
    assert as_rows(frame) == tiny_table  # the reviews themselves are all there
    folder = make_folder(tmp_path / "folder")
    (folder / "train" / "neg" / "draft.txt").write_text("not a review")
    with pytest.warns(UserWarning, match=r"1 file\(s\).*train/neg/draft\.txt"):
        data.read_folder(folder)


@pytest.mark.parametrize("positive, negative", [("1", "0"), ("pos", "neg"), ("POS", " Neg "), ("positive", "0")])
def test_a_csv_with_common_label_spellings_is_read(tmp_path, make_csv, positive, negative):
    path = make_csv(tmp_path / "labels.csv", rows=[("Loved it.", positive), ("Hated it.", negative)])
    assert data.read_csv(path)["label"].tolist() == [1, 0]


def test_a_csv_with_an_unexpected_label_still_names_the_accepted_ones(tmp_path, make_csv):
    path = make_csv(tmp_path / "labels.csv", rows=[("Loved it.", "5 stars"), ("Hated it.", "0")])
    with pytest.raises(DataError, match=r"unknown sentiment label\(s\) \['5 stars'\].*pos/neg, 1/0"):
        data.read_csv(path)


def test_a_full_disk_names_the_path_and_leaves_nothing_half_written(tmp_path):
    import errno

    from sentiment_lib.files import WriteError

    dest = tmp_path / "run" / "metrics.json"
    dest.parent.mkdir()
    dest.write_text("old")

    def fill_the_disk(path):
        path.write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(WriteError, match=r"Cannot write .*metrics\.json: the disk is full.*SENTIMENT_ARTIFACTS"):
        with atomic_path(dest) as tmp:
            fill_the_disk(tmp)
    assert dest.read_text() == "old" and sorted(p.name for p in dest.parent.iterdir()) == ["metrics.json"]


def test_an_unwritable_folder_names_the_path(tmp_path, monkeypatch):
    import tempfile

    from sentiment_lib.files import WriteError

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(WriteError, match=r"Cannot write .*bundle\.pt: permission denied"):
        with atomic_path(tmp_path / "bundle.pt"):
            pass
