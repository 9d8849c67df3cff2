"""Forward selection of the models to average, on small hand-built probabilities."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.metrics import log_loss

from sentiment_lib.selection import forward_select

LABELS = np.array([1, 1, 1, 1, 0, 0, 0, 0])
A = np.array([.9, .9, .9, .2, .1, .1, .1, .1])  # wrong on review 3
B = np.array([.2, .9, .9, .9, .1, .1, .1, .1])  # wrong on review 0: as good as A alone, errs elsewhere
C = A.copy()                                      # a copy of A: adds nothing
D = np.array([.6, .6, .6, .6, .4, .4, .4, .4])    # right everywhere but unsure: the weakest alone


def loss(*members: np.ndarray) -> float:
    return log_loss(LABELS, np.mean(members, axis=0), labels=[0, 1])


def test_it_adds_the_model_that_errs_elsewhere_and_skips_a_copy_and_a_weak_one():
    selection = forward_select([A, C, B, D], LABELS, names=["A", "C", "B", "D"])
    assert selection.chosen == [0, 2]  # A (tied with B and C alone: the first listed), then B
    steps = selection.steps
    assert list(steps["candidate"]) == ["A", "B", "C"] and list(steps["kept"]) == [True, True, False]
    assert list(steps.index) == [1, 2, 3]
    assert steps["val_loss"].tolist() == pytest.approx([loss(A), loss(A, B), loss(A, B, C)])
    assert steps["val_accuracy"].tolist() == pytest.approx([7 / 8, 1.0, 7 / 8])
    # greedy here finds the best subset of all: no other subset's average has a lower loss
    candidates = [A, C, B, D]
    subsets = [s for r in (1, 2, 3, 4) for s in itertools.combinations(candidates, r)]
    assert loss(*[candidates[i] for i in selection.chosen]) == pytest.approx(min(loss(*s) for s in subsets))


def test_ties_go_to_the_earlier_candidate_and_a_tolerance_demands_a_larger_gain():
    assert forward_select([B, A, D], LABELS).chosen == [0, 1]
    assert forward_select([B, A, D], LABELS).steps["candidate"].tolist()[:2] == ["candidate 0", "candidate 1"]
    later_tie = forward_select([A, C, B, B.copy()], LABELS)  # at step 2, B and its copy tie: the first B
    assert later_tie.chosen == [0, 2] and later_tie.steps["candidate"].tolist()[1] == "candidate 2"
    gain = loss(A) - loss(A, B)
    assert forward_select([A, B], LABELS, tolerance=gain + 1e-9).chosen == [0]
    assert forward_select([A, B], LABELS, tolerance=gain - 1e-9).chosen == [0, 1]


def test_each_step_adds_the_best_remaining_candidate_and_the_loss_only_falls():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    # noisy models of one signal, two of them near-copies of the first
    noisy = [1 / (1 + np.exp(-(2 * labels - 1) * 2 - rng.normal(0, 2, 200))) for _ in range(4)]
    probs = noisy + [np.clip(noisy[0] + rng.normal(0, 0.01, 200), 0.01, 0.99) for _ in range(2)]
    selection = forward_select(probs, labels)
    chosen = selection.chosen
    assert len(set(chosen)) == len(chosen) and 1 < len(chosen) < len(probs)
    assert chosen[0] == int(np.argmin([log_loss(labels, p) for p in probs]))
    for k in range(1, len(chosen)):
        after = {i: log_loss(labels, np.mean([probs[j] for j in chosen[:k]] + [probs[i]], axis=0))
                 for i in range(len(probs)) if i not in chosen[:k]}
        assert chosen[k] == min(after, key=after.get)
    kept = selection.steps[selection.steps["kept"]]["val_loss"].to_numpy()
    assert len(kept) == len(chosen) and np.all(np.diff(kept) < 0)
    assert selection.steps["val_loss"].iloc[-1] >= kept[-1]  # the rejected last step did not lower it
    single = forward_select([probs[3]], labels)
    assert single.chosen == [0] and len(single.steps) == 1 and single.steps["kept"].all()


def test_multi_class_probabilities_are_averaged_per_class():
    labels = np.array([0, 1, 2, 2])
    p = np.array([[.98, .01, .01], [.01, .98, .01], [.01, .01, .98], [.5, .25, .25]])  # sure, wrong on the last
    q = np.array([[.6, .2, .2], [.2, .6, .2], [.2, .2, .6], [.1, .1, .8]])  # less sure, right everywhere
    selection = forward_select([q, p], labels)
    assert selection.chosen == [1, 0]  # p alone has the lower loss; averaging q in lowers it again
    assert selection.steps["val_loss"].iloc[-1] == pytest.approx(log_loss(labels, (p + q) / 2, labels=[0, 1, 2]))
    assert selection.steps["val_accuracy"].iloc[-1] == 1.0


@pytest.mark.parametrize("probs, labels, names, match", [
    ([], LABELS, None, "No candidate"),
    ([A, A[:-1]], LABELS, None, r"candidate 1's probabilities have shape \(7,\)"),
    ([A], LABELS[:-1], None, "needs \\(7,\\)"),
    ([A, A * 3], LABELS, None, "candidate 1's probabilities are not all in \\[0, 1\\].*logits"),
    ([A, np.where(A > .5, np.nan, A)], LABELS, None, "NaN"),
    ([A, B], LABELS, ["x", "x"], "one distinct name"),
    ([A, B], LABELS, ["x"], "one distinct name"),
    ([A], LABELS[:, None], None, r"labels must be a non-empty vector \(N,\).*\(8, 1\)"),
    ([A[:0]], LABELS[:0], None, "labels must be a non-empty vector"),
    ([A[:, None]], LABELS, None, r"shape \(8, 1\)"),
    ([np.stack([A, A], axis=1)], LABELS, None, "do not sum to 1"),
])
def test_bad_input_names_the_problem(probs, labels, names, match):
    with pytest.raises(ValueError, match=match):
        forward_select(probs, labels, names)


@pytest.mark.parametrize("tolerance", [-0.1, float("nan"), float("inf")])
def test_a_tolerance_must_be_a_finite_non_negative_number(tolerance):
    with pytest.raises(ValueError, match="tolerance must be a finite number >= 0"):
        forward_select([A, B], LABELS, tolerance=tolerance)


PARTNER = np.array([.9, .9, .9, .2, .1, .1, .1, .1])   # a linear partner wrong on review 3, as A is
X = PARTNER.copy()                                     # the best alone, but wrong where the partner is
Y = np.array([.2, .85, .9, .9, .1, .1, .1, .1])         # a little worse alone, wrong where the partner is right


def test_with_a_partner_each_average_is_judged_averaged_with_it_at_its_best_weight():
    from sentiment_lib.selection import BLEND_GRID, blend

    assert forward_select([X, Y], LABELS, ["X", "Y"]).chosen[0] == 0  # alone, X is better
    selection = forward_select([X, Y], LABELS, ["X", "Y"], partner=PARTNER)
    assert selection.chosen[0] == 1  # with the partner, the network that errs elsewhere is worth more
    best_blend = min(log_loss(LABELS, blend(Y, PARTNER, w), labels=[0, 1]) for w in BLEND_GRID)
    assert selection.steps["val_loss"].iloc[0] == pytest.approx(best_blend, abs=1e-6)
    assert selection.steps["val_accuracy"].iloc[0] == 1.0  # Y and the partner together get every review


@pytest.mark.parametrize("partner, match", [
    (PARTNER[:5], r"the partner's probabilities have shape \(5,\)"),
    (PARTNER * 3, "not all in \\[0, 1\\]"),
])
def test_a_bad_partner_names_the_problem(partner, match):
    with pytest.raises(ValueError, match=match):
        forward_select([X, Y], LABELS, partner=partner)


def test_a_partner_needs_binary_candidates():
    two_class = np.stack([1 - X, X], axis=1)
    with pytest.raises(ValueError, match="positive-class probabilities"):
        forward_select([two_class], LABELS, partner=PARTNER)
