"""One way to train: a typed :class:`Job` in, a :class:`ModelRun` out — alone (:func:`train`) or side by side
(:func:`train_many`).

A :class:`Configuration` says what to train: the model (a :class:`~sentiment_lib.models.ModelConfig`) and how
it is fed and optimised (learning rate, batch size, ``max_len`` tokens read from each review and from which
end, word2vec or language-model start, epochs, early-stopping patience, adversarial training). A :class:`Job`
adds the data it trains on, the run's parameters (its seed), its label and whether it is scored on test.
:func:`job` builds the job of a named model with the profile's settings (:func:`configuration_for`); notebooks 03 and 04, the ``train``
command, every tuning trial and every retraining of notebook 05 train through :func:`train`.

What makes a training fast or resumable joins from the side (:mod:`sentiment_lib.runtime`): :func:`train`
asks its :class:`~sentiment_lib.runtime.Runtime` for the fused recurrence, the allocator callback and a
per-epoch checkpoint keyed by :func:`checkpoint_path`; :func:`train_many` for worker processes.

``comparison_table`` lines runs up; ``save_run`` saves one as a bundle (:mod:`sentiment_lib.manifest` records
them in ``metrics.json``).
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from torch import nn

from . import config
from .batching import EncodedSplit, make_loader
from .bundle import Bundle, save_bundle
from .embeddings import start_embeddings
from .language_model import start_from_language_model
from .metrics import binary_metrics, multiclass_metrics
from .models import ModelConfig, build_model, check_model_names, count_parameters
from .profiles import Params
from .rundir import Prepared, load_run, record_bundle
from .runtime import Runtime
from .runtime.lock import lock
from .runtime.parallel import run_in_workers
from .train import Callback, FitResult, TrainConfig, evaluate, fit

TABLE_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
EVAL_BATCH_FACTOR = 4  # validation and test batches are larger: no gradients to keep
GRAD_CLIP = 1.0  # every network's gradient norm is clipped to this
SCHEDULES = ("constant", "slanted")
SLANTED_RISE = 0.1  # the slanted triangle's rise: this share of the steps (Howard & Ruder's cut_frac)


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
        vat: epsilon of virtual adversarial training on the run's unlabelled reviews (``Prepared.unlabelled``;
            0: off).
        entropy: weight of entropy minimisation on those unlabelled reviews (0: off).
        average: weight averaging over about this many epochs (:func:`~sentiment_lib.train.moving_average`;
            0: off).
        layer_decay: discriminative learning rates (``TrainConfig.layer_decay``): for a recurrent classifier the
            recurrence at ``lr / layer_decay``, the embedding at ``lr / layer_decay**2``; 1: one rate.
        schedule: the learning rate over the training: ``"constant"`` (``lr`` throughout) or ``"slanted"``
            (Howard & Ruder's slanted triangle: a linear rise over the first :data:`SLANTED_RISE` of the
            ``epochs`` × steps per epoch, then a linear fall to 0 at the end of the last epoch).
            No network of the chain uses these two (on 04's ladder neither helped on validation beyond what a
            seed moves it: docs/provenance.md), so ``ModelRun.settings`` leaves them out;
            ``benchmarks/fine_tuning.py`` sets them.
        padded_batches: pad every batch to ``max_len`` in the reviews' own order (the way of 03's pitfall)
            instead of batching reviews of similar length together.
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
    padded_batches: bool = False
    vat: float = 0.0
    entropy: float = 0.0
    average: float = 0.0
    layer_decay: float = 1.0
    schedule: str = "constant"

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}.")
        if not self.layer_decay >= 1:
            raise ValueError(f"layer_decay must be >= 1, got {self.layer_decay}: 1 gives every layer the same rate, "
                             "Howard & Ruder's 2.6 divides it by 2.6 per layer towards the input.")

    def unlabelled(self) -> bool:
        """Whether the training reads the run's unlabelled reviews (VAT or entropy minimisation)."""
        return self.vat > 0 or self.entropy > 0

    def preprocessing(self, remove_stopwords: bool) -> dict[str, Any]:
        """How a bundle must prepare a review for this model (:mod:`sentiment_lib.bundle`)."""
        return {"max_len": self.max_len, "truncation": self.truncation, "remove_stopwords": bool(remove_stopwords)}


@dataclass(frozen=True, eq=False)
class Job:
    """One training to run.

    Attributes:
        configuration: what to train.
        prepared: the run's data it trains on; params: the run's parameters (its seed, precision, workers).
        name: its label in tables.
        score_test: score the kept model on the test subset (not for tuning trials and retrainings).
        targets: labels per subset replacing the sentiment (multi-class runs: class indices; the model's
            ``num_classes`` must cover them).
        trial: the Optuna trial a retraining comes from, kept on the result.
        threads: ``torch.set_num_threads`` for the training (``None``: leave it); progress: show progress bars
            (``None``: :func:`sentiment_lib.config.progress_enabled`).
        twin: for a configuration with weight averaging, the name of the network without it that the same
            training gives too (``ModelRun.twin``: the weights themselves, validated and kept with their own early
            stopping, exactly as a training of the configuration with ``average=0`` keeps them); ``None``: only
            the averaged network.
    """

    configuration: Configuration
    prepared: Prepared
    params: Params
    name: str
    score_test: bool = True
    targets: Mapping[str, np.ndarray] | None = None
    trial: Any = None
    threads: int | None = None
    progress: bool | None = None
    twin: str | None = None

    def __post_init__(self) -> None:
        if self.twin is not None and not self.configuration.average > 0:
            raise ValueError(f"{self.name}: a twin is the network without weight averaging that a training with it "
                             "gives too; set the configuration's average > 0, or twin=None.")


_MODEL_FIELDS = {f.name for f in fields(ModelConfig)} - {"name", "vocab_size", "num_classes"}
_TRAINING_FIELDS = {f.name for f in fields(Configuration)} - {"model"}


def configuration_for(name: str, params: Params, vocab_size: int, num_classes: int = 2,
                      **settings: Any) -> Configuration:
    """Model ``name`` (a key of ``models.MODELS``) with the profile's sizes and training settings.

    ``settings`` replace fields of :class:`~sentiment_lib.models.ModelConfig` (``hidden_size``, ``dropout``,
    ``read_padded_last_step``, …) or of :class:`Configuration` (``lr``, ``epochs``, ``patience``, ``max_len``,
    ``truncation``, ``pretrained``, ``language_model``, ``adversarial``, ``vat``, ``entropy``, ``average``,
    ``layer_decay``, ``schedule``, ``padded_batches``); ``pretrained`` defaults to
    ``params.embeddings == "word2vec"``. Any other name is a ``ValueError`` listing both.
    """
    unknown = sorted(set(settings) - _MODEL_FIELDS - _TRAINING_FIELDS)
    if unknown:
        raise ValueError(f"Unknown setting(s) {unknown} for model {name!r}: use fields of ModelConfig "
                         f"{sorted(_MODEL_FIELDS)} or of Configuration {sorted(_TRAINING_FIELDS)}.")
    model = ModelConfig(**{**dict(name=name, vocab_size=vocab_size, embed_dim=params.embed_dim,
                                  hidden_size=params.hidden_size, dropout=params.dropout, num_classes=num_classes),
                           **{k: v for k, v in settings.items() if k in _MODEL_FIELDS}})
    configuration = Configuration(
        model=model, lr=params.lr, batch_size=params.batch_size, max_len=params.max_len,
        truncation=params.truncation, pretrained=params.embeddings == "word2vec", epochs=params.epochs,
        patience=params.patience)
    return replace(configuration, **{k: v for k, v in settings.items() if k in _TRAINING_FIELDS})


def job(name: str, prepared: Prepared, params: Params, *, label: str | None = None, seed: int | None = None,
        targets: Mapping[str, np.ndarray] | None = None, num_classes: int | None = None, score_test: bool = True,
        **settings: Any) -> Job:
    """The job of model ``name`` on ``prepared`` with the profile's settings and ``settings``
    (:func:`configuration_for`).

    ``seed`` trains with another seed than the profile's; ``targets`` replaces the sentiment labels per subset
    (class indices 0..``num_classes``-1; ``num_classes`` defaults to the largest index + 1, so pass it when a
    class may be absent); ``label`` names the run in tables (default: ``name``).
    """
    if targets is not None:
        num_classes = num_classes or int(max(t.max() for t in targets.values())) + 1
    configuration = configuration_for(name, params, len(prepared.vocab), num_classes or 2, **settings)
    return Job(configuration, prepared, params if seed is None else params.replace(seed=seed), label or name,
               score_test=score_test, targets=targets)


@dataclass
class ModelRun:
    """A trained model and its scores: what :func:`train` returns.

    ``test``: test metrics (``None`` when the run was not scored on test: tuning trials, retrainings);
    ``test_prob``: (N,) positive probability or (N, C); ``embeddings``: the start it had (``"word2vec"``,
    ``"random"`` or ``"language model"``); ``trial``: the Optuna trial a retraining comes from, if any;
    ``twin``: the network without weight averaging the same training gave (``Job.twin``), if any.
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
    twin: "ModelRun | None" = None

    def with_twin(self) -> list["ModelRun"]:
        """This run, then its twin when its training gave one."""
        return [self] + ([self.twin] if self.twin is not None else [])

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
        ``read_padded_last_step`` (03's pitfall), ``hidden_size``, ``dropout``, ``embed_dim``, ``embeddings``
        (the start), ``lr``, ``batch_size``, ``max_len`` (tokens), ``truncation``, ``adversarial`` and ``vat``
        (epsilons), ``entropy`` (weight), ``average`` (epochs) and ``bidirectional`` (``None``: the
        architecture's own direction; ``True``/``False``: set for this network)."""
        cfg = self.configuration
        return {"architecture": cfg.model.name, "num_layers": cfg.model.layers, "num_classes": cfg.model.num_classes,
                "read_padded_last_step": cfg.model.read_padded_last_step,
                "hidden_size": cfg.model.hidden_size, "dropout": cfg.model.dropout, "embed_dim": cfg.model.embed_dim,
                "embeddings": self.embeddings, "lr": cfg.lr, "batch_size": cfg.batch_size,
                "max_len": cfg.max_len, "truncation": cfg.truncation, "adversarial": cfg.adversarial,
                "vat": cfg.vat, "entropy": cfg.entropy, "average": cfg.average, "bidirectional": cfg.model.bidirectional}


def schedule_steps(configuration: Configuration, steps_per_epoch: int) -> dict[str, Any]:
    """``TrainConfig``'s ``warmup_steps`` and ``decay`` for the configuration's ``schedule``: none and
    ``"constant"``, or for ``"slanted"`` a rise over the first :data:`SLANTED_RISE` of the ``epochs`` ×
    ``steps_per_epoch`` steps (at least one step) and a linear fall after it."""
    if configuration.schedule == "constant":
        return {"warmup_steps": 0, "decay": "constant"}
    total = configuration.epochs * steps_per_epoch
    return {"warmup_steps": max(1, math.ceil(SLANTED_RISE * total)), "decay": "linear"}


def loaders_for(splits: Mapping[str, EncodedSplit], configuration: Configuration, seed: int,
                binary: bool = True) -> dict[str, Any]:
    """Fresh train (shuffled, seeded) and evaluation loaders (:data:`EVAL_BATCH_FACTOR` × larger batches)."""
    size = configuration.batch_size
    padded = dict(bucket=False, pad_to_max_len=True) if configuration.padded_batches else {}
    return {name: make_loader(split, size if name == "train" else EVAL_BATCH_FACTOR * size, configuration.max_len,
                              configuration.truncation, shuffle=name == "train", seed=seed, binary=binary, **padded)
            for name, split in splits.items()}


def reviews_without_labels(prepared: Prepared) -> EncodedSplit:
    """What virtual adversarial training and entropy minimisation read: the run's unlabelled reviews
    (``Prepared.unlabelled``) and its training reviews, every label -1 (none is read), as Miyato et al. (2017)
    apply VAT to both. Adding the training reviews lowered the validation loss of 04's VAT and VAT + EMA rungs on
    the quick run (docs/provenance.md). ``ValueError`` naming the fix when 02 saved no unlabelled reviews."""
    if prepared.unlabelled is None or not len(prepared.unlabelled):
        raise ValueError("Virtual adversarial training and entropy minimisation need the run's unlabelled reviews, "
                         "which this run's prepared data do not hold: rerun notebook 02 with PRETRAIN_REVIEWS > 0, "
                         "or train with vat=0 and entropy=0.")
    ids = list(prepared.unlabelled.ids) + list(prepared.splits["train"].ids)
    return EncodedSplit(ids, np.full(len(ids), -1))


def unlabelled_loader(prepared: Prepared, configuration: Configuration, seed: int) -> Any:
    """A shuffled, seeded loader of :func:`reviews_without_labels` read as the configuration reads its training
    reviews (``max_len``, ``truncation``, batch size): what virtual adversarial training and entropy minimisation
    draw one batch from per step."""
    return make_loader(reviews_without_labels(prepared), configuration.batch_size, configuration.max_len,
                       configuration.truncation, shuffle=True, seed=seed, binary=False)


# Fields added to Configuration after checkpoints existed: keyed only when set, so older checkpoints still match.
_KEYED_WHEN_SET = {"vat": 0.0, "entropy": 0.0, "average": 0.0, "layer_decay": 1.0, "schedule": "constant"}


def checkpoint_path(job: Job, amp_dtype: str | None) -> Path:
    """Where :func:`train` keeps the job's checkpoint: ``artifacts/<profile>/checkpoints/<model>-<key>.pt``,
    ``key`` a hash of everything the result depends on — the configuration, the seed, the precision, the
    targets, and the prepared data (vocabulary, word vectors, language model, stop words, every review's length
    and label) — so a changed input never resumes an old training."""
    prepared, params = job.prepared, job.params
    digest = hashlib.sha256()
    for split_name, split in sorted(prepared.splits.items()):
        digest.update(split_name.encode() + split.lengths.tobytes() + np.asarray(split.labels).tobytes())
    for split_name, labels in sorted((job.targets or {}).items()):
        digest.update(b"targets" + split_name.encode() + np.asarray(labels).tobytes())
    if job.configuration.unlabelled() and prepared.unlabelled is not None:  # read with the training reviews
        digest.update(b"unlabelled+train" + prepared.unlabelled.lengths.tobytes())
    language_model = prepared.params.get("lm_fingerprint") if job.configuration.language_model else None
    if job.configuration.language_model and job.configuration.model.bidirectional:  # its right-to-left half too
        language_model = [language_model, prepared.params.get("lm_backward_fingerprint")]
    configuration = {k: v for k, v in asdict(job.configuration).items()
                     if not (k in _KEYED_WHEN_SET and v == _KEYED_WHEN_SET[k])}
    twin = {"twin": True} if job.twin is not None else {}  # its checkpoint keeps the raw weights too
    key = json.dumps({"configuration": configuration, "seed": params.seed, "amp_dtype": amp_dtype,
                      "vocab": prepared.vocab.fingerprint(), "vectors": prepared.params.get("vectors_fingerprint"),
                      "language_model": language_model, "remove_stopwords": prepared.params.get("remove_stopwords"),
                      "data": digest.hexdigest(), **twin}, sort_keys=True, default=str)
    return (config.run_dir(params.profile) / "checkpoints"
            / f"{job.configuration.model.name}-{hashlib.sha256(key.encode()).hexdigest()[:20]}.pt")


def train(job: Job, *, device: str = "auto", runtime: Runtime | None = None,
          callbacks: Sequence[Callback] = ()) -> ModelRun:
    """Train ``job``'s configuration on its train subset, keep its best epoch on validation, and score it on
    test (``job.score_test``). The one place that chooses the device and seeds a training.

    ``device``: ``"auto"``, ``"cpu"`` or ``"cuda"``; ``runtime``: the speed and resilience machinery (default:
    :meth:`Runtime.from_environment`; with checkpoints, a killed run continues where it stopped and a finished
    training is reused, with the same result — ``run.fit.resumed`` says whether it was); ``callbacks``: more
    :class:`~sentiment_lib.train.Callback` objects for ``fit`` (after the runtime's: Optuna's pruning).

    The model's initial weights come from the job's ``SEED`` (the same for every configuration of a study), and
    ``fit`` restarts the training stream (dropout, shuffling) from ``SEED`` too, so that how much randomness a
    model's initialisation drew does not change the batches it sees.
    """
    runtime = runtime or Runtime.from_environment()
    configuration, prepared, params = job.configuration, job.prepared, job.params
    splits = prepared.splits if job.targets is None else \
        {k: s.with_labels(job.targets[k]) for k, s in prepared.splits.items()}
    if not job.score_test:
        splits = {k: v for k, v in splits.items() if k != "test"}
    binary = configuration.model.num_classes == 2
    chosen = config.choose_device(device)
    # bfloat16 autocast where the hardware has it (PRECISION="auto"): part of the checkpoint key
    amp_dtype = config.choose_precision(params.precision, chosen)
    loaders = loaders_for(splits, configuration, params.seed, binary)
    train_config = TrainConfig(epochs=configuration.epochs, lr=configuration.lr, patience=configuration.patience,
                               adversarial=configuration.adversarial, vat=configuration.vat,
                               entropy=configuration.entropy, average=configuration.average,
                               layer_decay=configuration.layer_decay,
                               **schedule_steps(configuration, len(loaders["train"])),
                               also_raw=job.twin is not None, seed=params.seed,
                               device=chosen.type, amp_dtype=amp_dtype, grad_clip=GRAD_CLIP, num_threads=job.threads,
                               progress=config.progress_enabled() if job.progress is None else job.progress)
    unlabelled = unlabelled_loader(prepared, configuration, params.seed) if configuration.unlabelled() else None
    config.seed_everything(params.seed)
    model = build_model(configuration.model)
    start = start_embeddings(model, prepared, params, configuration.pretrained)
    if configuration.language_model:
        start_from_language_model(model, prepared.language_model)
        start = "language model"
    runtime.prepare(model)
    saved = checkpoint_path(job, amp_dtype) if runtime.checkpoints else None
    result = fit(model, loaders["train"], loaders["val"], train_config,
                 callbacks=[*runtime.callbacks(chosen, saved), *callbacks], unlabelled=unlabelled)
    preprocessing = {**configuration.preprocessing(params.remove_stopwords), "precision": params.precision}
    run = ModelRun(job.name, model, configuration, preprocessing, result, count_parameters(model), start,
                   trial=job.trial)
    if job.twin is not None:
        raw = copy.deepcopy(model)
        raw.load_state_dict(result.raw_state)
        run.twin = ModelRun(job.twin, raw, replace(configuration, average=0.0), preprocessing,
                            replace(result.raw, raw_state=None), run.parameters, start, trial=job.trial)
        result.raw_state = None  # held by the twin's model now
    if job.score_test:
        for one in run.with_twin():
            scored = evaluate(one.model, loaders["test"], chosen, amp_dtype=amp_dtype,
                              after_batch=runtime.inference_hook(chosen))
            one.test_prob, one.test_labels = scored["prob"], scored["labels"]
            one.test = binary_metrics(one.test_labels, one.test_prob) if binary else \
                multiclass_metrics(one.test_labels, one.test_prob)
            one.test["loss"] = float(scored["loss"])
    return run


def lowest_val_loss(runs: Mapping[str, ModelRun]) -> str:
    """The name (a key of ``runs``) of the run whose kept epoch has the lowest validation loss: how the study
    chooses a network among trained ones (the first on a tie)."""
    if not runs:
        raise ValueError("There is no run to choose from: train at least one network first.")
    return min(runs, key=lambda name: runs[name].fit.best_val_loss)


def by_name(runs: Sequence[ModelRun]) -> dict[str, ModelRun]:
    """``runs`` by name, each followed by its twin (``ModelRun.twin``) when its training gave one: what a batch of
    :func:`train_many` trained, looked up by the labels of its jobs and their twins."""
    named: dict[str, ModelRun] = {}
    for run in runs:
        for one in run.with_twin():
            if one.name in named:
                raise ValueError(f"Two runs are named {one.name!r}: give each job (and twin) its own label.")
            named[one.name] = one
    return named


def _train_in_worker(shared: Prepared | None, task: tuple[Job, str, Runtime]) -> ModelRun:
    """:func:`train` of one job in a worker of :func:`train_many` (``shared``: the prepared data most jobs
    train on, sent once per worker; a job that carries ``None`` trains on it)."""
    one, device, runtime = task
    if one.prepared is None:
        one = replace(one, prepared=shared)
    try:
        return train(one, device=device, runtime=runtime)
    except FloatingPointError as err:  # which of the batch diverged
        raise FloatingPointError(f"{one.name}: {err}") from err


def _without_texts(prepared: Prepared, workers: bool) -> Prepared:
    """``prepared`` without its reviews' raw ``text`` column when it is sent to worker processes (``workers``):
    training reads only the encoded splits, and each worker would otherwise unpickle and hold every review's
    text (about 130 MB in ``full``). Unchanged in-process."""
    if not workers or "text" not in prepared.reviews.columns:
        return prepared
    return replace(prepared, reviews=prepared.reviews.drop(columns=["text"]))


def train_many(jobs: Sequence[Job], *, device: str = "auto", runtime: Runtime | None = None,
               desc: str = "trainings") -> list[ModelRun]:
    """Every job of ``jobs`` (none depends on another), results in the order given: side by side in the first
    job's ``params.processes`` worker processes of one thread each on a CPU
    (:mod:`sentiment_lib.runtime.parallel`: 0 is one per core; 1 trains them one after another here, as on a
    GPU). Each result is what :func:`train` gives for it, whichever worker trained it."""
    if not jobs:
        return []
    runtime = runtime or Runtime.from_environment()
    processes = runtime.processes(jobs[0].params.processes)
    workers = processes != 1
    counts: dict[int, int] = {}
    for one in jobs:
        counts[id(one.prepared)] = counts.get(id(one.prepared), 0) + 1
    shared = max(jobs, key=lambda one: counts[id(one.prepared)]).prepared  # sent to each worker once
    tasks = [(replace(one, prepared=None if one.prepared is shared else _without_texts(one.prepared, workers)),
              device, runtime) for one in jobs]
    return run_in_workers(_train_in_worker, tasks, _without_texts(shared, workers), processes,
                          device_type=config.choose_device(device).type, desc=desc,
                          progress=config.progress_enabled())


def train_named(profile: str, names: Sequence[str], *, device: str = "auto", save: bool = False,
                **overrides: Any) -> list[dict[str, Any]]:
    """Train models of notebook 04 by name, outside the notebooks (``python -m sentiment_lib train``).

    Each name in ``names`` (keys of ``models.MODELS``) is trained on the run's prepared data with the profile's
    parameters and ``overrides`` (notebook parameters, e.g. ``lr=2e-3, epochs=4``; see
    :func:`~sentiment_lib.rundir.load_run`) and scored on the test subset, as 04 does. Names are checked before
    anything is loaded. ``save`` writes each bundle where 04 writes it, holding the run directory's lock.

    Returns one dict per model: ``ModelRun.row()`` plus ``embeddings`` (the embedding start),
    ``val_accuracy_history`` (per epoch) and ``wall_seconds`` (training and test scoring, seconds).
    """
    check_model_names(names)
    params, prepared = load_run(profile, **overrides)
    rows = []
    with lock(profile) if save else nullcontext():  # saving writes the run directory: one writer at a time
        for name in names:
            start = time.perf_counter()
            run = train(job(name, prepared, params), device=device)
            if save:
                save_run(run, prepared, profile, notebook="04")
            rows.append({**run.row(), "embeddings": run.embeddings,
                         "val_accuracy_history": [round(float(v), 4) for v in run.fit.history.val_accuracy],
                         "wall_seconds": round(time.perf_counter() - start, 1)})
    return rows


def subset_probabilities(run: ModelRun, prepared: Prepared, subset: str = "val") -> np.ndarray:
    """``run``'s model's probabilities (N,) on a subset of the run (``"val"`` to choose blend weights), read as
    its bundle would read it (:meth:`~sentiment_lib.bundle.Bundle.predict_split`: its ``max_len``,
    ``truncation`` and precision)."""
    return Bundle(run.model, run.model_config, prepared.vocab, dict(run.preprocessing)).predict_split(
        prepared.splits[subset])


# A comparison table's columns as a reader sees them: the metrics without "val_" are the test reviews'.
SHOWN_COLUMNS = {"val_loss": "validation loss", "val_accuracy": "validation accuracy",
                 "accuracy": "test accuracy", "accuracy_low": "test 95% interval, low",
                 "accuracy_high": "test 95% interval, high", "precision": "test precision", "recall": "test recall",
                 "f1": "test F1", "roc_auc": "test ROC AUC", "log_loss": "test log loss", "parameters": "parameters",
                 "best_epoch": "best epoch", "epochs_run": "epochs run", "train_seconds": "training seconds",
                 "seconds_per_epoch": "seconds per epoch"}


def shown(table: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """A table of test metrics per model (:func:`comparison_table`, the ladder's, ...) for the page: numbers
    rounded to ``digits`` decimals and the columns named in words (:data:`SHOWN_COLUMNS`: ``accuracy`` → "test
    accuracy", ``val_loss`` → "validation loss"; others unchanged), and "—" where a row has no such number (a linear
    reference's validation loss). Only for tables whose unprefixed metrics are test metrics."""
    rounded = table.round(digits)
    return rounded.astype(object).where(rounded.notna(), "—").rename(columns=SHOWN_COLUMNS)


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
