"""Acquire, parse, validate and cache the IMDB reviews as one table.

Sources, in the order ``find_source`` looks for them:

1. an explicit path, or ``$IMDB_SOURCE``: the official archive (``aclImdb_v1.tar.gz``), an extracted
   ``aclImdb/`` folder, or the single-file CSV (columns ``review``, ``sentiment``);
2. ``data/raw/aclImdb_v1.tar.gz`` (where ``download_archive`` puts it), ``data/raw/aclImdb/``,
   ``data/raw/IMDB Dataset.csv``.

``load_reviews()`` returns a DataFrame with one row per review:

=========  =======  ==========================================================================
column     dtype    meaning
=========  =======  ==========================================================================
split      str      official split: ``train``, ``test``, ``unsup`` (unlabelled), ``all`` (CSV)
id         int32    review id within its split folder (CSV: row number)
rating     Int8     star rating 1–10 (0 for unlabelled reviews, <NA> when the source has none)
label      int8     1 positive, 0 negative, -1 unlabelled
text       str      the review as written (HTML and all)
=========  =======  ==========================================================================

The table is cached once as parquet under ``data/cache/``; the cache key is the source's path,
size and modification time, so a changed source rebuilds it. Archives are read member by member
and never extracted, and any member whose name could escape a folder (absolute, ``..``, links)
makes the whole archive rejected, so a hostile archive cannot write anywhere.
"""
from __future__ import annotations

import hashlib
import os
import re
import tarfile
import time
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pandas as pd

from . import config
from .files import atomic_path

OFFICIAL_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
OFFICIAL_MD5 = "7c2ac02c03563afcf9b574c7e56c153a"
ARCHIVE_NAME = "aclImdb_v1.tar.gz"
CSV_NAME = "IMDB Dataset.csv"
CACHE_VERSION = 1  # bump when the table's layout changes

_MEMBER = re.compile(r"^(?:\./)?aclImdb/(train|test)/(pos|neg|unsup)/(\d+)_(\d+)\.txt$")
_REVIEW_FOLDER = re.compile(r"^(?:\./)?aclImdb/(train|test)/(pos|neg|unsup)/[^/]+$")  # where reviews live
_CHECKSUM = re.compile(r"^(?:(md5):([0-9a-fA-F]{32})|(?:(sha256):)?([0-9a-fA-F]{64}))$")
CSV_LABELS = {"positive": 1, "pos": 1, "1": 1, "negative": 0, "neg": 0, "0": 0}  # common spellings
_FIX = (
    "Download it with `make data` (needs internet), or point IMDB_SOURCE at a local copy: "
    f"the archive {ARCHIVE_NAME}, an extracted aclImdb/ folder, or '{CSV_NAME}'."
)


class DataError(ValueError):
    """The data source is missing, corrupt or malformed; the message names the fix."""


# --------------------------------------------------------------------------------------------
# Finding and downloading the source
# --------------------------------------------------------------------------------------------


def raw_dir() -> Path:
    return config.data_dir() / "raw"


def cache_dir() -> Path:
    return config.data_dir() / "cache"


def download_archive(dest: Path | None = None, progress: bool = True) -> Path:
    """Download the official archive once (checksum verified by pooch, with a progress bar).

    pooch does the HTTP, the resumable temp file, the MD5 check and the atomic rename: a
    well-kept library rather than hand-written download code. Returns the archive's path.
    """
    import pooch

    dest = Path(dest) if dest else raw_dir()
    dest.mkdir(parents=True, exist_ok=True)
    path = pooch.retrieve(
        OFFICIAL_URL, known_hash=f"md5:{OFFICIAL_MD5}", fname=ARCHIVE_NAME, path=dest,
        progressbar=progress,
    )
    return Path(path)


def find_source(source: str | os.PathLike | None = None) -> Path:
    """Resolve where the reviews come from (see the module docstring); raise ``DataError`` if none."""
    candidates: list[Path]
    if source is None:
        source = os.environ.get("IMDB_SOURCE") or None
    if source is not None:
        path = Path(source).expanduser()
        if not path.exists():
            raise DataError(f"No IMDB data at {path} (from IMDB_SOURCE or the argument). {_FIX}")
        return path.resolve()
    raw = raw_dir()
    candidates = [raw / ARCHIVE_NAME, raw / "aclImdb", raw / CSV_NAME]
    for path in candidates:
        if path.exists():
            return path.resolve()
    raise DataError(f"No IMDB data at {raw}. {_FIX}")


def file_digest(path: Path, algorithm: str = "sha256", chunk: int = 1 << 20) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def parse_checksum(expected: str) -> tuple[str, str]:
    """``(algorithm, hex digest)`` of a checksum written ``"sha256:<64 hex>"``, ``"md5:<32 hex>"`` or as a bare
    sha256 hex; a ``DataError`` naming the accepted forms for anything else."""
    match = _CHECKSUM.match(expected.strip())
    if not match:
        raise DataError(f"IMDB_SHA256 (or expected_hash) {expected!r} is not a checksum: write it as "
                        "sha256:<64 hex digits> or md5:<32 hex digits> (e.g. from `sha256sum FILE`).")
    md5, md5_value, _, sha_value = match.groups()
    return ("md5", md5_value) if md5 else ("sha256", sha_value)


def verify_checksum(path: Path, expected: str) -> None:
    """Check ``path`` against ``expected`` (``"md5:…"``, ``"sha256:…"`` or a bare sha256 hex)."""
    algorithm, value = parse_checksum(expected)
    actual = file_digest(path, algorithm)
    if actual.lower() != value.lower():
        raise DataError(
            f"Checksum mismatch for {path}: expected {algorithm} {value}, got {actual}. The file is "
            f"corrupt or not the expected release; delete it and download it again with `make data`, "
            f"or fix IMDB_SHA256."
        )


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


def _decode(raw: bytes, where: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(
            f"Review {where} is not valid UTF-8 ({err.reason} at byte {err.start}). Re-save it as "
            f"UTF-8 or restore the original file from the official archive."
        ) from None
    if not text.strip():
        raise DataError(f"Review {where} is empty. Restore it from the official archive or remove it.")
    return text


def _row(split: str, kind: str, rid: str, rating: str, text: str) -> tuple:
    label = {"pos": 1, "neg": 0, "unsup": -1}[kind]
    return (split, int(rid), int(rating), label, text)


def _check_splits(rows: list[tuple], source: Path) -> None:
    """Refuse a source whose labelled reviews lack the train or the test split (a partial copy)."""
    present = {row[0] for row in rows if row[3] >= 0}
    missing = [split for split in ("train", "test") if split not in present]
    if missing:
        raise DataError(f"{source} has no labelled {' or '.join(missing)} reviews (aclImdb/"
                        f"{'{' + ','.join(missing) + '}' if len(missing) > 1 else missing[0]}/{{pos,neg}}/): it is "
                        f"a partial copy of the dataset. Use the whole archive. {_FIX}")


def _report_skipped(skipped: list[str], source: Path) -> None:
    """Say how many files in review folders were not named ``<id>_<rating>.txt`` (so were not read)."""
    if skipped:
        warnings.warn(f"{len(skipped)} file(s) in the review folders of {source} are not named <id>_<rating>.txt "
                      f"and were skipped (e.g. {', '.join(skipped[:3])}).", stacklevel=3)


def _check_member_safe(member: tarfile.TarInfo, archive: Path) -> None:
    name = PurePosixPath(member.name)
    unsafe = name.is_absolute() or ".." in name.parts or member.islnk() or member.issym() or member.isdev()
    if unsafe:
        raise DataError(
            f"Refusing archive {archive}: member {member.name!r} could write outside its folder "
            f"(absolute path, '..', link or device). Use the official archive ({OFFICIAL_URL})."
        )


class _StrictTarInfo(tarfile.TarInfo):
    """``tarfile`` ends the member list silently at a truncated, missing or invalid header after
    the first member, so a cut or damaged archive reads as a shorter one. Only the end-of-archive
    marker (a zero block) may end it here; anything else raises ``ReadError``."""

    @classmethod
    def fromtarfile(cls, tarfile_):
        try:
            return super().fromtarfile(tarfile_)
        except tarfile.EOFHeaderError:
            raise
        except tarfile.HeaderError as err:
            raise tarfile.ReadError(f"{err} at byte {tarfile_.offset}") from None


def read_archive(path: Path, progress: bool = False) -> pd.DataFrame:
    """Parse every review of an ``aclImdb_v1.tar.gz`` archive without extracting it. Refuses an archive
    without a train or test split; warns about files in the review folders that are not reviews."""
    rows, skipped = [], []
    try:
        with tarfile.open(path, mode="r:*", tarinfo=_StrictTarInfo) as tar:
            members = tar
            if progress:
                from tqdm.auto import tqdm

                members = tqdm(tar, desc="reading archive", unit=" files", mininterval=1.0)
            for member in members:
                _check_member_safe(member, path)
                match = _MEMBER.match(member.name)
                if not match or not member.isfile():
                    if member.isfile() and _REVIEW_FOLDER.match(member.name):
                        skipped.append(member.name)
                    continue
                handle = tar.extractfile(member)
                rows.append(_row(*match.groups(), _decode(handle.read(), f"{member.name} in {path}")))
            # Read past the end marker to the end of the file: for gzip this checks the stream's CRC.
            while tar.fileobj.read(1 << 20):
                pass
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        raise DataError(
            f"Archive {path} is truncated or corrupt ({type(err).__name__}: {err}). Delete it and "
            f"download it again with `make data`."
        ) from None
    if not rows:
        raise DataError(f"Archive {path} holds no aclImdb/{{train,test}}/{{pos,neg}}/*.txt reviews. {_FIX}")
    _check_splits(rows, path)
    _report_skipped(skipped, path)
    return _frame(rows)


def _folder_reviews(path: Path, skipped: list[str]):
    """(split, kind, filename match, file) for each review file of an ``aclImdb/`` folder (or its parent);
    the other files of the review folders go to ``skipped``."""
    root = path / "aclImdb" if (path / "aclImdb").is_dir() else path
    for split in ("train", "test"):
        for kind in ("pos", "neg", "unsup"):
            folder = root / split / kind
            for file in sorted(folder.iterdir()) if folder.is_dir() else ():
                match = re.fullmatch(r"(\d+)_(\d+)\.txt", file.name)
                if match and file.is_file():
                    yield split, kind, match, file
                elif file.is_file():
                    skipped.append(f"{split}/{kind}/{file.name}")


def read_folder(path: Path) -> pd.DataFrame:
    """Parse an extracted ``aclImdb/`` folder (or its parent)."""
    skipped: list[str] = []
    rows = [_row(split, kind, *match.groups(), _decode(file.read_bytes(), str(file)))
            for split, kind, match, file in _folder_reviews(path, skipped)]
    if not rows:
        raise DataError(f"Folder {path} holds no aclImdb/{{train,test}}/{{pos,neg}}/*.txt reviews. {_FIX}")
    _check_splits(rows, path)
    _report_skipped(skipped, path)
    return _frame(rows)


def read_csv(path: Path) -> pd.DataFrame:
    """Parse the single-file CSV (columns ``review``, ``sentiment``: positive/negative, or the common spellings
    pos/neg and 1/0, in any case)."""
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"CSV {path} is not valid UTF-8 ({err.reason}). Re-save it as UTF-8.") from None
    except pd.errors.ParserError as err:
        raise DataError(f"CSV {path} could not be parsed ({err}). Check it is the IMDB CSV.") from None
    missing = {"review", "sentiment"} - set(raw.columns)
    if missing:
        raise DataError(
            f"CSV {path} lacks column(s) {sorted(missing)}; it has {list(raw.columns)}. The IMDB CSV "
            f"has columns 'review' and 'sentiment' (positive/negative)."
        )
    labels = raw["sentiment"].str.strip().str.lower()
    unknown = sorted(set(labels) - set(CSV_LABELS))
    if unknown:
        raise DataError(
            f"CSV {path} has unknown sentiment label(s) {unknown[:5]}; expected 'positive' or 'negative' "
            "(or pos/neg, 1/0)."
        )
    empty = raw.index[raw["review"].str.strip() == ""].tolist()
    if empty:
        raise DataError(f"CSV {path} has empty review(s) at row(s) {empty[:5]}. Remove or fill them.")
    frame = pd.DataFrame({
        "split": "all",
        "id": range(len(raw)),
        "rating": pd.array([pd.NA] * len(raw), dtype="Int8"),
        "label": labels.map(CSV_LABELS).astype("int8").to_numpy(),
        "text": raw["review"].to_numpy(),
    })
    return _typed(frame)


def _frame(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["split", "id", "rating", "label", "text"])
    frame = frame.sort_values(["split", "label", "id"], ascending=[True, False, True], kind="stable")
    return _typed(frame.reset_index(drop=True))


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype({"split": "string", "id": "int32", "rating": "Int8", "label": "int8",
                         "text": "string"})


def parse_source(path: Path, progress: bool = False) -> pd.DataFrame:
    """Parse any supported source into the reviews table (no caching)."""
    if path.is_dir():
        return read_folder(path)
    if path.suffix.lower() == ".csv":
        return read_csv(path)
    return read_archive(path, progress=progress)


# --------------------------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------------------------


def _cache_key(path: Path) -> str:
    stat = path.stat()
    ident = f"{CACHE_VERSION}|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    if path.is_dir():
        # A folder's own mtime misses files edited, added or removed in its sub-folders.
        root = path / "aclImdb" if (path / "aclImdb").is_dir() else path
        entries = []
        for sub in ("train/pos", "train/neg", "train/unsup", "test/pos", "test/neg"):
            if (root / sub).is_dir():
                with os.scandir(root / sub) as it:
                    entries += [(f"{sub}/{e.name}", e.stat().st_size, e.stat().st_mtime_ns) for e in it]
        ident += "|" + hashlib.sha256(repr(sorted(entries)).encode()).hexdigest()
    return hashlib.sha256(ident.encode()).hexdigest()[:16]


def cache_path(path: Path) -> Path:
    return cache_dir() / f"reviews-{_cache_key(path)}.parquet"


def write_atomic_parquet(frame: pd.DataFrame, dest: Path) -> None:
    """Write ``frame`` to ``dest`` as parquet, atomically (see ``files.atomic_path``)."""
    with atomic_path(dest) as tmp:
        frame.to_parquet(tmp, index=False, compression="zstd")  # text: ~3× smaller than snappy


@dataclass
class LoadInfo:
    """How ``load_reviews`` got its table: the source, the cache file, whether it was rebuilt,
    and the seconds it took (wall clock)."""

    source: Path
    cache: Path
    rebuilt: bool
    seconds: float


def load_reviews(source: str | os.PathLike | None = None, expected_hash: str | None = None,
                 progress: bool = False, return_info: bool = False):
    """The reviews table (see module docstring), from the cache when it is current.

    ``expected_hash`` (or ``$IMDB_SHA256``) verifies a local source file before it is parsed;
    the official download is always verified against ``OFFICIAL_MD5``.
    """
    start = time.perf_counter()
    path = find_source(source)
    cached = cache_path(path)
    rebuilt = not cached.exists()
    if rebuilt:
        expected_hash = expected_hash or os.environ.get("IMDB_SHA256") or None
        if expected_hash and path.is_file():
            verify_checksum(path, expected_hash)
        frame = parse_source(path, progress=progress)
        write_atomic_parquet(frame, cached)
    else:
        frame = _typed(pd.read_parquet(cached))
    info = LoadInfo(path, cached, rebuilt, time.perf_counter() - start)
    return (frame, info) if return_info else frame


def labelled(frame: pd.DataFrame) -> pd.DataFrame:
    """Only the reviews with a label (drops the 50,000 unlabelled ``unsup`` ones)."""
    return frame[frame["label"] >= 0]


def unlabelled_texts(frame: pd.DataFrame) -> pd.Series:
    """The texts of the unlabelled reviews (``train/unsup``: 50,000 in the full dataset; none in a CSV)."""
    return frame.loc[frame["label"] < 0, "text"].reset_index(drop=True)
