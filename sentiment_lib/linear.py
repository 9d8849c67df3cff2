"""The classical linear references the networks are measured against, on the same subsets.

- ``tfidf``: TF-IDF over unigrams and bigrams (sublinear term frequency) + logistic regression;
- ``nbsvm``: Wang & Manning's (2012) NB-weighted linear model: binary unigram + bigram indicators scaled by
  their naive-Bayes log-count ratio ``r = log((p / |p|₁) / (q / |q|₁))`` (``p``, ``q``: smoothed feature
  counts over positive and negative training reviews), then logistic regression (the "NBLR" variant, which
  gives probabilities) — one of the strongest classic baselines on IMDB.

Each reads one of three things (``max_len``):

- ``None``: the whole review, the raw text, cleaned;
- an int: exactly what a network reads, ``max_len`` tokens of the run's encoded review cut by ``truncation``
  (words outside the vocabulary as ``<unk>``), so that a comparison with the networks is like for like;
- :data:`ALL_TOKENS` (``"all"``): every token of the run's encoded review, uncut — the whole review in the
  networks' tokens, which a model bundle can carry as its partner (raw text it cannot).

The regularisation strength is chosen on the validation subset; test is only scored.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from scipy import sparse

from .experiment import TABLE_METRICS
from .metrics import binary_metrics, log_loss
from .rundir import Prepared
from .selection import blend, blend_weight
from .text import clean_text, truncate

KINDS = ("tfidf", "nbsvm")
NGRAM_RANGE = (1, 2)  # words and word pairs
NAMES = {"tfidf": "tfidf_logreg", "nbsvm": "nbsvm"}
C_GRID = (0.5, 2.0, 8.0, 32.0)


ALL_TOKENS = "all"  # a reading: every token of the encoded review, uncut


def _token_budget(max_len: int | str) -> int | None:
    """``max_len`` as :func:`~sentiment_lib.text.truncate` takes it (``None``: uncut), checked."""
    if max_len == ALL_TOKENS:
        return None
    if isinstance(max_len, bool) or not isinstance(max_len, (int, np.integer)) or max_len < 1:
        raise ValueError(f"max_len must be a number of tokens (>= 1), {ALL_TOKENS!r} (every token) or None (the "
                         f"raw text), got {max_len!r}.")
    return int(max_len)


def row_name(kind: str, max_len: int | str | None) -> str:
    """A reference's row name: ``nbsvm``, ``nbsvm (256 tokens)``, ``nbsvm (all tokens)`` (``kind`` in :data:`KINDS`)."""
    return NAMES[kind] + ("" if max_len is None else f" ({max_len} tokens)")


def texts_as_read(prepared: Prepared, subset: str, max_len: int | str, truncation: str) -> list[str]:
    """The tokens each review of ``subset`` gives this reading (``max_len`` of them cut by ``truncation``, as a
    network reads them, or :data:`ALL_TOKENS`), space-separated; words outside the vocabulary are ``<unk>``."""
    if max_len is None:
        raise ValueError("texts_as_read gives tokens: pass a number of tokens or linear.ALL_TOKENS (the raw text of "
                         "a subset is prepared.texts(subset)).")
    itos, budget = prepared.vocab.itos, _token_budget(max_len)
    return [" ".join(itos[i] for i in truncate(ids, budget, truncation)) for ids in prepared.splits[subset].ids]


MIN_DF = 2    # an n-gram counts if at least this many training reviews contain it
TFIDF_MAX_DF = 0.9  # TF-IDF also drops those in more than this share of them (NBSVM's ratio handles them)


def _counts(prepared: Prepared, max_len: int | str | None, truncation: str) -> tuple[np.ndarray, dict[str, Any]]:
    """The n-grams (F,) of the training reviews seen in at least :data:`MIN_DF` of them, and their counts per
    review of each subset, ``{"train": (N_train, F), "val": …, "test": …}`` (sparse): the one vectorising pass
    that both references share (the costly part of fitting them)."""
    from sklearn.feature_extraction.text import CountVectorizer

    if max_len is None:
        texts = {s: prepared.texts(s).tolist() for s in ("train", "val", "test")}
        words = dict(preprocessor=clean_text)
    else:
        texts = {s: texts_as_read(prepared, s, max_len, truncation) for s in ("train", "val", "test")}
        words = dict(tokenizer=str.split, token_pattern=None, lowercase=False)
    counter = CountVectorizer(ngram_range=NGRAM_RANGE, min_df=MIN_DF, **words)
    counts = {"train": counter.fit_transform(texts["train"])}
    counts.update({s: counter.transform(texts[s]) for s in ("val", "test")})
    return counter.get_feature_names_out(), counts


def _features(kind: str, ngrams: np.ndarray, counts: dict[str, Any], train_labels: np.ndarray
              ) -> tuple[np.ndarray, dict[str, Any], np.ndarray | None]:
    """``(ngrams kept, features per subset, NB ratio or None)`` of reference ``kind`` from the shared counts —
    exactly what ``TfidfVectorizer(min_df=2, max_df=0.9, sublinear_tf=True)`` and ``CountVectorizer(min_df=2,
    binary=True)`` scaled by :func:`nb_ratio` give on the same texts."""
    from sklearn.feature_extraction.text import TfidfTransformer

    if kind == "tfidf":
        in_reviews = np.bincount(counts["train"].indices, minlength=len(ngrams))  # document frequency
        keep = np.flatnonzero(in_reviews <= TFIDF_MAX_DF * counts["train"].shape[0])
        tfidf = TfidfTransformer(sublinear_tf=True).fit(counts["train"][:, keep])
        return ngrams[keep], {s: tfidf.transform(m[:, keep]) for s, m in counts.items()}, None
    present = {s: (m > 0).astype(np.float64) for s, m in counts.items()}  # binary indicators
    ratio = nb_ratio(present["train"], train_labels)
    scale = sparse.diags(ratio)
    return ngrams, {s: m @ scale for s, m in present.items()}, ratio


def nb_ratio(features: sparse.spmatrix, labels: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Naive-Bayes log-count ratio (F,) of binary ``features`` (N, F) for ``labels`` (N,) in {0, 1}."""
    labels = np.asarray(labels)
    if set(np.unique(labels)) != {0, 1}:
        raise ValueError("NBSVM needs both classes (0 and 1) in the training labels.")
    p = alpha + np.asarray(features[labels == 1].sum(axis=0)).ravel()
    q = alpha + np.asarray(features[labels == 0].sum(axis=0)).ravel()
    return np.log((p / p.sum()) / (q / q.sum()))


@dataclass
class LinearReference:
    """A fitted reference: its table ``row`` (test metrics, size, seconds, the chosen ``C``) and its
    probabilities of *positive* on validation and test, (N_val,) and (N_test,).

    ``export``: for an NBSVM that reads the networks' tokens (``max_len`` an int or :data:`ALL_TOKENS`), the
    model as plain data — ``ngrams`` (F,) strings, ``weights`` (F,) float32 (logistic-regression coefficient ×
    NB ratio, so a review's logit is the sum of the weights of the n-grams it contains plus ``intercept``),
    ``max_len`` (``None``: every token), ``truncation`` — which a model bundle can carry as its linear partner
    (:mod:`sentiment_lib.bundle`); ``None`` otherwise (TF-IDF's weights depend on the review's other words; a
    raw-text reference needs the raw text, which an encoded split does not keep). ``max_len``: the reading it
    was fitted on, as passed to :func:`linear_references`."""

    row: dict[str, Any]
    val_prob: np.ndarray
    test_prob: np.ndarray
    export: dict[str, Any] | None = None
    max_len: int | str | None = None


def linear_references(prepared: Prepared, max_len: int | str | None = None, truncation: str = "head+tail",
                      seed: int = 42, kinds: Sequence[str] = KINDS) -> dict[str, LinearReference]:
    """Fit each reference of ``kinds`` (:data:`KINDS`) on the training subset from one shared vectorising pass,
    choose its ``C`` from :data:`C_GRID` by validation accuracy, and score it on test; ``{row name: reference}``
    in ``kinds``' order. ``max_len=None`` reads the raw text of whole reviews; an int reads what the networks
    read; :data:`ALL_TOKENS` every token of the encoded review (:func:`texts_as_read`). Rows are named by
    :func:`row_name`; a row's ``train_seconds`` counts its share of the vectorising (split evenly) and its own
    fitting."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ValueError(f"kind must be one of {KINDS}, got {unknown[0] if unknown else kinds!r}.")
    if max_len is not None:
        _token_budget(max_len)  # checked before the costly pass
    start = time.perf_counter()
    ngrams, counts = _counts(prepared, max_len, truncation)
    shared_seconds = (time.perf_counter() - start) / len(kinds)
    labels = {s: prepared.splits[s].labels for s in ("train", "val", "test")}
    return {ref.row["model"]: ref for ref in (
        _fit_reference(kind, ngrams, counts, labels, max_len, truncation, seed, shared_seconds) for kind in kinds)}


def linear_reference(prepared: Prepared, kind: str = "tfidf", max_len: int | str | None = None,
                     truncation: str = "head+tail", seed: int = 42) -> LinearReference:
    """One reference of :func:`linear_references`."""
    return next(iter(linear_references(prepared, max_len, truncation, seed, kinds=(kind,)).values()))


def _fit_reference(kind: str, ngrams: np.ndarray, counts: dict[str, Any], labels: dict[str, np.ndarray],
                   max_len: int | str | None, truncation: str, seed: int, shared_seconds: float) -> LinearReference:
    start = time.perf_counter()
    kept, x, ratio = _features(kind, ngrams, counts, labels["train"])
    fitted = dict(zip(C_GRID, _fit_grid(x["train"], labels["train"], x["val"], labels["val"], seed)))
    best_c = max(C_GRID, key=lambda c: (fitted[c][0], -c))  # ties: the stronger regularisation
    model = fitted[best_c][1]
    seconds = shared_seconds + time.perf_counter() - start
    val_prob, test_prob = (model.predict_proba(x[s])[:, 1] for s in ("val", "test"))
    metrics = binary_metrics(labels["test"], test_prob)
    name = row_name(kind, max_len)
    reading = {None: "whole review", ALL_TOKENS: "all tokens (uncut)"}.get(max_len, f"{max_len} tokens ({truncation})")
    row = {"model": name, **{k: metrics[k] for k in TABLE_METRICS},
           "parameters": int(model.coef_.size + model.intercept_.size), "train_seconds": round(seconds, 1),
           "epochs_run": 0, "best_epoch": 0, "val_accuracy": fitted[best_c][0], "C": best_c,
           "input": reading}
    export = None
    if kind == "nbsvm" and max_len is not None:
        export = {"kind": "nbsvm", "name": name, "ngrams": [str(g) for g in kept],
                  "weights": (model.coef_[0] * ratio).astype(np.float32), "intercept": float(model.intercept_[0]),
                  "max_len": _token_budget(max_len), "truncation": truncation, "ngram_range": list(NGRAM_RANGE)}
    return LinearReference(row, val_prob, test_prob, export, max_len)


def bundle_partner(prepared: Prepared, max_len: int, truncation: str = "head+tail", seed: int = 42
                   ) -> LinearReference:
    """The NBSVM a model bundle carries as its partner, its reading chosen on validation: fitted on what the
    networks read (``max_len`` tokens cut by ``truncation``) and on every token of the review
    (:data:`ALL_TOKENS`), the one with the higher validation accuracy is returned (ties: what the networks
    read). Test is only scored."""
    if max_len is None or max_len == ALL_TOKENS:
        raise ValueError(f"bundle_partner compares what the networks read with every token: pass the networks' "
                         f"max_len (a number of tokens), got {max_len!r}.")
    _token_budget(max_len)
    fitted = [linear_reference(prepared, "nbsvm", reading, truncation, seed) for reading in (max_len, ALL_TOKENS)]
    return max(fitted, key=lambda ref: ref.row["val_accuracy"])  # max keeps the first of equals


def _fit_one(c: float, x_train, y_train, x_val, y_val, seed: int):
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(x_train, y_train)
    return float((model.predict(x_val) == y_val).mean()), model


def _fit_grid(x_train, y_train, x_val, y_val, seed: int) -> list[tuple[float, Any]]:
    """``(validation accuracy, fitted model)`` per ``C`` of :data:`C_GRID`, fitted in parallel processes (one
    per core, at most one per ``C``; each fit is single-threaded and independent, so the result is the same
    as fitting them one after another)."""
    import os

    from joblib import Parallel, delayed

    jobs = max(1, min(len(C_GRID), len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else os.cpu_count() or 1))
    return Parallel(n_jobs=jobs)(delayed(_fit_one)(c, x_train, y_train, x_val, y_val, seed) for c in C_GRID)


@dataclass
class Averaged:
    """A network averaged with a linear reference: the ``weight`` on the network (chosen on validation), the
    average's validation accuracy and validation log loss (mean cross-entropy, what chose the weight), and its
    test probabilities (N_test,)."""

    weight: float
    val_accuracy: float
    test_prob: np.ndarray
    val_loss: float = float("nan")


def average_with(partner: LinearReference, val_labels: np.ndarray, network_val: np.ndarray,
                 network_test: np.ndarray) -> Averaged:
    """Average a network's probabilities with ``partner``'s, the weight chosen on the validation reviews
    (:func:`blend_weight`); the test probabilities are only combined, never looked at."""
    weight = blend_weight(val_labels, network_val, partner.val_prob)
    on_val = blend(network_val, partner.val_prob, weight)
    accuracy = float(((on_val >= 0.5) == np.asarray(val_labels)).mean())
    return Averaged(weight, accuracy, blend(network_test, partner.test_prob, weight),
                    val_loss=log_loss(val_labels, on_val))
