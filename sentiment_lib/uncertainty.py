"""How sure a comparison is: intervals for accuracy, a paired test for two models, spread over seeds.

A test subset of N reviews measures accuracy with an error of about ``sqrt(p (1 - p) / N)`` — on the 25,000
official test reviews ±0.4 points at 95% for p ≈ 0.88, more on a smaller subset. Two models scored on the
*same* reviews are compared better by what they disagree on than by their two intervals:

- :func:`accuracy_interval`: the exact (Clopper–Pearson) binomial interval for ``k`` correct of ``n``;
- :func:`mcnemar`: McNemar's exact test on the reviews exactly one of two models gets right (the discordant
  pairs; under "equally accurate" each is a fair coin), and the difference with its own interval;
- :func:`with_intervals`: a comparison table with ``accuracy_low`` / ``accuracy_high`` columns; :func:`accuracies`:
  such a table from each model's test probabilities;
- :func:`seed_spread`: mean, standard deviation and range of a metric over runs that differ only in ``SEED``;
- :func:`difference_verdict`: the study's one rule for "a real difference" (below), used by every page.

**The rule.** McNemar's test measures only the noise of the test sample: it says whether *these two trained
models* differ on reviews like these, not whether another seed would rank them the same way. So a difference
counts as real when the paired test separates the two models (p < 0.05) *and* it exceeds what a change of
seed alone moves a difference between two single runs: ``|difference| > 2 × sqrt(s_a² + s_b²)``, with ``s_a``,
``s_b`` the seed standard deviations measured for the two models (for a model whose spread was not measured,
the spread measured for the other, or for the run's reference model; a deterministic model such as a linear
one has spread 0). Otherwise the verdict is "within test noise" or "within seed spread".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from . import metrics

LEVEL = 0.95
SIGNIFICANCE = 0.05


def accuracy_interval(correct: int, total: int, level: float = LEVEL) -> tuple[float, float]:
    """Exact (Clopper–Pearson) ``level`` interval for a proportion of ``correct`` out of ``total`` (> 0)."""
    if total <= 0 or not 0 <= correct <= total:
        raise ValueError(f"Need 0 <= correct <= total and total > 0, got {correct} of {total}.")
    ci = stats.binomtest(int(correct), int(total)).proportion_ci(confidence_level=level, method="exact")
    return float(ci.low), float(ci.high)


def predictions_correct(labels: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """(N,) bool: whether each review is classified right (``prob``: (N,) positive probability at 0.5, or
    (N, C) class probabilities by argmax)."""
    prob = np.asarray(prob)
    predicted = prob.argmax(axis=1) if prob.ndim == 2 else (prob >= 0.5).astype(int)
    return predicted == np.asarray(labels)


@dataclass(frozen=True)
class PairedTest:
    """McNemar's exact test of model A against model B on the same reviews.

    ``a_only`` / ``b_only``: reviews only A / only B gets right; ``difference``: accuracy of A minus B, with a
    ``level`` interval (``low``, ``high``; normal approximation for paired proportions); ``p_value``:
    two-sided exact binomial test of ``a_only`` among the discordant pairs.
    """

    a_only: int
    b_only: int
    n: int
    difference: float
    low: float
    high: float
    p_value: float

    @property
    def significant(self) -> bool:
        return self.p_value < SIGNIFICANCE


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray, level: float = LEVEL) -> PairedTest:
    """Compare two models scored on the same reviews; ``correct_*``: (N,) bool from :func:`predictions_correct`."""
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"Both models must be scored on the same non-empty reviews, got shapes {a.shape} and "
                         f"{b.shape}.")
    n = a.size
    a_only, b_only = int((a & ~b).sum()), int((~a & b).sum())
    difference = (a_only - b_only) / n
    # variance of the difference of paired proportions (Agresti, Categorical Data Analysis, 10.1.1)
    variance = ((a_only + b_only) / n - difference ** 2) / n
    half = stats.norm.ppf(0.5 + level / 2) * np.sqrt(max(variance, 0.0))
    discordant = a_only + b_only
    p_value = 1.0 if discordant == 0 else float(stats.binomtest(a_only, discordant, 0.5).pvalue)
    return PairedTest(a_only, b_only, n, float(difference), float(difference - half), float(difference + half),
                      p_value)


def with_intervals(table: pd.DataFrame, n: int | Mapping[str, int], level: float = LEVEL) -> pd.DataFrame:
    """``table`` (one row per model, an ``accuracy`` column) with ``accuracy_low`` and ``accuracy_high``
    beside ``accuracy``: the exact interval for ``round(accuracy × n)`` correct of ``n`` test reviews (``n``
    per row when the models were scored on different subsets)."""
    out = table.copy()
    sizes = {name: (n[name] if isinstance(n, Mapping) else n) for name in out.index}
    bounds = {name: accuracy_interval(int(round(acc * sizes[name])), sizes[name], level)
              for name, acc in out["accuracy"].items()}
    where = list(out.columns).index("accuracy") + 1
    out.insert(where, "accuracy_low", [bounds[name][0] for name in out.index])
    out.insert(where + 1, "accuracy_high", [bounds[name][1] for name in out.index])
    return out


def accuracies(labels: np.ndarray, probs: Mapping[str, np.ndarray], level: float = LEVEL) -> pd.DataFrame:
    """Test accuracy of each model with its exact interval: one row per name of ``probs`` (name -> probabilities
    (N,) of class 1, or (N, C)), columns ``accuracy``, ``accuracy_low``, ``accuracy_high``; ``labels`` (N,)."""
    table = pd.DataFrame({"accuracy": [metrics.accuracy(labels, p) for p in probs.values()]}, index=list(probs))
    return with_intervals(table, len(labels), level)


def seed_spread(values: Sequence[float]) -> dict[str, float]:
    """``mean``, ``std`` (sample, ddof=1), ``min``, ``max`` and ``runs`` of one metric over seeds."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        raise ValueError("No runs to summarise: train at least one seed.")
    return {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if values.size > 1 else float("nan"),
            "min": float(values.min()), "max": float(values.max()), "runs": int(values.size)}


WITHIN_TEST_NOISE = "within test noise"
WITHIN_SEED_SPREAD = "within seed spread"


def seed_band(std_a: float | None, std_b: float | None) -> float:
    """How far a change of seed alone moves the difference between two single runs: ``2 × sqrt(s_a² + s_b²)``
    (accuracy units). A missing (``None``/NaN) spread takes the other's; both missing is a ``ValueError``:
    the rule needs at least one measured spread."""
    known = [s for s in (std_a, std_b) if s is not None and np.isfinite(s)]
    if not known:
        raise ValueError("No seed spread measured for either model: train one of them with SEEDS >= 2.")
    a = std_a if std_a is not None and np.isfinite(std_a) else known[0]
    b = std_b if std_b is not None and np.isfinite(std_b) else known[0]
    return float(2.0 * np.sqrt(a ** 2 + b ** 2))


def difference_verdict(test: "PairedTest", a: str, b: str, band: float) -> str:
    """The rule of the module docstring: ``"<a> better"`` / ``"<b> better"`` when McNemar's test separates
    them and ``|difference| > band`` (:func:`seed_band`); else ``"within test noise"`` (the test does not
    separate them) or ``"within seed spread"`` (it does, but a change of seed moves a difference that far)."""
    if not test.significant:
        return WITHIN_TEST_NOISE
    if abs(test.difference) <= band:
        return WITHIN_SEED_SPREAD
    return f"{a} better" if test.difference > 0 else f"{b} better"


def paired_table(labels: np.ndarray, probs: Mapping[str, np.ndarray], pairs: Sequence[tuple[str, str]],
                 seed_std: Mapping[str, float] | None = None, default_std: float | None = None,
                 level: float = LEVEL) -> pd.DataFrame:
    """McNemar's test for each ``(a, b)`` of ``pairs`` (names in ``probs``: (N,) positive probabilities on the
    same ``labels``). One row per pair, indexed ``"a vs b"``: accuracy of each, the difference (a − b) with its
    interval, the discordant counts, the p-value, ``seed_band`` (:func:`seed_band` from ``seed_std``, the
    models' measured seed standard deviations, with ``default_std`` for a model not in it) and ``verdict`` by
    the rule of the module docstring (:func:`difference_verdict`). Without any spread (``seed_std`` and
    ``default_std`` both ``None``) the band is 0 and the verdict is the paired test's alone."""
    seed_std = dict(seed_std or {})
    rows = {}
    for a, b in pairs:
        missing = [name for name in (a, b) if name not in probs]
        if missing:
            raise ValueError(f"No probabilities for {missing}; pass them in probs (have {sorted(probs)}).")
        correct_a, correct_b = predictions_correct(labels, probs[a]), predictions_correct(labels, probs[b])
        test = mcnemar(correct_a, correct_b, level)
        std_a, std_b = seed_std.get(a, default_std), seed_std.get(b, default_std)
        band = 0.0 if std_a is None and std_b is None else seed_band(std_a, std_b)
        rows[f"{a} vs {b}"] = {"accuracy_a": float(correct_a.mean()), "accuracy_b": float(correct_b.mean()),
                               "difference": test.difference, "low": test.low, "high": test.high,
                               "only_a_right": test.a_only, "only_b_right": test.b_only, "p_value": test.p_value,
                               "seed_band": band, "verdict": difference_verdict(test, a, b, band)}
    return pd.DataFrame.from_dict(rows, orient="index")


def compared(paired: pd.DataFrame, a: str, b: str) -> str:
    """The verdict of ``a`` against ``b`` in a :func:`paired_table` by the module's rule: ``"better"``,
    ``"worse"``, ``"within test noise"`` or ``"within seed spread"``; ``"not in this run"`` when the table has
    no such pair."""
    key = f"{a} vs {b}"
    if key not in paired.index:
        return "not in this run"
    verdict = paired.loc[key, "verdict"]
    return "better" if verdict == f"{a} better" else "worse" if verdict == f"{b} better" else verdict


def p_text(p: float) -> str:
    """A p-value for the page: two significant figures (``"3.1e-07"``), and ``"< 1e-300"`` where it is too small
    for a float (never a bare 0)."""
    return f"{p:.2g}" if p > 0 else "< 1e-300"


# A paired table's columns as a reader sees them (rows are "first vs second").
SHOWN_COLUMNS = {"accuracy_a": "accuracy, first", "accuracy_b": "accuracy, second",
                 "difference": "difference (first − second)", "low": "95% interval, low",
                 "high": "95% interval, high", "only_a_right": "reviews only the first gets right",
                 "only_b_right": "reviews only the second gets right", "p_value": "McNemar p-value",
                 "seed_band": "seed band", "verdict": "verdict"}


def shown(paired: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """A :func:`paired_table` for the page: numbers rounded to ``digits`` decimals, the p-value as
    :func:`p_text` writes it (so that a small p-value does not read as 0), and the columns named in words
    (:data:`SHOWN_COLUMNS`: ``accuracy_a`` → "accuracy, first", …)."""
    out = paired.round(digits)
    if "p_value" in out.columns:
        out["p_value"] = [p_text(p) for p in paired["p_value"]]
    return out.rename(columns=SHOWN_COLUMNS)
