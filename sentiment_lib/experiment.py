"""Train, score and compare models on a run's prepared data: the steps notebooks 03–05 share.

``run_model("bilstm_pool", prepared, params)`` seeds, builds the model from the profile's sizes,
trains it with the one loop in ``train.fit`` (best checkpoint by validation loss, early stopping) and
scores it on the test subset, returning a ``ModelRun``. ``comparison_table`` lines runs up;
``tfidf_reference`` adds the classical baseline; ``record_models`` writes them to the run's
``metrics.json``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from torch import nn

from . import config
from .batching import EncodedSplit, make_loader
from .bundle import save_bundle
from .embeddings import start_embeddings, word2vec_unavailable
from .metrics import binary_metrics, log_loss, multiclass_metrics
from .models import ModelConfig, build_model, count_parameters
from .prepare import Prepared
from .summary import update_summary
from .train import FitResult, TrainConfig, evaluate, fit

TABLE_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
RATING_BUCKETS = ("1–2 stars", "3–4 stars", "7–8 stars", "9–10 stars")


@dataclass
class ModelRun:
    """A trained model and its scores. ``test_prob``: (N,) positive probability, or (N, C)."""

    name: str
    model: nn.Module
    model_config: ModelConfig
    preprocessing: dict[str, Any]
    fit: FitResult
    test: dict[str, float]
    test_prob: np.ndarray
    test_labels: np.ndarray
    parameters: int
    extra: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        """One line of the comparison table: test metrics, size, time, and the kept checkpoint's validation
        loss and accuracy (what model selection may look at; test metrics are for reporting only)."""
        return {"model": self.name, **{k: self.test.get(k, np.nan) for k in TABLE_METRICS},
                "parameters": self.parameters, "train_seconds": round(self.fit.seconds, 1),
                "epochs_run": self.fit.epochs_run, "best_epoch": self.fit.best_epoch,
                "val_loss": float(self.fit.best_val_loss),
                "val_accuracy": float(self.fit.best_val_metrics.get("accuracy", np.nan)),
                "settings": self.settings()}

    def settings(self) -> dict[str, Any]:
        """How the model was built, fed and trained (what notebook 05 needs to start a study from it):
        ``hidden_size``, ``dropout``, ``embed_dim``, ``embeddings`` (start), ``lr``, ``batch_size``,
        ``max_len`` (tokens), ``truncation``."""
        cfg = self.model_config
        return {"hidden_size": cfg.hidden_size, "dropout": cfg.dropout, "embed_dim": cfg.embed_dim,
                "embeddings": self.extra.get("embeddings"), "lr": self.extra.get("lr"),
                "batch_size": self.extra.get("batch_size"), "max_len": self.preprocessing["max_len"],
                "truncation": self.preprocessing["truncation"]}


def model_config_for(name: str, vocab_size: int, params: config.Params, num_classes: int = 2,
                     **overrides: Any) -> ModelConfig:
    """The profile's sizes for model ``name``; ``overrides`` replace any ``ModelConfig`` field."""
    values = dict(name=name, vocab_size=vocab_size, embed_dim=params.embed_dim,
                  hidden_size=params.hidden_size, dropout=params.dropout, num_classes=num_classes)
    values.update(overrides)
    return ModelConfig(**values)


def train_config_for(params: config.Params, device: str = "auto", **overrides: Any) -> TrainConfig:
    """The profile's optimisation settings, progress bars per ``config.progress_enabled()``."""
    values = dict(epochs=params.epochs, lr=params.lr, batch_size=params.batch_size, patience=params.patience,
                  seed=params.seed, device=device, progress=config.progress_enabled(), grad_clip=1.0)
    values.update(overrides)
    return TrainConfig(**values)


def loaders_for(splits: dict[str, EncodedSplit], batch_size: int, max_len: int, truncation: str,
                seed: int, binary: bool = True, **loader_options: Any) -> dict[str, Any]:
    """Fresh train (shuffled) / val / test loaders; evaluation batches are 4× larger (no gradients)."""
    return {
        name: make_loader(split, batch_size if name == "train" else 4 * batch_size, max_len, truncation,
                          shuffle=name == "train", seed=seed, binary=binary, **loader_options)
        for name, split in splits.items()
    }


def run_model(name: str, prepared: Prepared, params: config.Params, *, label: str | None = None,
              device: str = "auto", targets: dict[str, np.ndarray] | None = None,
              num_classes: int | None = None,
              model_options: dict[str, Any] | None = None, train_options: dict[str, Any] | None = None,
              loader_options: dict[str, Any] | None = None, max_len: int | None = None,
              truncation: str | None = None, pretrained: bool | None = None) -> ModelRun:
    """Seed, build, train and test one model on ``prepared`` (see module docstring).

    ``targets`` replaces the sentiment labels per subset (multi-class runs: class indices
    0..``num_classes``-1; ``num_classes`` defaults to the largest index + 1, so pass it when a class
    may be absent from the data); ``label`` names the run in tables (default: ``name``).
    ``pretrained`` (default: ``params.embeddings == "word2vec"``) starts the embedding layer from the run's
    word2vec vectors (``prepared.embeddings``); ``run.extra["embeddings"]`` records which start it had.
    """
    splits = prepared.splits
    if targets is not None:
        splits = {k: s.with_labels(targets[k]) for k, s in splits.items()}
        num_classes = num_classes or int(max(t.max() for t in targets.values())) + 1
    num_classes = num_classes or 2
    binary = num_classes == 2
    max_len = max_len or params.max_len
    truncation = truncation or params.truncation
    train_cfg = train_config_for(params, device, **(train_options or {}))
    loaders = loaders_for(splits, train_cfg.batch_size, max_len, truncation, params.seed, binary,
                          **(loader_options or {}))
    config.seed_everything(params.seed)
    model_cfg = model_config_for(name, len(prepared.vocab), params, num_classes, **(model_options or {}))
    model = build_model(model_cfg)
    start = start_embeddings(model, prepared, params, pretrained)
    result = fit(model, loaders["train"], loaders["val"], train_cfg)
    scored = evaluate(model, loaders["test"], config.choose_device(train_cfg.device))
    prob, labels = scored["prob"], scored["labels"]
    test = binary_metrics(labels, prob) if binary else multiclass_metrics(labels, prob)
    test["loss"] = float(scored["loss"])
    preprocessing = {"max_len": max_len, "truncation": truncation,
                     "remove_stopwords": bool(prepared.params.get("remove_stopwords", False))}
    return ModelRun(label or name, model, model_cfg, preprocessing, result, test, prob, labels,
                    count_parameters(model),
                    extra={"embeddings": start, "lr": train_cfg.lr, "batch_size": train_cfg.batch_size})


def train_named(profile: str, names: Sequence[str], *, device: str = "auto", save: bool = False,
                **overrides: Any) -> list[dict[str, Any]]:
    """Train models of notebook 04 by name, outside the notebooks (``python -m sentiment_lib train``).

    Each name in ``names`` (keys of ``models.MODELS``) is trained on the run's prepared data with the profile's
    parameters and ``overrides`` (notebook parameters, e.g. ``lr=2e-3, epochs=4``; see :func:`load_run`) and
    scored on the test subset, as :func:`run_model` does in 04. Names are checked before anything is loaded.
    ``save`` writes each bundle where 04 writes it (``artifacts/<profile>/models/<name>.pt``).

    Returns one dict per model: ``ModelRun.row()`` plus ``embeddings`` (the embedding start),
    ``val_accuracy_history`` (per epoch) and ``wall_seconds`` (training and test scoring, seconds).
    """
    from .models import MODELS

    if not names:
        raise ValueError(f"Name at least one model to train: {', '.join(MODELS)}.")
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise ValueError(f"Unknown model(s) {unknown}. Known models: {', '.join(MODELS)}.")
    params, prepared = load_run(profile, **overrides)
    rows = []
    for name in names:
        start = time.perf_counter()
        run = run_model(name, prepared, params, device=device)
        if save:
            save_run(run, prepared, config.models_dir(profile) / f"{name}.pt")
        rows.append({**run.row(), "embeddings": run.extra["embeddings"],
                     "val_accuracy_history": [round(float(v), 4) for v in run.fit.history.val_accuracy],
                     "wall_seconds": round(time.perf_counter() - start, 1)})
    return rows


def comparison_table(runs: Sequence[ModelRun], extra_rows: Sequence[dict] = ()) -> pd.DataFrame:
    """Test metrics, parameters, training seconds and epochs per model, best accuracy first."""
    table = pd.DataFrame([r.row() for r in runs] + list(extra_rows)).set_index("model")
    return table.sort_values("accuracy", ascending=False)


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


def save_run(run: ModelRun, prepared: Prepared, path: Path) -> Path:
    """Save ``run`` as a model bundle (weights, config, vocabulary, preprocessing, test metrics)."""
    metrics = {k: float(v) for k, v in run.test.items()}
    return save_bundle(path, run.model, run.model_config, prepared.vocab, run.preprocessing, metrics)


def record_models(profile: str, rows: Sequence[dict[str, Any]]) -> dict:
    """Add each row (a ``ModelRun.row()`` or reference row) to ``metrics.json``'s ``models``."""
    entries = {row["model"]: {k: (None if isinstance(v, float) and np.isnan(v) else v)
                              for k, v in row.items() if k != "model"} for row in rows}
    return update_summary(profile, "models", entries)


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


DATA_PARAMETERS = ("split", "train_size", "val_size", "test_size", "val_fraction", "max_len", "truncation",
                   "vocab_size", "min_freq", "remove_stopwords", "pretrain_reviews", "pretrain_epochs")
# Taken from the run directory unless the notebook sets them: the word vectors 02 made, and their width.
RUN_DEFAULTS = ("embeddings", "embed_dim")


def load_run(profile: str, **overrides: Any) -> tuple[config.Params, Prepared]:
    """The run's prepared data and its parameters for notebooks 03–05.

    Data parameters (max length, vocabulary, …) come from the run directory written by notebook 02,
    so that a ``-p MAX_LEN 256`` given to 02 carries through; one given here that differs from 02's is a
    ``ValueError`` naming the fix (rerun 02 with it), never silently replaced; ``overrides`` (the notebook's own
    papermill parameters: EPOCHS, HIDDEN_SIZE, …) are validated like any profile value. ``EMBEDDINGS`` and
    ``EMBED_DIM`` default to 02's (so the models start from the vectors 02 made) unless overridden; a word2vec
    start with an ``EMBED_DIM`` other than the vectors' width, or without vectors, is a ``ValueError`` naming
    the fix, before anything trains.
    """
    from .prepare import load_prepared

    params = config.resolve_params(profile, **overrides)  # validate before the (slower) load
    prepared = load_prepared(profile, expect_profile=profile)
    data_values = {k: prepared.params[k] for k in DATA_PARAMETERS if k in prepared.params}
    run_defaults = {k: prepared.params[k] for k in RUN_DEFAULTS if prepared.params.get(k) is not None}
    given = {k.lower(): v for k, v in overrides.items() if v is not None}
    clashes = {k: (v, data_values[k]) for k, v in given.items() if k in data_values and v != data_values[k]}
    if clashes:  # silently training with 02's value instead would report numbers for settings nobody asked for
        told = ", ".join(f"{k.upper()}={v!r} (02 used {run!r})" for k, (v, run) in clashes.items())
        flags = " ".join(f"-p {k.upper()} {v!r}" for k, (v, _) in clashes.items())
        raise ValueError(
            f"{told}: data parameters come from notebook 02's run directory. Prepare the data again with them "
            f"(python -m sentiment_lib run --profile {profile} {flags}, or --only 02 … for some notebooks), "
            "or drop them here.")
    params = config.resolve_params(profile, **{**run_defaults, **given, **data_values})
    if params.embeddings == "word2vec":
        reason = word2vec_unavailable(prepared, params.embed_dim)
        if reason:
            raise ValueError(reason)
    return params, prepared


def _loaded_for_run(path: Path, prepared: Prepared):
    """The bundle at ``path`` (one model or an ensemble), checked to fit this run's binary test data."""
    from .bundle import load_bundle

    loaded = load_bundle(path)
    if list(loaded.vocab.itos) != list(prepared.vocab.itos):
        raise ValueError(f"The bundle {path} was trained with another vocabulary than this run's; rerun the "
                         "notebook that saved it (03/04/05) after 02.")
    if loaded.num_classes != 2:
        raise ValueError(f"The bundle {path} predicts {loaded.num_classes} classes (rating buckets); these scores "
                         "are for positive/negative models: score it with multiclass_metrics on its own labels.")
    return loaded


def score_bundle(path: Path, prepared: Prepared, batch_size: int = 256) -> tuple[np.ndarray, dict[str, float]]:
    """Score a saved binary model bundle (one model or an ensemble) on the run's encoded test subset (no
    re-tokenising), with the bundle's own truncation. Returns (test probabilities (N,), metrics)."""
    prob, metrics, _ = score_members(path, prepared, batch_size=batch_size)
    return prob, metrics


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
    prob = np.mean([p for _, p in rows], axis=0)  # what Ensemble.predict_split gives
    if len(rows) > 1:
        rows.append((ENSEMBLE_ROW, prob))
    scored = [{**binary_metrics(labels, p), "log_loss": log_loss(labels, p)} for _, p in rows]
    table = pd.DataFrame(scored, index=[name for name, _ in rows])[list(MEMBER_METRICS)]
    return prob, {k: scored[-1][k] for k in TABLE_METRICS}, table


def score_members(path: Path, prepared: Prepared, subset: str = "test", batch_size: int = 256
                  ) -> tuple[np.ndarray, dict[str, float], pd.DataFrame]:
    """Score a saved binary bundle on ``subset`` (``"test"`` or ``"val"``), and each model of an ensemble
    bundle on its own (each member reads the split once; their mean is the ensemble's prediction).

    Returns :func:`members_table`'s ``(prob, metrics, table)`` (``log_loss``: mean cross-entropy, the study's
    objective on validation); rows are named as saved (a plain bundle without a name: its architecture).
    """
    if subset not in ("test", "val"):
        raise ValueError(f"subset must be 'test' or 'val', got {subset!r}.")
    loaded = _loaded_for_run(path, prepared)
    split = prepared.splits[subset]
    return members_table(split.labels, [(name, member.predict_split(split, batch_size))
                                        for name, member in loaded.named_members])
