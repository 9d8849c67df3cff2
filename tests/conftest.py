"""Shared fixtures: tiny IMDB sources built in temp dirs, and isolation from the real project dirs.

No test here reads the real dataset: every source is built from ``TINY_REVIEWS`` (a handful of
reviews in the official ``aclImdb/{train,test}/{pos,neg,unsup}/<id>_<rating>.txt`` layout).
"""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pandas as pd
import pytest


def pytest_configure(config):
    """With ``--nbval``, the regression notebooks run in fresh, empty run directories (as when the
    snapshots were made), never in the project's ``artifacts/`` or ``reports/``, in kernels that talk over IPC
    sockets rather than TCP ports (as the runner's), with the snapshots' portable numeric kernels."""
    if config.getoption("nbval", default=False):
        import nbval.kernel

        from sentiment_lib.kernels import IPCKernelManager
        from sentiment_lib.pipeline import portable_environment, use_scratch_run_dirs

        class RegressionKernelManager(IPCKernelManager):
            """nbval's kernels: over IPC (no kernel listens on a TCP port), with the numeric kernels the
            snapshots were made with, whatever this CPU has (this test process keeps its own)."""

            def start_kernel(self, **kw):
                kw["env"] = portable_environment(kw.get("env"))
                return super().start_kernel(**kw)

        use_scratch_run_dirs()
        nbval.kernel.KernelManager = RegressionKernelManager

# (split, kind, id, rating, text): the official layout, with HTML, an entity and non-ASCII text.
TINY_REVIEWS = [
    ("train", "pos", 0, 9, "A wonderful film.<br /><br />I loved every minute of it!"),
    ("train", "pos", 1, 7, "Great acting &amp; a great story. Amélie-level charm."),
    ("train", "neg", 0, 2, "Terrible. I want my money back!"),
    ("train", "neg", 1, 4, "Boring plot, bad acting, and it's far too long."),
    ("train", "unsup", 0, 0, "An unlabelled review about a film."),
    ("test", "pos", 0, 10, "Best movie of the year."),
    ("test", "neg", 0, 1, "Worst movie ever made."),
]

# The reviews table load_reviews should return for TINY_REVIEWS: sorted by split, then label
# (positive, negative, unlabelled), then id.
TINY_TABLE = [
    ("test", 0, 10, 1, TINY_REVIEWS[5][4]),
    ("test", 0, 1, 0, TINY_REVIEWS[6][4]),
    ("train", 0, 9, 1, TINY_REVIEWS[0][4]),
    ("train", 1, 7, 1, TINY_REVIEWS[1][4]),
    ("train", 0, 2, 0, TINY_REVIEWS[2][4]),
    ("train", 1, 4, 0, TINY_REVIEWS[3][4]),
    ("train", 0, 0, -1, TINY_REVIEWS[4][4]),
]


def member_name(split: str, kind: str, rid: int, rating: int) -> str:
    return f"aclImdb/{split}/{kind}/{rid}_{rating}.txt"


def _add_file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path_factory, monkeypatch):
    """Point data / artifacts / reports at fresh temp dirs and forget any IMDB source the shell
    names, so that no test reads or writes the real project folders."""
    root = tmp_path_factory.mktemp("project")
    dirs = {name: root / name for name in ("data", "artifacts", "reports")}
    monkeypatch.setenv("SENTIMENT_DATA", str(dirs["data"]))
    monkeypatch.setenv("SENTIMENT_ARTIFACTS", str(dirs["artifacts"]))
    monkeypatch.setenv("SENTIMENT_REPORTS", str(dirs["reports"]))
    monkeypatch.delenv("IMDB_SOURCE", raising=False)
    monkeypatch.delenv("IMDB_SHA256", raising=False)
    return dirs


@pytest.fixture
def make_archive():
    """``make_archive(path, reviews=TINY_REVIEWS, extra=(), mode="w:gz")`` writes an aclImdb
    archive. ``reviews`` rows may carry ``bytes`` text (written as is); ``extra`` is a list of
    ``TarInfo`` objects (with ``(info, bytes)`` pairs for files) added after the reviews."""

    def make(path: Path, reviews=TINY_REVIEWS, extra=(), mode: str = "w:gz") -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(path, mode) as tar:
            # Non-review members that the reader must skip.
            for folder in ("aclImdb", "aclImdb/train", "aclImdb/train/pos"):
                info = tarfile.TarInfo(folder)
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            _add_file(tar, "aclImdb/README", b"Large Movie Review Dataset v1.0\n")
            _add_file(tar, "aclImdb/train/urls_pos.txt", b"http://www.imdb.com/title/tt0000001/\n")
            for split, kind, rid, rating, text in reviews:
                data = text if isinstance(text, bytes) else text.encode("utf-8")
                _add_file(tar, member_name(split, kind, rid, rating), data)
            for item in extra:
                if isinstance(item, tuple):
                    info, data = item
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
                else:
                    tar.addfile(item)
        return path

    return make


@pytest.fixture
def tiny_archive(tmp_path, make_archive) -> Path:
    return make_archive(tmp_path / "src" / "aclImdb_v1.tar.gz")


@pytest.fixture
def make_folder():
    """``make_folder(parent, reviews=TINY_REVIEWS)`` writes an extracted ``parent/aclImdb/`` folder."""

    def make(parent: Path, reviews=TINY_REVIEWS) -> Path:
        for split, kind, rid, rating, text in reviews:
            file = parent / member_name(split, kind, rid, rating)
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
        (parent / "aclImdb" / "README").write_text("not a review\n")
        return parent / "aclImdb"

    return make


@pytest.fixture
def tiny_folder(tmp_path, make_folder) -> Path:
    return make_folder(tmp_path / "extracted")


CSV_ROWS = [
    ("A wonderful film, with \"quotes\" and a comma.", "positive"),
    ("Terrible.\nTwo lines, even.", "negative"),
    ("Great acting.", " Positive "),
    ("Bad plot.", "NEGATIVE"),
]


@pytest.fixture
def make_csv():
    """``make_csv(path, rows=CSV_ROWS, columns=("review", "sentiment"))`` writes the single-file CSV."""

    def make(path: Path, rows=CSV_ROWS, columns=("review", "sentiment")) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(list(rows), columns=list(columns)).to_csv(path, index=False)
        return path

    return make


@pytest.fixture
def tiny_csv(tmp_path, make_csv) -> Path:
    return make_csv(tmp_path / "src" / "IMDB Dataset.csv")


def labelled_frame(rows) -> pd.DataFrame:
    """A reviews table (as ``data.load_reviews`` returns it) from ``(split, label, text)`` rows."""
    rows = list(rows)
    frame = pd.DataFrame({
        "split": [r[0] for r in rows],
        "id": range(len(rows)),
        "rating": [(8 if r[1] == 1 else 3) if r[1] >= 0 else 0 for r in rows],
        "label": [r[1] for r in rows],
        "text": [r[2] for r in rows],
    })
    return frame.astype({"split": "string", "id": "int32", "rating": "Int8", "label": "int8",
                         "text": "string"})


@pytest.fixture
def frame_from_rows():
    """``frame_from_rows([(split, label, text), ...])``: a typed reviews table."""
    return labelled_frame


@pytest.fixture
def tiny_reviews():
    """The (split, kind, id, rating, text) rows every tiny source is built from."""
    return list(TINY_REVIEWS)


@pytest.fixture
def tiny_table():
    """The (split, id, rating, label, text) rows ``load_reviews`` must return for them, in order."""
    return list(TINY_TABLE)


@pytest.fixture
def one_thread():
    """One torch thread for the test (two-core CI machines: tiny models are faster with one, and timings stay
    stable); the previous count is restored afterwards. Modules use it with ``pytestmark``."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
