"""Analyses beside the networks: the classical linear reference, star-rating buckets, and where a model errs.

``tfidf_reference`` trains TF-IDF (unigrams + bigrams) + logistic regression on the run's subsets: the
reference row of notebook 04's comparison. ``rating_buckets`` turns star ratings into 4 classes for the
harder multi-class task. ``misclassified`` and ``error_analysis`` look at a model's test errors;
``predictions_frame`` lines up every model's test probabilities for the predictions file.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from .experiment import TABLE_METRICS
from .metrics import binary_metrics
from .rundir import Prepared

RATING_BUCKETS = ("1–2 stars", "3–4 stars", "7–8 stars", "9–10 stars")


def tfidf_reference(prepared: Prepared, seed: int = 42) -> tuple[dict[str, Any], np.ndarray]:
    """TF-IDF (unigrams + bigrams) + logistic regression on the same subsets: the classical
    reference row (≈0.90 on the full official split). Returns (table row, test probabilities)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from .text import clean_text

    start = time.perf_counter()
    vectorizer = TfidfVectorizer(preprocessor=clean_text, ngram_range=(1, 2), min_df=2, max_df=0.9,
                                 sublinear_tf=True)
    x_train = vectorizer.fit_transform(prepared.texts("train"))
    classifier = LogisticRegression(C=4.0, max_iter=2000, random_state=seed)
    classifier.fit(x_train, prepared.splits["train"].labels)
    seconds = time.perf_counter() - start
    prob = classifier.predict_proba(vectorizer.transform(prepared.texts("test")))[:, 1]
    metrics = binary_metrics(prepared.splits["test"].labels, prob)
    row = {"model": "tfidf_logreg", **{k: metrics[k] for k in TABLE_METRICS},
           "parameters": int(classifier.coef_.size + classifier.intercept_.size),
           "train_seconds": round(seconds, 1), "epochs_run": 0, "best_epoch": 0}
    return row, prob


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


def misclassified(prepared: Prepared, prob: np.ndarray, n: int = 6, width: int = 400) -> pd.DataFrame:
    """The ``n`` test reviews the model got most confidently wrong, with their length in tokens."""
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
        "text": test.loc[rows, "text"].str.slice(0, width).to_numpy(),
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
