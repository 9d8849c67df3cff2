"""Classification metrics, computed with scikit-learn; numbers are reported as they are (no capping).

Binary tasks pass ``prob`` as the positive-class probability, shape (N,); multi-class tasks pass
class probabilities, shape (N, C). Labels are 0/1 (binary) or class indices 0..C-1.
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning


def _check_pair(y_true: np.ndarray, prob: np.ndarray) -> None:
    if len(y_true) == 0:
        raise ValueError("No examples to score: y_true is empty. Pass at least one prediction.")
    if len(y_true) != len(prob):
        raise ValueError(f"y_true has {len(y_true)} labels but prob has {len(prob)} rows; pass one "
                         "probability per label, in the same order.")


def binary_metrics(y_true, prob, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, precision, recall, F1 (positive class 1) and ROC AUC.

    Args:
        y_true: (N,) labels 0/1.
        prob: (N,) predicted probability of class 1.
        threshold: predict 1 when ``prob >= threshold``.

    Returns floats; ``roc_auc`` is NaN when ``y_true`` holds a single class, and precision/recall/F1
    are 0 when undefined (no predicted or no true positives).
    """
    y_true = np.asarray(y_true).astype(int).ravel()
    prob = np.asarray(prob, dtype=float).ravel()
    _check_pair(y_true, prob)
    y_pred = (prob >= threshold).astype(int)
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=[1], average=None, zero_division=0)
    return {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "precision": float(precision[0]),
        "recall": float(recall[0]),
        "f1": float(f1[0]),
        "roc_auc": float(skm.roc_auc_score(y_true, prob)) if len(np.unique(y_true)) == 2 else float("nan"),
    }


def _classes(prob: np.ndarray) -> list[int]:
    if prob.ndim not in (1, 2):
        raise ValueError(f"prob must have shape (N,) (binary) or (N, C) (multi-class), got {prob.shape}.")
    return [0, 1] if prob.ndim == 1 else list(range(prob.shape[1]))


def log_loss(y_true, prob) -> float:
    """Mean cross-entropy in nats — the loss training minimises and the study's objective.

    ``prob``: (N,) probability of class 1 for labels 0/1, or (N, C) class probabilities for labels 0..C-1.
    """
    y_true = np.asarray(y_true).astype(int).ravel()
    prob = np.asarray(prob, dtype=float)
    _check_pair(y_true, prob)
    return float(skm.log_loss(y_true, prob, labels=_classes(prob)))


def accuracy(y_true, prob, threshold: float = 0.5) -> float:
    """Share of correct predictions: ``prob >= threshold`` for (N,) binary probabilities, the arg-max for
    (N, C) class probabilities (the rules of :func:`binary_metrics` and :func:`multiclass_metrics`)."""
    y_true = np.asarray(y_true).astype(int).ravel()
    prob = np.asarray(prob, dtype=float)
    _check_pair(y_true, prob)
    _classes(prob)
    y_pred = (prob >= threshold).astype(int) if prob.ndim == 1 else prob.argmax(axis=1)
    return float(np.mean(y_pred == y_true))


def multiclass_metrics(y_true, prob) -> dict[str, float]:
    """Accuracy and macro-averaged precision, recall and F1 over all C classes.

    Args:
        y_true: (N,) class indices in 0..C-1.
        prob: (N, C) class probabilities (or scores); the prediction is the arg-max.

    Keys are ``accuracy``, ``precision``, ``recall``, ``f1`` (the last three macro averages, so
    per-epoch histories have the same columns for binary and multi-class runs). A class that is never
    predicted or never present counts 0 in the averages.
    """
    y_true = np.asarray(y_true).astype(int).ravel()
    prob = np.asarray(prob, dtype=float)
    if prob.ndim != 2:
        raise ValueError(f"prob must have shape (N, C) for multi-class metrics, got {prob.shape}.")
    _check_pair(y_true, prob)
    y_pred = prob.argmax(axis=1)
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=list(range(prob.shape[1])), average="macro", zero_division=0)
    return {"accuracy": float(skm.accuracy_score(y_true, y_pred)),
            "precision": float(precision), "recall": float(recall), "f1": float(f1)}


def confusion(y_true, y_pred, labels: Sequence | None = None) -> np.ndarray:
    """Confusion matrix (C, C) of counts: rows are true classes, columns predicted, in ``labels`` order
    (default: the sorted classes present in either input)."""
    return skm.confusion_matrix(np.asarray(y_true).ravel(), np.asarray(y_pred).ravel(), labels=labels)


def classification_report_frame(y_true, y_pred, labels: Sequence | None = None,
                                target_names: Sequence[str] | None = None) -> pd.DataFrame:
    """scikit-learn's classification report as a table.

    Rows: one per class (named by ``target_names`` if given), then ``accuracy``, ``macro avg``,
    ``weighted avg``; columns ``precision``, ``recall``, ``f1-score``, ``support``. As in the text report,
    the accuracy row carries its value in the ``f1-score`` column and NaN precision/recall.
    """
    y_true = np.asarray(y_true).ravel()
    report = skm.classification_report(y_true, np.asarray(y_pred).ravel(), labels=labels,
                                       target_names=target_names, output_dict=True, zero_division=0)
    rows = {}
    for name, value in report.items():
        if isinstance(value, dict):
            rows[name] = value
        else:  # "accuracy" is a bare float
            rows[name] = {"precision": np.nan, "recall": np.nan, "f1-score": value, "support": len(y_true)}
    frame = pd.DataFrame.from_dict(rows, orient="index")[["precision", "recall", "f1-score", "support"]]
    frame["support"] = frame["support"].astype(int)
    return frame


def roc_points(y_true, prob) -> tuple[np.ndarray, np.ndarray, float]:
    """ROC curve of a binary classifier.

    Args: y_true (N,) labels 0/1; prob (N,) probability of class 1.

    Returns ``(fpr, tpr, auc)``: false- and true-positive rates (K,) for decreasing thresholds, and the
    area under the curve. With a single class in ``y_true`` the curve is undefined: the rates contain NaN
    and ``auc`` is NaN.
    """
    y_true = np.asarray(y_true).astype(int).ravel()
    prob = np.asarray(prob, dtype=float).ravel()
    _check_pair(y_true, prob)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        fpr, tpr, _ = skm.roc_curve(y_true, prob)
    auc = float(skm.auc(fpr, tpr)) if len(np.unique(y_true)) == 2 else float("nan")
    return fpr, tpr, auc
