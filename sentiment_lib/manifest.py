"""``metrics.json``, the run's manifest, as an interface: what other programs may read, and how.

Each notebook adds what it produced to ``artifacts/<profile>/metrics.json`` (:func:`sentiment_lib.rundir.record`);
the runner copies it to ``reports/<profile>/metrics.json``. The documented sections (``docs/metrics.md``) are:

- ``models``: one entry per scored model, keyed by an **identifier** (:func:`identifier`: lower case, digits and
  ``_``; ``final`` is the model ``predict`` and ``evaluate`` use by default, the report's headline, and
  ``final_networks`` its networks without their linear partner). Each entry has ``label`` (the name the pages
  show), the test metrics (``accuracy``, ``precision``, ``recall``, ``f1``, ``roc_auc``), ``accuracy_low`` and
  ``accuracy_high`` (the exact 95% interval of the test accuracy), ``notebook`` (which notebook recorded it)
  and, where the run measured them, ``val_loss``, ``val_accuracy``, ``train_seconds``, ``parameters``,
  ``settings``.
- ``choices``: per notebook, what it chose on validation, as identifiers of ``models`` (``best_network``,
  ``best_linear``, ``ladder_network``, ``blend``, ``final``, …) plus the ``criterion``.
- ``seed_spread`` (by identifier), ``claims``, ``data``, ``tuning``, ``bundles``.

The notebooks speak in labels; :func:`recorded_models` and :func:`recorded_choices` give them the label view.
"""
from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

import numpy as np

from .rundir import read_manifest, record
from .uncertainty import accuracy_interval

FINAL = "final"                      # the model predict and evaluate use by default
FINAL_NETWORKS = "final_networks"    # its networks alone, without the linear partner
REQUIRED = ("label", "accuracy", "accuracy_low", "accuracy_high")


def identifier(label: str) -> str:
    """A model's key in ``metrics.json`` from its label: ``"attention_lstm 64 (language-model start + AT)"`` →
    ``"attention_lstm_64_language_model_start_plus_at"``."""
    key = re.sub(r"[^a-z0-9]+", "_", str(label).lower().replace("+", " plus ")).strip("_")
    if not key:
        raise ValueError(f"The model label {label!r} has no letter or digit to make an identifier of; name it.")
    return key


def _plain(value: Any) -> Any:
    return None if isinstance(value, float) and np.isnan(value) else value


def model_entries(rows: Sequence[Mapping[str, Any]], n_test: int | None) -> dict[str, dict[str, Any]]:
    """``{identifier: entry}`` for rows of ``ModelRun.row()`` / reference rows (``model`` is the label; an ``id``
    key, if given, is the identifier), each with its ``label`` and, when it has a test ``accuracy`` and ``n_test``
    is known, its 95% interval. NaN becomes ``None``. Two rows with one identifier are a ``ValueError``."""
    entries: dict[str, dict[str, Any]] = {}
    for row in rows:
        label = str(row["model"])
        key = str(row.get("id") or identifier(label))
        if key in entries:
            raise ValueError(f"Two models share the identifier {key!r} ({entries[key]['label']!r} and {label!r}): "
                             "give one of them another name.")
        entry = {"label": label, **{k: _plain(v) for k, v in row.items() if k not in ("model", "id")}}
        accuracy = entry.get("accuracy")
        if accuracy is not None and n_test:
            entry["accuracy_low"], entry["accuracy_high"] = accuracy_interval(int(round(accuracy * n_test)), n_test)
        entries[key] = entry
    return entries


def interval(entry: Mapping[str, Any], n_test: int | None) -> tuple[float, float] | None:
    """The 95% interval of ``entry``'s test accuracy: the one recorded in it, or — for a run recorded before
    entries carried their interval — computed from ``n_test``; ``None`` without an accuracy or a size."""
    if entry.get("accuracy_low") is not None and entry.get("accuracy_high") is not None:
        return float(entry["accuracy_low"]), float(entry["accuracy_high"])
    accuracy = entry.get("accuracy")
    if accuracy is None or not n_test:
        return None
    return accuracy_interval(int(round(accuracy * n_test)), n_test)


def test_size(manifest: Mapping[str, Any]) -> int | None:
    """The number of test reviews the run scored on (``data.subset_sizes.test``), if recorded."""
    return ((manifest.get("data") or {}).get("subset_sizes") or {}).get("test")


def record_models(profile: str, rows: Sequence[Mapping[str, Any]], notebook: str | None = None) -> None:
    """Add each row's entry (:func:`model_entries`) to the manifest's ``models``.

    ``notebook`` (e.g. ``"04"``) marks each entry with the notebook that recorded it and replaces every entry that
    notebook recorded before: a rerun with other models or other choices leaves no model of the earlier run
    behind."""
    manifest = read_manifest(profile)
    entries = model_entries(rows, test_size(manifest))
    if notebook is None:
        record(profile, "models", entries)
        return
    kept = {key: entry for key, entry in manifest.get("models", {}).items() if entry.get("notebook") != notebook}
    record(profile, "models", {**kept, **{key: {**entry, "notebook": notebook}
                                                for key, entry in entries.items()}}, merge=False)


def record_choices(profile: str, notebook: str, chosen: Mapping[str, Any]) -> None:
    """Record what ``notebook`` chose: each value that is the label of a recorded model is stored as its identifier
    (``criterion`` and flags stay as they are)."""
    by_label = {entry.get("label", key): key for key, entry in read_manifest(profile).get("models", {}).items()}
    record(profile, "choices", {notebook: {what: by_label.get(value, value) if isinstance(value, str) else value
                                                  for what, value in chosen.items()}})


def recorded_models(profile: str) -> dict[str, dict[str, Any]]:
    """The manifest's models by label (what the notebooks name them); a run recorded before identifiers existed is
    keyed by label already."""
    return {entry.get("label", key): entry for key, entry in read_manifest(profile).get("models", {}).items()}


def recorded_choices(profile: str) -> dict[str, dict[str, Any]]:
    """The manifest's choices with each model identifier given back as its label."""
    manifest = read_manifest(profile)
    labels = {key: entry.get("label", key) for key, entry in manifest.get("models", {}).items()}
    return {notebook: {what: labels.get(value, value) if isinstance(value, str) else value
                       for what, value in chosen.items()}
            for notebook, chosen in manifest.get("choices", {}).items()}


def label_of(manifest: Mapping[str, Any], key: str | None) -> str:
    """How the pages name the model ``key`` of ``manifest`` (its ``label``; the key itself for an older run)."""
    return str(((manifest.get("models") or {}).get(key or "") or {}).get("label", key or ""))


def check(manifest: Mapping[str, Any]) -> list[str]:
    """What in ``manifest`` breaks the documented interface (``docs/metrics.md``); empty when nothing does."""
    problems = []
    models = manifest.get("models") or {}
    for key, entry in models.items():
        if key != identifier(key) and key not in (FINAL, FINAL_NETWORKS):
            problems.append(f"models: {key!r} is not an identifier (lower case, digits and _)")
        needed = REQUIRED if entry.get("accuracy") is not None else ("label",)
        missing = [field for field in needed if entry.get(field) is None]
        if missing:
            problems.append(f"models.{key}: lacks {missing}")
        low, acc, high = (entry.get(f) for f in ("accuracy_low", "accuracy", "accuracy_high"))
        if None not in (low, acc, high) and not low <= acc <= high:
            problems.append(f"models.{key}: accuracy {acc} outside its interval [{low}, {high}]")
    for notebook, chosen in (manifest.get("choices") or {}).items():
        for what, value in chosen.items():
            if what != "criterion" and isinstance(value, str) and value not in models:
                problems.append(f"choices.{notebook}.{what}: {value!r} is not a key of models")
    if "05" in (manifest.get("choices") or {}) and FINAL not in models:
        problems.append(f"models: no {FINAL!r} entry although notebook 05 ran")
    return problems
