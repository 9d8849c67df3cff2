"""Atomic file writes: a reader (or a crash) never sees a half-written file.

Every writer goes through a temp file in the destination's folder, then ``os.replace`` — atomic on
POSIX and Windows — so an interrupted run leaves either the old file or the new one, never a part.
"""
from __future__ import annotations

import errno
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


# Errors a user fixes by freeing space or choosing another folder, named with the path and the fix.
_WHERE_TO_WRITE = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
                   errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
                   errno.EROFS: "the file system is read-only"}


class WriteError(OSError):
    """A file could not be written because of where it goes (full disk, no permission); names the path."""


def _explained(err: OSError, dest: Path) -> OSError:
    reason = _WHERE_TO_WRITE.get(err.errno)
    if reason is None:
        return err
    return WriteError(err.errno, f"Cannot write {dest}: {reason}. Nothing was changed there. Free some space or "
                                 "make the folder writable, or point SENTIMENT_ARTIFACTS / SENTIMENT_REPORTS / "
                                 "SENTIMENT_DATA at a folder that is.")


@contextmanager
def atomic_path(dest: os.PathLike | str) -> Iterator[Path]:
    """Yield a temp path beside ``dest``; on success move it onto ``dest``, on error delete it. A full disk
    or an unwritable folder raises :class:`WriteError` naming ``dest`` (and leaves no temp file)."""
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    except OSError as err:
        raise _explained(err, dest) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        try:
            yield tmp_path
            os.chmod(tmp_path, 0o644)
            os.replace(tmp_path, dest)
        except OSError as err:
            explained = _explained(err, dest)
            if explained is err:
                raise
            raise explained from None
    finally:
        tmp_path.unlink(missing_ok=True)


def write_text_atomic(text: str, dest: os.PathLike | str) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(obj: Any, dest: os.PathLike | str) -> None:
    write_text_atomic(json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n", dest)


def _jsonable(value: Any) -> Any:
    """numpy scalars/arrays and paths in JSON: as plain numbers, lists and strings."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# Reading the user's own text files (predict --file, evaluate FILE)
PLACEHOLDERS = {"nan", "none", "null", "n/a", "na", "<na>"}  # what a spreadsheet or pandas writes for "no text"
BOMS = ((b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"), (b"\xef\xbb\xbf", "utf-8-sig"))


def sniff_encoding(head: bytes, encoding: str) -> str:
    """The encoding a file's byte-order mark declares (UTF-16, or UTF-8 with a BOM) when its first bytes ``head``
    carry one, else ``encoding``."""
    for bom, declared in BOMS:
        if head.startswith(bom):
            return declared
    return encoding
