"""Metrics against small cases computed by hand."""
import warnings

import numpy as np
import pytest

from sentiment_lib import metrics
from sentiment_lib.metrics import (binary_metrics, classification_report_frame, confusion, multiclass_metrics,
                                   roc_points)

# Predictions at 0.5: [1, 1, 0, 1, 0] -> TP 2, FP 1, FN 1, TN 1.
Y = [1, 0, 1, 1, 0]
P = [0.9, 0.6, 0.4, 0.8, 0.1]


def test_binary_metrics_match_hand_computed_values():
    m = binary_metrics(Y, P)
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    # 5 of the 6 (positive, negative) pairs are ranked correctly (0.4 < 0.6 is the miss).
    assert m["roc_auc"] == pytest.approx(5 / 6)


def test_threshold_moves_the_decision():
    m = binary_metrics(Y, P, threshold=0.7)  # predictions [1, 0, 0, 1, 0]
    assert (m["accuracy"], m["precision"], m["recall"]) == pytest.approx((4 / 5, 1.0, 2 / 3))


def test_perfect_predictions_score_exactly_one():
    m = binary_metrics([0, 1, 1, 0], [0.01, 0.99, 0.97, 0.3])
    assert all(m[k] == 1.0 for k in ("accuracy", "precision", "recall", "f1", "roc_auc"))


def test_a_single_class_gives_nan_auc_instead_of_crashing():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nor a warning
        m = binary_metrics([1, 1, 1], [0.2, 0.7, 0.9])
        fpr, tpr, auc = roc_points([0, 0], [0.3, 0.6])
    assert np.isnan(m["roc_auc"]) and m["accuracy"] == pytest.approx(2 / 3)
    assert np.isnan(auc)
    none_predicted = binary_metrics([0, 1], [0.1, 0.2])
    assert none_predicted["precision"] == 0.0 and none_predicted["recall"] == 0.0


def test_multiclass_metrics_are_macro_averages():
    y = [0, 1, 2, 2]
    prob = np.eye(3)[[0, 2, 2, 1]]  # predictions [0, 2, 2, 1]
    m = multiclass_metrics(y, prob)
    # per class precision (1, 0, 1/2), recall (1, 0, 1/2), f1 (1, 0, 1/2)
    assert m == pytest.approx({"accuracy": 0.5, "precision": 0.5, "recall": 0.5, "f1": 0.5})


def test_confusion_rows_are_true_classes_in_label_order():
    cm = confusion([1, 0, 1, 1, 0], [1, 1, 0, 1, 0], labels=[1, 0])
    np.testing.assert_array_equal(cm, [[2, 1], [1, 1]])


def test_classification_report_frame_has_classes_and_averages():
    frame = classification_report_frame(Y, [1, 1, 0, 1, 0], target_names=["negative", "positive"])
    assert list(frame.index) == ["negative", "positive", "accuracy", "macro avg", "weighted avg"]
    assert frame.loc["positive", "precision"] == pytest.approx(2 / 3)
    assert frame.loc["negative", "recall"] == pytest.approx(1 / 2)
    assert frame.loc["accuracy", "f1-score"] == pytest.approx(3 / 5)
    assert np.isnan(frame.loc["accuracy", "precision"])
    assert frame["support"].tolist() == [2, 3, 5, 5, 5]


def test_roc_points_run_from_origin_to_one_one():
    fpr, tpr, auc = roc_points(Y, P)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert auc == pytest.approx(5 / 6)


def test_mismatched_or_empty_inputs_raise():
    with pytest.raises(ValueError, match="same order"):
        binary_metrics([0, 1], [0.5])
    with pytest.raises(ValueError, match="empty"):
        binary_metrics([], [])
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        multiclass_metrics([0, 1], [0.2, 0.8])


def test_log_loss_and_accuracy_take_binary_or_class_probabilities():
    y = np.array([1, 0, 1, 1])
    p = np.array([0.9, 0.2, 0.4, 0.8])
    expected = -np.mean(np.log([0.9, 0.8, 0.4, 0.8]))  # the probability given to each true label
    assert metrics.log_loss(y, p) == pytest.approx(expected)
    assert metrics.accuracy(y, p) == 0.75 and metrics.accuracy(y, p, threshold=0.3) == 1.0
    both = np.stack([1 - p, p], axis=1)  # the same as class probabilities (N, 2)
    assert metrics.log_loss(y, both) == pytest.approx(expected) and metrics.accuracy(y, both) == 0.75
    three = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    assert metrics.log_loss([0, 1], three) == pytest.approx(-np.mean(np.log([0.7, 0.1])))
    assert metrics.accuracy([0, 1], three) == 0.5
    with pytest.raises(ValueError, match="labels but prob has"):
        metrics.log_loss(y, p[:3])
    with pytest.raises(ValueError, match=r"shape \(N,\) \(binary\) or \(N, C\)"):
        metrics.accuracy(y, np.zeros((4, 2, 1)))
