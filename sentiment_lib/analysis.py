"""Looking at what a model did: star-rating buckets, and where and why it errs.

``rating_buckets`` turns star ratings into 4 classes for the harder multi-class task. ``misclassified``,
``error_analysis`` and ``error_counts`` look at a model's test errors — the last counts what can be counted
(reviews whose own text states a score on the other side of their label), so that a report says only what it
counted; ``as_quotes`` shows reviews in full. ``predictions_frame`` lines up every model's test probabilities
for the predictions file. ``attention_examples`` and ``read_attention`` pick reviews and read where an
attention model looked. (The linear reference models are :mod:`sentiment_lib.linear`.)
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .rundir import Prepared

RATING_BUCKETS = ("1–2 stars", "3–4 stars", "7–8 stars", "9–10 stars")


def rating_buckets(ratings: np.ndarray) -> np.ndarray:
    """Star ratings (1–4, 7–10) → 4 classes: 0 = 1–2, 1 = 3–4, 2 = 7–8, 3 = 9–10 (names in
    ``RATING_BUCKETS``). Raises when a rating is missing (CSV source) or outside those values."""
    ratings = np.asarray(ratings)
    table = {1: 0, 2: 0, 3: 1, 4: 1, 7: 2, 8: 2, 9: 3, 10: 3}
    bad = sorted({int(r) for r in ratings if int(r) not in table})
    if bad:
        raise ValueError(f"Star ratings {bad[:5]} cannot be bucketed (missing ratings come from the CSV "
                         f"source, which has none): use the official archive for the multi-class task.")
    return np.array([table[int(r)] for r in ratings], dtype=np.int64)


def predictions_frame(prepared: Prepared, probs: dict[str, np.ndarray]) -> pd.DataFrame:
    """The test reviews with each model's positive probability (one column per model)."""
    test = prepared.reviews[prepared.reviews["subset"] == "test"].reset_index(drop=True)
    frame = test[["split", "id", "rating", "label"]].copy()
    for name, prob in probs.items():
        frame[f"prob_{name}"] = np.round(prob, 5)
    return frame


def misclassified(prepared: Prepared, prob: np.ndarray, n: int = 6, width: int | None = None) -> pd.DataFrame:
    """The ``n`` test reviews the model got most confidently wrong (``prob``: (N,) positive probability), with
    their star rating and length in tokens; ``text`` whole, or its first ``width`` characters."""
    test = prepared.reviews[prepared.reviews["subset"] == "test"].reset_index(drop=True)
    labels = prepared.splits["test"].labels
    wrong = np.flatnonzero((prob >= 0.5).astype(int) != labels)
    confidence = np.abs(prob[wrong] - 0.5)
    rows = wrong[np.argsort(-confidence, kind="stable")[:n]]
    out = pd.DataFrame({
        "label": np.where(labels[rows] == 1, "positive", "negative"),
        "p_positive": np.round(prob[rows], 3),
        "rating": test.loc[rows, "rating"].to_numpy(),
        "tokens": prepared.splits["test"].lengths[rows],
        "text": (test.loc[rows, "text"] if width is None else test.loc[rows, "text"].str.slice(0, width)).to_numpy(),
    })
    return out


def error_analysis(prepared: Prepared, prob: np.ndarray, max_len: int) -> dict[str, float]:
    """Where errors concentrate: error rate on long (truncated) vs short reviews, and on the
    mild ratings (4 and 7 stars) vs the extreme ones (1 and 10)."""
    test = prepared.splits["test"]
    wrong = (prob >= 0.5).astype(int) != test.labels
    long = test.lengths > max_len
    mild = np.isin(test.ratings, (4, 7))
    extreme = np.isin(test.ratings, (1, 10))
    rate = lambda mask: float(wrong[mask].mean()) if mask.any() else float("nan")  # noqa: E731
    return {"error_rate": float(wrong.mean()), "error_long": rate(long), "error_short": rate(~long),
            "error_mild": rate(mild), "error_extreme": rate(extreme)}


# A score the review states in its own text: "7/10", "8 out of 10", "4.5/5", "2 / 10" (not dates or "1/2").
_STATED_SCORE = re.compile(r"(?<![\d/])(?<!\d\.)(\d{1,2}(?:\.\d+)?)\s*(?:/|out\s+of)\s*(10|5)(?![\d/]|\.\d)", re.I)


def stated_side(text: str) -> str | None:
    """Which side the scores a review states in its own text fall on, on IMDB's scale (``"positive"``: 7 or
    more of 10, ``"negative"``: 4 or less; ``"mixed"`` when it states both; ``None`` when it states no score
    or only middling ones). A score out of 5 counts double."""
    sides = set()
    for value, scale in _STATED_SCORE.findall(text):
        score = float(value) * (10 / float(scale))
        if score > 10:
            continue  # "15/10": not a score on this scale
        if score >= 7:
            sides.add("positive")
        elif score <= 4:
            sides.add("negative")
    return None if not sides else sides.pop() if len(sides) == 1 else "mixed"


def contradicts_label(texts: Sequence[str], labels: np.ndarray) -> np.ndarray:
    """(N,) bool: the review's text states a score on the other side of its label (label noise, or a reviewer
    whose star rating disagrees with their words)."""
    labels = np.asarray(labels)
    sides = [stated_side(t) for t in texts]
    return np.array([(s == "positive" and y == 0) or (s == "negative" and y == 1) for s, y in zip(sides, labels)])


def error_counts(prepared: Prepared, prob: np.ndarray, confident: int = 50) -> dict[str, float]:
    """What can be counted about a model's test errors (``prob``: (N,) positive probability):

    ``errors`` (count), ``contradicting_share_all`` (share of all test reviews whose text states a score on the
    other side of their label), ``contradicting_share_errors`` (the same share among the model's errors),
    ``contradicting_in_confident`` (how many of its ``confident`` most confident errors do) and ``confident``.
    """
    test = prepared.texts("test").tolist()
    labels = prepared.splits["test"].labels
    wrong = (prob >= 0.5).astype(int) != labels
    contradicting = contradicts_label(test, labels)
    order = np.flatnonzero(wrong)[np.argsort(-np.abs(prob[wrong] - 0.5), kind="stable")][:confident]
    return {"errors": int(wrong.sum()), "contradicting_share_all": float(contradicting.mean()),
            "contradicting_share_errors": float(contradicting[wrong].mean()) if wrong.any() else float("nan"),
            "contradicting_in_confident": int(contradicting[order].sum()), "confident": int(len(order))}


def as_quotes(mistakes: pd.DataFrame) -> str:
    """Markdown for reviews shown in full (rows of :func:`misclassified`): one line of facts, then the text
    as a block quote (HTML line breaks as paragraph breaks)."""
    blocks = []
    for row in mistakes.itertuples():
        stars = "no rating" if row.rating < 0 else f"{row.rating} star{'s' if row.rating != 1 else ''}"
        stated = stated_side(row.text)
        said = f"; its text states a {stated} score" if stated else ""
        body = re.sub(r"<br\s*/?>", "\n", row.text)
        quoted = "\n>\n".join("> " + " ".join(part.split()) for part in body.split("\n") if part.strip())
        blocks.append(f"**{row.label}, {stars}, P(positive) = {row.p_positive:.3f}{said}**\n\n{quoted}")
    return "\n\n".join(blocks)


def attention_examples(prepared: Prepared, reviews: Sequence[str], meant: Sequence[int], n_test: int = 2,
                       min_tokens: int = 25) -> list[tuple[str, str]]:
    """Reviews to read an attention model on: ``(text, what it is)`` for each of ``reviews`` (written by hand,
    ``meant``: 1 positive, 0 negative), then the ``n_test`` shortest test reviews of at least ``min_tokens``
    tokens (short enough to show whole)."""
    if len(reviews) != len(meant):
        raise ValueError(f"{len(reviews)} reviews but {len(meant)} labels: give one label (1 or 0) per review.")
    lengths = prepared.splits["test"].lengths  # (N,) tokens per review
    labels = prepared.splits["test"].labels
    short = [int(i) for i in np.argsort(lengths, kind="stable") if lengths[i] >= min_tokens][:n_test]
    texts = prepared.texts("test")
    side = {1: "positive", 0: "negative"}
    return ([(text, f"custom review {k}, meant {side[int(y)]}") for k, (text, y) in enumerate(zip(reviews, meant), 1)]
            + [(texts[i], f"test review {k}, labelled {side[int(labels[i])]}") for k, i in enumerate(short, 1)])


@dataclass(frozen=True)
class AttentionReading:
    """Where an attention model looked in one review: ``tokens`` (L,) as read, ``weights`` (L,) summing to 1,
    the model's ``p_positive`` and ``what`` the review is."""

    what: str
    tokens: list[str]
    weights: np.ndarray
    p_positive: float

    def summary(self, top: int = 3) -> dict[str, Any]:
        """One table row: P(positive), the ``top`` tokens by weight (with their weights), and how many tokens
        get more than an even share (1 / L) of the weight."""
        order = np.argsort(-self.weights, kind="stable")[:top]
        return {"P(positive)": round(self.p_positive, 2),
                "most weight on": ", ".join(f"“{self.tokens[k]}” ({self.weights[k]:.2f})" for k in order),
                "tokens above an even share": f"{int((self.weights >= 1 / len(self.weights)).sum())} of "
                                              f"{len(self.weights)}"}


def read_attention(model: Any, examples: Sequence[tuple[str, str]]) -> list[AttentionReading]:
    """Read ``examples`` (``(text, what)``, e.g. from :func:`attention_examples`) with an attention model's
    bundle (:meth:`~sentiment_lib.bundle.Bundle.attention`)."""
    readings = []
    for text, what in examples:
        tokens, weights = model.attention(text)
        readings.append(AttentionReading(what, list(tokens), np.asarray(weights, dtype=float),
                                         float(model.predict([text])[0])))
    return readings


def attention_table(readings: Sequence[AttentionReading], top: int = 3) -> pd.DataFrame:
    """One row per reading (index: what the review is): see :meth:`AttentionReading.summary`."""
    return pd.DataFrame([r.summary(top) for r in readings], index=[r.what for r in readings])
