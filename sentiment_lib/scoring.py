"""Scoring saved models on the run's encoded data: a bundle (what ``predict`` loads) and each network of an
ensemble on its own."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .bundle import load_bundle
from .experiment import TABLE_METRICS
from .metrics import binary_metrics, log_loss
from .rundir import Prepared


def _loaded_for_run(path: Path, prepared: Prepared):
    """The bundle at ``path`` (one model or an ensemble), checked to fit this run's binary test data."""
    loaded = load_bundle(path)
    if list(loaded.vocab.itos) != list(prepared.vocab.itos):
        raise ValueError(f"The bundle {path} was trained with another vocabulary than this run's; rerun the "
                         "notebook that saved it (03/04/05) after 02.")
    if loaded.num_classes != 2:
        raise ValueError(f"The bundle {path} predicts {loaded.num_classes} classes (rating buckets); these scores "
                         "are for positive/negative models: score it with multiclass_metrics on its own labels.")
    return loaded


def score_bundle(path: Path, prepared: Prepared, batch_size: int = 256) -> tuple[np.ndarray, dict[str, float]]:
    """Score a saved binary model bundle (one model or an ensemble, with its linear partner if it has one: what
    ``predict`` scores) on the run's encoded test subset (no re-tokenising), with the bundle's own truncation.
    Returns (test probabilities (N,), metrics)."""
    split = prepared.splits["test"]
    prob = _loaded_for_run(path, prepared).predict_split(split, batch_size)
    return prob, {k: v for k, v in binary_metrics(split.labels, prob).items() if k in TABLE_METRICS}


ENSEMBLE_ROW = "ensemble (mean)"
MEMBER_METRICS = (*TABLE_METRICS, "log_loss")


def members_table(labels: np.ndarray, named_probs: Sequence[tuple[str, np.ndarray]]
                  ) -> tuple[np.ndarray, dict[str, float], pd.DataFrame]:
    """Score binary models and their mean against ``labels`` (N,).

    ``named_probs``: ``(name, probabilities (N,))`` per model. Returns ``(prob, metrics, table)``: the mean
    probability (N,) and its metrics (:data:`TABLE_METRICS`), and a table of :data:`MEMBER_METRICS` with one
    row per model (indexed by its name) and, for several models, a last row :data:`ENSEMBLE_ROW` for their mean.
    """
    rows = list(named_probs)
    prob = np.mean([p for _, p in rows], axis=0)  # what Ensemble.predict_split gives before a linear partner
    if len(rows) > 1:
        rows.append((ENSEMBLE_ROW, prob))
    scored = [{**binary_metrics(labels, p), "log_loss": log_loss(labels, p)} for _, p in rows]
    table = pd.DataFrame(scored, index=[name for name, _ in rows])[list(MEMBER_METRICS)]
    return prob, {k: scored[-1][k] for k in TABLE_METRICS}, table


def score_members(path: Path, prepared: Prepared, subset: str = "test", batch_size: int = 256
                  ) -> tuple[np.ndarray, dict[str, float], pd.DataFrame]:
    """Score the networks of a saved binary bundle on ``subset`` (``"test"`` or ``"val"``): each model of an
    ensemble on its own (each member reads the split once) and their mean — without the bundle's linear
    partner, if it has one (:func:`score_bundle` and ``predict`` include it).

    Returns :func:`members_table`'s ``(prob, metrics, table)`` (``log_loss``: mean cross-entropy, the study's
    objective on validation); rows are named as saved (a plain bundle without a name: its architecture).
    """
    if subset not in ("test", "val"):
        raise ValueError(f"subset must be 'test' or 'val', got {subset!r}.")
    loaded = _loaded_for_run(path, prepared)
    split = prepared.splits[subset]
    return members_table(split.labels, [(name, member.predict_split(split, batch_size))
                                        for name, member in loaded.named_members])
