"""``reports/<profile>/metrics.json``: the machine-readable summary of a run.

Each notebook adds its section (``data`` from 01/02, ``models`` from 03/04, ``tuning`` from 05)
without touching the others; writes are atomic.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import config
from .files import write_json_atomic


def summary_path(profile: str) -> Path:
    return config.report_dir(profile) / "metrics.json"


def read_summary(profile: str) -> dict[str, Any]:
    path = summary_path(profile)
    return json.loads(path.read_text()) if path.exists() else {}


def update_summary(profile: str, section: str, values: dict[str, Any], merge: bool = True) -> dict:
    """Set ``summary[section]`` (merged key by key into what is there when ``merge``) and write."""
    summary = read_summary(profile)
    current = summary.get(section, {}) if merge else {}
    summary[section] = {**current, **values}
    summary["profile"] = profile
    write_json_atomic(summary, summary_path(profile))
    return summary
