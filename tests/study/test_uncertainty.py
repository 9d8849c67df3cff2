"""Intervals and paired tests: checked against values worked out by hand or by the textbook formula."""
import numpy as np
import pandas as pd
import pytest

from sentiment_lib import uncertainty


def test_the_exact_interval_contains_the_estimate_and_narrows_with_more_reviews():
    low, high = uncertainty.accuracy_interval(88, 100)
    assert low < 0.88 < high
    wide = high - low
    low, high = uncertainty.accuracy_interval(22000, 25000)
    assert low < 0.88 < high and high - low < wide / 10
    # the normal approximation is close at this size: ±1.96·sqrt(p(1-p)/n)
    assert (high - low) / 2 == pytest.approx(1.96 * np.sqrt(0.88 * 0.12 / 25000), rel=0.02)
    assert uncertainty.accuracy_interval(0, 10)[0] == 0.0 and uncertainty.accuracy_interval(10, 10)[1] == 1.0
    with pytest.raises(ValueError, match="correct <= total"):
        uncertainty.accuracy_interval(11, 10)


def test_mcnemar_counts_only_the_reviews_the_models_disagree_on():
    a = np.array([True] * 60 + [False] * 10 + [True] * 20 + [False] * 10)
    b = np.array([True] * 60 + [True] * 10 + [False] * 20 + [False] * 10)
    test = uncertainty.mcnemar(a, b)
    assert (test.a_only, test.b_only, test.n) == (20, 10, 100)
    assert test.difference == pytest.approx(0.10)
    from scipy.stats import binomtest
    assert test.p_value == pytest.approx(binomtest(20, 30, 0.5).pvalue)
    assert test.low < 0.10 < test.high
    assert not test.significant
    same = uncertainty.mcnemar(a, a)
    assert same.p_value == 1.0 and same.difference == 0.0
    with pytest.raises(ValueError, match="same non-empty reviews"):
        uncertainty.mcnemar(a, b[:-1])


def test_a_large_consistent_gap_is_significant_and_named():
    a = np.ones(1000, dtype=bool)
    b = np.r_[np.zeros(60, dtype=bool), np.ones(940, dtype=bool)]
    test = uncertainty.mcnemar(a, b)
    assert test.significant and test.low > 0
    assert uncertainty.difference_verdict(test, "big", "small", band=0.0) == "big better"
    assert uncertainty.difference_verdict(uncertainty.mcnemar(b, a), "small", "big", band=0.0) == "big better"


def test_the_rule_needs_the_paired_test_and_the_seed_band():
    a = np.ones(1000, dtype=bool)
    b = np.r_[np.zeros(60, dtype=bool), np.ones(940, dtype=bool)]  # +0.06, p far below 0.05
    test = uncertainty.mcnemar(a, b)
    assert uncertainty.seed_band(0.01, 0.02) == pytest.approx(2 * np.sqrt(0.01 ** 2 + 0.02 ** 2))
    assert uncertainty.seed_band(0.03, None) == pytest.approx(uncertainty.seed_band(0.03, 0.03))  # the other's
    assert uncertainty.seed_band(float("nan"), 0.0) == 0.0  # a linear model against a measured deterministic one
    with pytest.raises(ValueError, match="SEEDS >= 2"):
        uncertainty.seed_band(None, float("nan"))
    assert uncertainty.difference_verdict(test, "a", "b", band=0.059) == "a better"
    assert uncertainty.difference_verdict(test, "a", "b", band=0.061) == uncertainty.WITHIN_SEED_SPREAD
    small = uncertainty.mcnemar(np.r_[np.ones(3, bool), np.zeros(97, bool)], np.zeros(100, bool))  # 3 discordant
    assert uncertainty.difference_verdict(small, "a", "b", band=0.0) == uncertainty.WITHIN_TEST_NOISE


def test_tables_get_intervals_and_paired_rows():
    table = pd.DataFrame({"accuracy": [0.9, 0.8], "f1": [0.9, 0.8]}, index=["x", "y"])
    out = uncertainty.with_intervals(table, 200)
    assert list(out.columns) == ["accuracy", "accuracy_low", "accuracy_high", "f1"]
    assert (out["accuracy_low"] < out["accuracy"]).all() and (out["accuracy"] < out["accuracy_high"]).all()
    labels = np.array([1, 0, 1, 0, 1, 0, 1, 0])
    probs = {"good": np.array([.9, .1, .8, .2, .7, .3, .6, .4]), "bad": np.array([.1, .9, .8, .2, .7, .3, .6, .4])}
    paired = uncertainty.paired_table(labels, probs, [("good", "bad")])
    row = paired.loc["good vs bad"]
    assert (row["only_a_right"], row["only_b_right"]) == (2, 0) and row["accuracy_a"] == 1.0
    assert row["verdict"] == "within test noise"  # 2 discordant reviews prove nothing
    with pytest.raises(ValueError, match="No probabilities"):
        uncertainty.paired_table(labels, probs, [("good", "absent")])
    assert uncertainty.compared(paired, "good", "bad") == "within test noise"
    assert uncertainty.compared(paired, "good", "ugly") == "not in this run"
    big = np.r_[np.ones(500), np.zeros(500)]
    clear = uncertainty.paired_table(big, {"sure": big, "coin": np.full(1000, 0.6)}, [("sure", "coin"), ("coin", "sure")])
    assert uncertainty.compared(clear, "sure", "coin") == "better" and uncertainty.compared(clear, "coin", "sure") == "worse"
    assert (clear["seed_band"] == 0).all()  # no spread given: the paired test alone
    # a +0.5 gap is within the band of two models whose seeds move them by 0.2 each (2·√(0.2² + 0.2²) ≈ 0.57)
    spread = uncertainty.paired_table(big, {"sure": big, "coin": np.full(1000, 0.6)}, [("sure", "coin")],
                                      seed_std={"sure": 0.2}, default_std=0.2)
    assert spread.loc["sure vs coin", "verdict"] == uncertainty.WITHIN_SEED_SPREAD
    deterministic = uncertainty.paired_table(big, {"sure": big, "coin": np.full(1000, 0.6)}, [("sure", "coin")],
                                             seed_std={"sure": 0.1, "coin": 0.0})
    assert deterministic.loc["sure vs coin", "seed_band"] == pytest.approx(0.2)
    assert uncertainty.compared(deterministic, "sure", "coin") == "better"


def test_seed_spread():
    spread = uncertainty.seed_spread([0.80, 0.82, 0.84])
    assert spread["mean"] == pytest.approx(0.82) and spread["std"] == pytest.approx(0.02)
    assert (spread["min"], spread["max"], spread["runs"]) == (0.80, 0.84, 3)
    with pytest.raises(ValueError, match="at least one seed"):
        uncertainty.seed_spread([])


def test_a_shown_paired_table_keeps_a_small_p_value_readable():
    labels = np.ones(60, dtype=int)
    probs = {"a": np.full(60, 0.9), "b": np.full(60, 0.1)}  # a right on all 60, b on none: p ≈ 1.7e-18
    table = uncertainty.paired_table(labels, probs, [("a", "b")])
    shown = uncertainty.shown(table)
    assert table.round(4).loc["a vs b", "p_value"] == 0.0  # what rounding alone would show
    assert float(shown.loc["a vs b", "McNemar p-value"]) == pytest.approx(table.loc["a vs b", "p_value"], rel=0.05)
    assert shown.loc["a vs b", "McNemar p-value"] != "0"
    assert shown.loc["a vs b", "difference (first − second)"] == 1.0 and shown.loc["a vs b", "verdict"] == "a better"
    assert shown.loc["a vs b", "reviews only the first gets right"] == 60
    assert list(shown.columns) == [uncertainty.SHOWN_COLUMNS[c] for c in table.columns]


def test_a_p_value_too_small_for_a_float_is_not_written_as_zero():
    assert uncertainty.p_text(0.0) == "< 1e-300"
    assert uncertainty.p_text(0.0123) == "0.012" and uncertainty.p_text(3.14e-7) == "3.1e-07"


def test_accuracies_give_each_model_its_test_accuracy_and_exact_interval():
    labels = np.array([1, 0, 1, 1, 0, 0, 1, 0])
    probs = {"right": labels * 0.8 + 0.1, "half": np.array([0.9, 0.9, 0.1, 0.9, 0.1, 0.1, 0.1, 0.9])}
    table = uncertainty.accuracies(labels, probs)
    assert list(table.index) == ["right", "half"]
    assert table.loc["right", "accuracy"] == 1.0 and table.loc["half", "accuracy"] == 0.5
    assert (table.loc["half", "accuracy_low"], table.loc["half", "accuracy_high"]) == \
        pytest.approx(uncertainty.accuracy_interval(4, 8))
