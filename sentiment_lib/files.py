"""Atomic file writes: a reader (or a crash) never sees a half-written file.

Every writer goes through a temp file in the destination's folder, then ``os.replace`` — atomic on
POSIX and Windows — so an interrupted run leaves either the old file or the new one, never a part.
"""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


@contextmanager
def atomic_path(dest: os.PathLike | str) -> Iterator[Path]:
    """Yield a temp path beside ``dest``; on success move it onto ``dest``, on error delete it."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, dest)
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
