"""The one path that trains a configuration, and the tables that compare what it trained.

A :class:`Configuration` says what to train: the model (a :class:`~sentiment_lib.models.ModelConfig`) and how
it is fed and optimised (learning rate, batch size, ``max_len`` tokens read from each review and from which
end, word2vec start, epochs, early-stopping patience). :func:`train_configuration` is the one function that
trains one: it chooses the device, seeds, builds the model, starts its embeddings, trains it with
:func:`sentiment_lib.train.fit` (best checkpoint by validation loss; an ``on_epoch_end`` callback lets Optuna
prune) and, unless told not to, scores it on the test subset. It returns a :class:`ModelRun`, the one result
type of a training. Notebooks 03 and 04 and the ``train`` command call it through :func:`run_model`
(a model of notebook 04 by name, with the profile's sizes); every tuning trial and every retraining of
notebook 05 calls it with the configuration a trial chose (:mod:`sentiment_lib.tuning.space`).

``comparison_table`` lines runs up; ``record_models`` and ``save_run`` write them to the run directory;
``score_members`` scores a saved bundle (and each model of an ensemble) on the run's encoded data.
"""
from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from torch import nn

from . import config
from .batching import EncodedSplit, make_loader
from .bundle import Bundle, load_bundle, save_bundle
from .language_model import start_from_language_model
from .embeddings import start_embeddings
from .metrics import binary_metrics, log_loss, multiclass_metrics
from .parallel import run_in_workers
from .models import ModelConfig, build_model, count_parameters
from .profiles import Params
from .rundir import Prepared, load_run, lock, record, record_bundle
from .train import FitResult, TrainConfig, evaluate, fit

TABLE_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
EVAL_BATCH_FACTOR = 4  # validation and test batches are larger: no gradients to keep


@dataclass(frozen=True)
class Configuration:
    """What to train: the model and how it is fed and optimised.

    Attributes:
        model: the architecture and its sizes.
        lr: AdamW's learning rate; batch_size: training reviews per batch.
        max_len: tokens read per review (a training choice: the prepared data keep reviews whole);
        truncation: which ``max_len`` tokens of a longer review (``"head"``, ``"tail"``, ``"head+tail"``).
        pretrained: start the embedding layer from the run's word2vec vectors.
        epochs: most passes over the training subset; patience: stop after this many epochs without a
            lower validation loss (``None``: never early).
        language_model: start the embedding and the LSTM from the run's pre-trained language model (02;
            :func:`~sentiment_lib.language_model.start_from_language_model`) instead of word2vec alone.
        adversarial: epsilon of adversarial training on the embeddings (:mod:`sentiment_lib.adversarial`; 0: off).
    """

    model: ModelConfig
    lr: float
    batch_size: int
    max_len: int
    truncation: str
    pretrained: bool
    epochs: int
    patience: int | None
    language_model: bool = False
    adversarial: float = 0.0

    def preprocessing(self, remove_stopwords: bool) -> dict[str, Any]:
        """How a bundle must prepare a review for this model (:mod:`sentiment_lib.bundle`)."""
        return {"max_len": self.max_len, "truncation": self.truncation, "remove_stopwords": bool(remove_stopwords)}


def configuration_for(name: str, params: Params, vocab_size: int, num_classes: int = 2, *,
                      pretrained: bool | None = None, model_options: dict[str, Any] | None = None,
                      **overrides: Any) -> Configuration:
    """Model ``name`` (a key of ``models.MODELS``) with the profile's sizes and training settings.

    ``pretrained`` defaults to ``params.embeddings == "word2vec"``; ``model_options`` replace
    :class:`~sentiment_lib.models.ModelConfig` fields; ``overrides`` replace :class:`Configuration` fields
    (``epochs``, ``patience``, ``max_len``, ``truncation``, …).
    """
    model = ModelConfig(**{**dict(name=name, vocab_size=vocab_size, embed_dim=params.embed_dim,
                                  hidden_size=params.hidden_size, dropout=params.dropout, num_classes=num_classes),
                           **(model_options or {})})
    chosen = Configuration(model=model, lr=params.lr, batch_size=params.batch_size, max_len=params.max_len,
                           truncation=params.truncation,
                           pretrained=params.embeddings == "word2vec" if pretrained is None else bool(pretrained),
                           epochs=params.epochs, patience=params.patience)
    return replace(chosen, **overrides)


@dataclass
class ModelRun:
    """A trained model and its scores: what :func:`train_configuration` returns.

    ``test``: test metrics (``None`` when the run was not scored on test: tuning trials, retrainings);
    ``test_prob``: (N,) positive probability or (N, C); ``embeddings``: the start it had (``"word2vec"`` or
    ``"random"``); ``trial``: the Optuna trial a retraining comes from, if any.
    """

    name: str
    model: nn.Module
    configuration: Configuration
    preprocessing: dict[str, Any]
    fit: FitResult
    parameters: int
    embeddings: str
    test: dict[str, float] | None = None
    test_prob: np.ndarray | None = None
    test_labels: np.ndarray | None = None
    trial: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def model_config(self) -> ModelConfig:
        return self.configuration.model

    def row(self) -> dict[str, Any]:
        """One line of the comparison table: test metrics, size, time, and the kept checkpoint's validation
        loss and accuracy (what model selection may look at; test metrics are for reporting only)."""
        test = self.test or {}
        return {"model": self.name, **{k: test.get(k, np.nan) for k in TABLE_METRICS},
                "parameters": self.parameters, "train_seconds": round(self.fit.seconds, 1),
                "epochs_run": self.fit.epochs_run, "best_epoch": self.fit.best_epoch,
                "val_loss": float(self.fit.best_val_loss),
                "val_accuracy": float(self.fit.best_val_metrics.get("accuracy", np.nan)),
                "settings": self.settings(), "resumed": self.fit.resumed}

    def settings(self) -> dict[str, Any]:
        """How the model was built, fed and trained (what notebook 05 needs to start a study from it):
        ``architecture`` (a key of ``models.MODELS``), ``num_layers``, ``num_classes``,
        ``read_padded_last_step`` (04's pitfall), ``hidden_size``,
        ``dropout``, ``embed_dim``, ``embeddings`` (start: ``"word2vec"``, ``"random"`` or ``"language model"``),
        ``lr``, ``batch_size``, ``max_len`` (tokens), ``truncation``, ``adversarial`` (epsilon, 0: none)."""
        cfg = self.configuration
        return {"architecture": cfg.model.name, "num_layers": cfg.model.layers, "num_classes": cfg.model.num_classes,
                "read_padded_last_step": cfg.model.read_padded_last_step,
                "hidden_size": cfg.model.hidden_size, "dropout": cfg.model.dropout, "embed_dim": cfg.model.embed_dim,
                "embeddings": self.embeddings, "lr": cfg.lr, "batch_size": cfg.batch_size,
                "max_len": cfg.max_len, "truncation": cfg.truncation, "adversarial": cfg.adversarial}


def loaders_for(splits: dict[str, EncodedSplit], configuration: Configuration, seed: int, binary: bool = True,
                **loader_options: Any) -> dict[str, Any]:
    """Fresh train (shuffled, seeded) and evaluation loaders (:data:`EVAL_BATCH_FACTOR` × larger batches)."""
    size = configuration.batch_size
    return {name: make_loader(split, size if name == "train" else EVAL_BATCH_FACTOR * size, configuration.max_len,
                              configuration.truncation, shuffle=name == "train", seed=seed, binary=binary,
                              **loader_options)
            for name, split in splits.items()}


def checkpoint_path(configuration: Configuration, prepared: Prepared, params: Params,
                    targets: dict[str, np.ndarray] | None = None, train_options: dict[str, Any] | None = None,
                    loader_options: dict[str, Any] | None = None) -> Path:
    """Where :func:`train_configuration` keeps the training's checkpoint: ``artifacts/<profile>/checkpoints/
    <model>-<key>.pt``, ``key`` a hash of everything the result depends on — the configuration, the seed, the
    other training and loader options, the targets, and the prepared data (vocabulary, word vectors, stop
    words, every review's length and label) — so a changed input never resumes an old training."""
    import hashlib
    import json

    digest = hashlib.sha256()
    for split_name, split in sorted(prepared.splits.items()):
        digest.update(split_name.encode() + split.lengths.tobytes() + np.asarray(split.labels).tobytes())
    for split_name, labels in sorted((targets or {}).items()):
        digest.update(b"targets" + split_name.encode() + np.asarray(labels).tobytes())
    ignored = ("progress", "num_threads")  # they change the speed, not the result
    described = asdict(configuration)
    if not described["adversarial"]:  # keys of trainings without it are those from before the option existed
        del described["adversarial"]
    key = json.dumps({"configuration": described, "seed": params.seed,
                      "train": {k: v for k, v in (train_options or {}).items() if k not in ignored},
                      "loader": loader_options or {}, "vocab": prepared.vocab.fingerprint(),
                      "vectors": prepared.params.get("vectors_fingerprint"),
                      "language_model": prepared.params.get("lm_fingerprint") if configuration.language_model else None,
                      "remove_stopwords": prepared.params.get("remove_stopwords"), "data": digest.hexdigest()},
                     sort_keys=True, default=str)
    return (config.run_dir(params.profile) / "checkpoints"
            / f"{configuration.model.name}-{hashlib.sha256(key.encode()).hexdigest()[:20]}.pt")


def train_configuration(configuration: Configuration, prepared: Prepared, params: Params, *,
                        name: str | None = None, device: str = "auto", score_test: bool = True,
                        targets: dict[str, np.ndarray] | None = None,
                        on_epoch_end: Callable[[int, dict[str, Any]], None] | None = None,
                        train_options: dict[str, Any] | None = None,
                        loader_options: dict[str, Any] | None = None, trial: Any = None,
                        checkpoint: bool = True) -> ModelRun:
    """Train ``configuration`` on ``prepared``'s train subset, keep its best epoch on validation, and score it
    on test (``score_test``). The one place that chooses the device and seeds a training.

    Args:
        name: the run's label in tables (default: the architecture).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``, chosen once here.
        targets: labels per subset replacing the sentiment (multi-class runs: class indices; the model's
            ``num_classes`` must cover them).
        on_epoch_end: ``(epoch, validation metrics)`` after each epoch; what it raises (Optuna's
            ``TrialPruned``) propagates.
        train_options: other :class:`~sentiment_lib.train.TrainConfig` fields (``progress``, ``num_threads``,
            ``warmup_steps``, …).
        loader_options: other ``make_loader`` options (``bucket``, ``pad_to_max_len``).
        trial: the Optuna trial a retraining comes from, kept on the result.
        checkpoint: keep a per-epoch checkpoint in the run directory (:func:`checkpoint_path`), so that a
            killed run continues where it stopped and a finished training is reused, with the same result;
            ``run.fit.resumed`` says whether it was. ``False`` trains from scratch and keeps nothing.

    The model's initial weights come from ``SEED`` (the same for every configuration of a study), and
    ``fit`` restarts the training stream (dropout, shuffling) from ``SEED`` too, so that how much randomness
    a model's initialisation drew does not change the batches it sees.
    """
    splits = prepared.splits if targets is None else {k: s.with_labels(targets[k]) for k, s in prepared.splits.items()}
    if not score_test:
        splits = {k: v for k, v in splits.items() if k != "test"}
    binary = configuration.model.num_classes == 2
    chosen = config.choose_device(device)
    # bfloat16 autocast where the hardware has it (PRECISION="auto"); part of the checkpoint key, since it
    # changes the numbers a little
    train_options = {"amp_dtype": config.choose_precision(params.precision, chosen), **(train_options or {})}
    train_config = TrainConfig(**{**dict(epochs=configuration.epochs, lr=configuration.lr,
                                         batch_size=configuration.batch_size, patience=configuration.patience,
                                         adversarial=configuration.adversarial,
                                         seed=params.seed, device=chosen.type, progress=config.progress_enabled(),
                                         grad_clip=1.0), **train_options})
    loaders = loaders_for(splits, configuration, params.seed, binary, **(loader_options or {}))
    config.seed_everything(params.seed)
    model = build_model(configuration.model)
    start = start_embeddings(model, prepared, params, configuration.pretrained)
    if configuration.language_model:
        start_from_language_model(model, prepared.language_model)
        start = "language model"
    saved = checkpoint_path(configuration, prepared, params, targets, train_options, loader_options) \
        if checkpoint else None
    result = fit(model, loaders["train"], loaders["val"], train_config, on_epoch_end=on_epoch_end, checkpoint=saved)
    preprocessing = {**configuration.preprocessing(params.remove_stopwords), "precision": params.precision}
    run = ModelRun(name or configuration.model.name, model, configuration, preprocessing, result,
                   count_parameters(model), start, trial=trial)
    if score_test:
        scored = evaluate(model, loaders["test"], chosen, amp_dtype=train_config.amp_dtype)
        run.test_prob, run.test_labels = scored["prob"], scored["labels"]
        run.test = binary_metrics(run.test_labels, run.test_prob) if binary else \
            multiclass_metrics(run.test_labels, run.test_prob)
        run.test["loss"] = float(scored["loss"])
    return run


def subset_probabilities(run: ModelRun, prepared: Prepared, subset: str = "val") -> np.ndarray:
    """``run``'s model's probabilities (N,) on a subset of the run (``"val"`` to choose blend weights), read as
    its bundle would read it (:meth:`~sentiment_lib.bundle.Bundle.predict_split`: its ``max_len``,
    ``truncation`` and precision)."""
    return Bundle(run.model, run.model_config, prepared.vocab, dict(run.preprocessing)).predict_split(
        prepared.splits[subset])


def model_training(name: str, prepared: Prepared, params: Params, *, label: str | None = None,
                   device: str = "auto", targets: dict[str, np.ndarray] | None = None, num_classes: int | None = None,
                   model_options: dict[str, Any] | None = None, train_options: dict[str, Any] | None = None,
                   loader_options: dict[str, Any] | None = None, pretrained: bool | None = None,
                   checkpoint: bool = True, **overrides: Any) -> "Training":
    """What :func:`run_model` trains, not yet trained: model ``name`` of notebook 04 with the profile's settings
    (:func:`configuration_for`; ``overrides``: :class:`Configuration` fields such as ``epochs``, ``patience``,
    ``max_len``, ``truncation``) and the options of :func:`train_configuration`.

    ``targets`` replaces the sentiment labels per subset (multi-class runs: class indices
    0..``num_classes``-1; ``num_classes`` defaults to the largest index + 1, so pass it when a class may be
    absent from the data); ``label`` names the run in tables (default: ``name``).
    """
    if targets is not None:
        num_classes = num_classes or int(max(t.max() for t in targets.values())) + 1
    configuration = configuration_for(name, params, len(prepared.vocab), num_classes or 2, pretrained=pretrained,
                                      model_options=model_options, **overrides)
    return Training(configuration, dict(name=label or name, device=device, targets=targets,
                                        train_options=train_options, loader_options=loader_options,
                                        checkpoint=checkpoint))


def run_model(name: str, prepared: Prepared, params: Params, **options: Any) -> ModelRun:
    """Train and test model ``name`` of notebook 04 with the profile's settings, here and now; ``options``:
    those of :func:`model_training`."""
    training = model_training(name, prepared, params, **options)
    return train_configuration(training.configuration, prepared, params, **training.options)


@dataclass
class Training:
    """One training to run: a :class:`Configuration` and the keyword arguments of :func:`train_configuration`
    (``name``, ``device``, ``score_test``, ``targets``, ``trial``, …); ``prepared`` and ``params`` when they
    differ from those the batch shares (04's stop-word ablation reads other data, a seed run other params)."""

    configuration: Configuration
    options: dict[str, Any] = field(default_factory=dict)
    prepared: Prepared | None = None
    params: Params | None = None


def _train(shared: tuple[Prepared, Params], training: Training) -> ModelRun:
    """:func:`train_configuration` of one :class:`Training` (a worker's task in :func:`train_many`)."""
    prepared, params = shared
    try:
        return train_configuration(training.configuration,
                                   training.prepared if training.prepared is not None else prepared,
                                   training.params if training.params is not None else params, **training.options)
    except FloatingPointError as err:  # which of the batch diverged
        raise FloatingPointError(f"{training.options.get('name') or training.configuration.model.name}: {err}") from err


def _without_texts(prepared: Prepared | None, workers: bool) -> Prepared | None:
    """``prepared`` without its reviews' raw ``text`` column when it is sent to worker processes (``workers``):
    training reads only the encoded splits, and each worker would otherwise unpickle and hold every review's
    text (about 130 MB in ``full``). Unchanged in-process."""
    if prepared is None or not workers or "text" not in prepared.reviews.columns:
        return prepared
    return replace(prepared, reviews=prepared.reviews.drop(columns=["text"]))


def train_many(trainings: Sequence[Training], prepared: Prepared, params: Params, *, device: str = "auto",
               desc: str = "trainings") -> list[ModelRun]:
    """Every training of ``trainings`` (none depends on another), in the order given: side by side in
    ``params.processes`` worker processes of one thread each on a CPU (:mod:`sentiment_lib.parallel`: 0 is one
    per core; 1 trains them one after another here, as on a GPU). Each result is what
    :func:`train_configuration` gives for it, whichever worker trained it."""
    workers = params.processes != 1
    shared = [replace(t, prepared=None if t.prepared is prepared else _without_texts(t.prepared, workers),
                      params=None if t.params is params else t.params) for t in trainings]
    return run_in_workers(_train, shared, (_without_texts(prepared, workers), params), params.processes,
                          device_type=config.choose_device(device).type, desc=desc,
                          progress=config.progress_enabled())


def run_models(jobs: Sequence[dict[str, Any]], prepared: Prepared, params: Params, *, device: str = "auto"
               ) -> list[ModelRun]:
    """:func:`run_model` for each job, side by side (:func:`train_many`); results in the jobs' order.

    A job is ``{"name": <model>, **options of run_model}``, and may give its own ``"prepared"`` and
    ``"params"`` (e.g. ``params.replace(seed=43)``)."""
    trainings = []
    for job in jobs:
        job = dict(job)
        own_prepared, own_params = job.pop("prepared", prepared), job.pop("params", params)
        training = model_training(job.pop("name"), own_prepared, own_params, device=device, **job)
        trainings.append(replace(training, prepared=own_prepared, params=own_params))
    return train_many(trainings, prepared, params, device=device)


def train_named(profile: str, names: Sequence[str], *, device: str = "auto", save: bool = False,
                **overrides: Any) -> list[dict[str, Any]]:
    """Train models of notebook 04 by name, outside the notebooks (``python -m sentiment_lib train``).

    Each name in ``names`` (keys of ``models.MODELS``) is trained on the run's prepared data with the profile's
    parameters and ``overrides`` (notebook parameters, e.g. ``lr=2e-3, epochs=4``; see
    :func:`~sentiment_lib.rundir.load_run`) and scored on the test subset, as :func:`run_model` does in 04. Names
    are checked before anything is loaded. ``save`` writes each bundle where 04 writes it.

    Returns one dict per model: ``ModelRun.row()`` plus ``embeddings`` (the embedding start),
    ``val_accuracy_history`` (per epoch) and ``wall_seconds`` (training and test scoring, seconds).
    """
    from .models import check_model_names

    check_model_names(names)
    params, prepared = load_run(profile, **overrides)
    with lock(profile) if save else nullcontext():  # saving writes the run directory: one writer at a time
        return [_train_one(name, prepared, params, profile, device, save) for name in names]


def _train_one(name: str, prepared: Prepared, params: Params, profile: str, device: str, save: bool
               ) -> dict[str, Any]:
    """One row of :func:`train_named`."""
    start = time.perf_counter()
    run = run_model(name, prepared, params, device=device)
    if save:
        save_run(run, prepared, profile, notebook="04")
    return {**run.row(), "embeddings": run.embeddings,
            "val_accuracy_history": [round(float(v), 4) for v in run.fit.history.val_accuracy],
            "wall_seconds": round(time.perf_counter() - start, 1)}


def comparison_table(runs: Sequence[ModelRun], extra_rows: Sequence[dict] = ()) -> pd.DataFrame:
    """Test metrics, parameters, training seconds and epochs per model, ranked on validation: lowest validation
    loss first (the networks), then the rows without one (linear references) by validation accuracy. The test
    columns are for reporting; the order never looks at them."""
    table = pd.DataFrame([r.row() for r in runs] + list(extra_rows)).set_index("model")
    if "val_loss" not in table:
        table["val_loss"] = np.nan
    return table.assign(_acc=-table["val_accuracy"]).sort_values(["val_loss", "_acc"], na_position="last").drop(
        columns="_acc")


def save_run(run: ModelRun, prepared: Prepared, profile: str, notebook: str, name: str | None = None) -> Path:
    """Save ``run`` as the run directory's bundle ``models/<name>.pt`` (default: the run's name; weights,
    config, vocabulary, preprocessing, test metrics) and list it in the manifest under ``notebook``."""
    name = name or run.name
    metrics = {k: float(v) for k, v in (run.test or {}).items()}
    path = save_bundle(config.model_path(profile, name), run.model, run.model_config, prepared.vocab,
                       run.preprocessing, metrics)
    record_bundle(profile, name, path, notebook)
    return path


def record_models(profile: str, rows: Sequence[dict[str, Any]]) -> dict:
    """Add each row (a ``ModelRun.row()`` or reference row) to the manifest's ``models``."""
    entries = {row["model"]: {k: (None if isinstance(v, float) and np.isnan(v) else v)
                              for k, v in row.items() if k != "model"} for row in rows}
    return record(profile, "models", entries)


def _loaded_for_run(path: Path, prepared: Prepared):
    """The bundle at ``path`` (one model or an ensemble), checked to fit this run's binary test data."""
    loaded = load_bundle(path)
    if list(loaded.vocab.itos) != list(prepared.vocab.itos):
        raise ValueError(f"The bundle {path} was trained with another vocabulary than this run's; rerun the "
                         "notebook that saved it (03/04/05) after 02.")
    if loaded.num_classes != 2:
        raise ValueError(f"The bundle {path} predicts {loaded.num_classes} classes (rating buckets); these scores "
                         "are for positive/negative models: score it with multiclass_metrics on its own labels.")
    return loaded


def score_bundle(path: Path, prepared: Prepared, batch_size: int = 256) -> tuple[np.ndarray, dict[str, float]]:
    """Score a saved binary model bundle (one model or an ensemble, with its linear partner if it has one: what
    ``predict`` scores) on the run's encoded test subset (no re-tokenising), with the bundle's own truncation.
    Returns (test probabilities (N,), metrics)."""
    split = prepared.splits["test"]
    prob = _loaded_for_run(path, prepared).predict_split(split, batch_size)
    return prob, {k: v for k, v in binary_metrics(split.labels, prob).items() if k in TABLE_METRICS}


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
    prob = np.mean([p for _, p in rows], axis=0)  # what Ensemble.predict_split gives before a linear partner
    if len(rows) > 1:
        rows.append((ENSEMBLE_ROW, prob))
    scored = [{**binary_metrics(labels, p), "log_loss": log_loss(labels, p)} for _, p in rows]
    table = pd.DataFrame(scored, index=[name for name, _ in rows])[list(MEMBER_METRICS)]
    return prob, {k: scored[-1][k] for k in TABLE_METRICS}, table


def score_members(path: Path, prepared: Prepared, subset: str = "test", batch_size: int = 256
                  ) -> tuple[np.ndarray, dict[str, float], pd.DataFrame]:
    """Score the networks of a saved binary bundle on ``subset`` (``"test"`` or ``"val"``): each model of an
    ensemble on its own (each member reads the split once) and their mean — without the bundle's linear
    partner, if it has one (:func:`score_bundle` and ``predict`` include it).

    Returns :func:`members_table`'s ``(prob, metrics, table)`` (``log_loss``: mean cross-entropy, the study's
    objective on validation); rows are named as saved (a plain bundle without a name: its architecture).
    """
    if subset not in ("test", "val"):
        raise ValueError(f"subset must be 'test' or 'val', got {subset!r}.")
    loaded = _loaded_for_run(path, prepared)
    split = prepared.splits[subset]
    return members_table(split.labels, [(name, member.predict_split(split, batch_size))
                                        for name, member in loaded.named_members])
