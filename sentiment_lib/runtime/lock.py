"""One writer per run directory: ``artifacts/<profile>/run.lock`` names the process that writes it.

A second run on the same directory fails at once with :class:`RunLocked` naming the other process; a lock whose
process is gone is taken over. Runs of different profiles have different directories and go side by side.
"""
from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .. import config

LOCK_FILE = "run.lock"
EMPTY_LOCK_SECONDS = 5.0  # an empty lock older than this was left by a run that died while writing it


class RunLocked(RuntimeError):
    """Another live process is writing the run directory; the message names it."""


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


@contextmanager
def lock(profile: str) -> Iterator[Path]:
    """Hold ``artifacts/<profile>/run.lock`` (pid, host, command, start) while a run writes the directory.

    A second run on the same directory fails at once with :class:`RunLocked` naming the other process; a
    lock whose process is gone (killed, crashed: same host, pid not running) is taken over. Different
    profiles have different directories, so they run side by side. Yields the lock file's path.
    """
    import os
    import socket
    import sys
    from datetime import datetime, timezone

    path = config.run_dir(profile) / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    me = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv)[:200],
          "started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = json.loads(path.read_text() or "{}")
            except (OSError, ValueError):
                holder = {}
            pid, host = holder.get("pid"), holder.get("host")
            if isinstance(pid, int) and host == me["host"] and not _alive(pid):
                path.unlink(missing_ok=True)  # a stale lock: its process is gone
                continue
            if not holder:  # being written by its owner this instant, or left empty by a run that died doing it
                try:
                    age = time.time() - path.stat().st_mtime
                except OSError:
                    continue  # gone meanwhile: try again
                if age > EMPTY_LOCK_SECONDS:
                    path.unlink(missing_ok=True)  # nobody writes a lock for that long: a leftover
                    continue
                time.sleep(0.2)
                continue
            raise RunLocked(
                f"The run directory {config.run_dir(profile)} is in use by process {pid} on {host} "
                f"({holder.get('command', '?')}, since {holder.get('started', '?')}). Wait for it to finish or "
                f"stop it (kill {pid}); runs of another profile can go side by side. If that process is gone "
                f"(another machine), delete {path}.") from None
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        break
    else:
        raise RunLocked(f"Could not take the lock {path}: it is empty or unreadable and was written moments ago (a run "
                        f"starting right now?). Try again in a few seconds; delete it if no run is active.")
    try:
        yield path
    finally:
        try:
            if json.loads(path.read_text()).get("pid") == me["pid"]:
                path.unlink()
        except (OSError, ValueError):
            pass
