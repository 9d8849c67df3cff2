"""Which trained models to average: greedy forward selection by validation loss.

Averaging the probabilities of several models helps when they err on different inputs, and can hurt when a
weak member drags the mean or when near-copies of one model just double its vote. Taking the k best models
by their own score ignores both. Forward selection judges each addition by what it does to the *average*:
start from the candidate with the lowest validation loss; at each step add the remaining candidate whose
addition gives the average with the lowest validation loss; stop when no addition lowers it. This is a
variant of Caruana et al., "Ensemble selection from libraries of models" (ICML 2004), which adds with
replacement for a fixed number of steps and keeps the best prefix; here members are added without
replacement, so every kept model has equal weight and the ensemble bundle's plain mean applies.

When the saved model will also average the kept models with a linear partner (``w · mean + (1 − w) · partner``,
:func:`blend`, the weight chosen by :func:`blend_weight`), the selection can judge each average as it will be
used: with the partner, at the weight that suits it best on validation (``partner=`` of :func:`forward_select`).
Models that the partner already covers then add less than models that err where it errs.

The choice is made on the validation subset, the subset that chose each model's checkpoint and the study's
trials; the test subset is never read.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from .metrics import accuracy, log_loss


def _scores(labels: np.ndarray, prob: np.ndarray) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of probabilities (N,) (binary: class 1) or (N, C)."""
    return log_loss(labels, prob), accuracy(labels, prob)


BLEND_GRID = np.round(np.linspace(0.0, 1.0, 21), 2)  # the weights on the network(s) tried: 0, 0.05, …, 1


def blend(network_prob: np.ndarray, linear_prob: np.ndarray, weight: float) -> np.ndarray:
    """``weight · network_prob + (1 − weight) · linear_prob``, (N,)."""
    return weight * np.asarray(network_prob) + (1 - weight) * np.asarray(linear_prob)


def blend_weight(labels: np.ndarray, network_prob: np.ndarray, linear_prob: np.ndarray,
                 grid: Sequence[float] = BLEND_GRID) -> float:
    """The weight ``w`` on the network in ``w · network + (1 − w) · linear`` that minimises the log loss on the
    given (validation) reviews; probabilities (N,) of the positive class. Test is never read here."""
    from sklearn.metrics import log_loss as sklearn_log_loss  # explicit labels and clipping, as chosen before

    labels = np.asarray(labels)
    losses = [sklearn_log_loss(labels, np.clip(blend(network_prob, linear_prob, w), 1e-7, 1 - 1e-7), labels=[0, 1])
              for w in grid]
    return float(grid[int(np.argmin(losses))])


def _judged(labels: np.ndarray, mean: np.ndarray, partner: np.ndarray | None) -> tuple[float, float]:
    """:func:`_scores` of a candidate average (N,), or of its blend with ``partner`` (N,) at its best weight."""
    if partner is None:
        return _scores(labels, mean)
    return _scores(labels, blend(mean, partner, blend_weight(labels, mean, partner)))


def _checked(probs: Sequence[np.ndarray], labels: np.ndarray, names: Sequence[str] | None
             ) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
    if len(probs) == 0:
        raise ValueError("No candidate models to select from: pass at least one array of probabilities.")
    arrays = [np.asarray(p, dtype=np.float64) for p in probs]
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"labels must be a non-empty vector (N,) of class indices, got shape {labels.shape}.")
    names = [f"candidate {i}" for i in range(len(arrays))] if names is None else list(names)
    if len(names) != len(arrays) or len(set(names)) != len(names):
        raise ValueError(f"Give one distinct name per candidate: {len(arrays)} candidates, names {names}.")
    for name, p in zip(names, arrays):
        if p.shape != arrays[0].shape or p.ndim not in (1, 2) or len(p) != len(labels) or p.shape[1:] == (1,):
            raise ValueError(f"{name}'s probabilities have shape {p.shape}; every candidate needs ({len(labels)},) "
                             f"or ({len(labels)}, C), the same for all (first: {arrays[0].shape}).")
        if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
            raise ValueError(f"{name}'s probabilities are not all in [0, 1] (NaN, inf or out of range): score "
                             "the models with predict_split, which returns probabilities, not logits.")
        if p.ndim == 2 and not np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
            raise ValueError(f"{name}'s class probabilities do not sum to 1 per row: pass softmax outputs "
                             "(predict_split gives them).")
    return arrays, labels, names


@dataclass
class Selection:
    """The outcome of :func:`forward_select`.

    ``chosen``: indices into the candidates, in the order they were added (the first is the best alone).
    ``steps``: one row per step, indexed by step number from 1 — ``candidate`` (by name: at step 1 the best
    alone, later the best addition), ``val_loss`` and ``val_accuracy`` of the average with it, and ``kept`` (``False`` for the last
    row when the search stopped because that best addition did not lower the loss).
    """

    chosen: list[int]
    steps: pd.DataFrame


def forward_select(probs: Sequence[np.ndarray], labels: np.ndarray, names: Sequence[str] | None = None,
                   tolerance: float = 0.0, partner: np.ndarray | None = None) -> Selection:
    """Greedy forward selection, without replacement, of the candidates whose mean probability has the lowest
    validation log loss — averaged with ``partner`` first, when one is given.

    ``probs``: each candidate's validation probabilities, all (N,) (binary: positive class) or all (N, C);
    ``labels``: (N,) true classes; ``names``: labels for the ``steps`` table (default ``candidate i``);
    ``tolerance``: an addition is kept only if it lowers the loss by more than this (0: any decrease);
    ``partner``: a linear partner's validation probabilities (N,) of the positive class (binary candidates
    only): every average is then judged as :func:`blend` with it at its :func:`blend_weight`, and the ``steps``
    table's loss and accuracy are that blend's.
    Ties go to the earlier candidate, so list candidates best-ranked first. ``ValueError`` on no candidates,
    mismatched shapes, or values that are not probabilities.
    """
    if not (np.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(f"tolerance must be a finite number >= 0 (the loss decrease an addition must beat), "
                         f"got {tolerance!r}.")
    arrays, labels, names = _checked(probs, labels, names)
    if partner is not None:
        partner = _checked([partner], labels, ["the partner"])[0][0]
        if partner.ndim != 1 or arrays[0].ndim != 1:
            raise ValueError("A linear partner averages positive-class probabilities: pass (N,) arrays for the "
                             "partner and the candidates (binary models), or no partner.")
    alone = [_judged(labels, p, partner)[0] for p in arrays]
    chosen = [int(np.argmin(alone))]  # argmin: the earliest of tied candidates
    total = arrays[chosen[0]].copy()
    loss, accuracy = _judged(labels, total, partner)
    rows = [{"candidate": names[chosen[0]], "val_loss": loss, "val_accuracy": accuracy, "kept": True}]
    while len(chosen) < len(arrays):
        trials = {i: _judged(labels, (total + arrays[i]) / (len(chosen) + 1), partner)
                  for i in range(len(arrays)) if i not in chosen}
        best = min(trials, key=lambda i: trials[i][0])  # the first of equal losses: the earlier candidate
        better = trials[best][0] < loss - tolerance
        rows.append({"candidate": names[best], "val_loss": trials[best][0], "val_accuracy": trials[best][1],
                     "kept": better})
        if not better:
            break
        chosen.append(best)
        total += arrays[best]
        loss = trials[best][0]
    steps = pd.DataFrame(rows, index=pd.RangeIndex(1, len(rows) + 1, name="step"))
    return Selection(chosen, steps)
