"""Hyper-parameter search with Optuna: search space, objective, pruning, storage, resume, several workers.

**What is searched.** :func:`search_space_spec` — the architecture family (``lstm``, ``bilstm``,
``bilstm_pool``, ``attention_lstm``, ``gru``, ``bag_of_embeddings``: the models of notebook 04), the number
of layers (1–2; an ``lstm`` with 2 layers is 04's ``stacked_lstm``, so stacking is a depth, not a family
of its own), hidden size, embedding size, dropout, learning rate (log scale), maximum review length,
truncation side and batch size. Sizes are bounded by the profile's values (hidden ≤ ``HIDDEN_SIZE``,
embedding ≤ ``EMBED_DIM``, length ≤ ``MAX_LEN``), so the profile sets the cost of a trial: a ``smoke``
trial takes seconds. The vanilla RNN is left out: on reviews of hundreds of tokens it is the one family
that is reliably worse (notebook 04), and trials spent on it are wasted.

**What is optimised.** By default the validation loss (mean cross-entropy) of the checkpoint that
:func:`~sentiment_lib.train.fit` keeps, minimised. Why loss and not accuracy: (1) it is smooth — accuracy
on a few hundred or thousand validation reviews moves in coarse steps and ties, which gives TPE and the
median pruner less to go on; (2) it is the criterion ``fit`` uses to choose the checkpoint and to stop
early, so a trial's value is the value of the weights it keeps, and the final retraining optimises the same
thing; (3) it rewards calibrated probabilities, which ``predict`` prints. Validation accuracy is recorded
beside it for every trial (``trials_frame``); ``metric="val_accuracy"`` maximises accuracy instead.

**Pruning.** Each epoch's validation score is reported to the trial; a ``MedianPruner`` stops a trial
whose score after an epoch is worse than the median of earlier trials at the same epoch (after
``n_startup_trials`` finished trials). The last epoch is never pruned (the trial is done anyway), so with
``TRIAL_EPOCHS=1`` nothing can be pruned. A trial whose training diverges (non-finite loss) is recorded as
pruned, with a ``diverged`` user attribute.

**Sampler and seeds.** A ``TPESampler`` seeded *per trial* with ``(SEED, trial number)``
(:class:`TrialSeededTPESampler`): the same seed gives the same trials; a resumed study draws new trials
instead of repeating the first ones (a sampler seeded once would restart its random stream on every
resume); and workers sharing a study never draw the same startup trials. With several workers the study
is *not* reproducible as a whole — which trials have finished when a worker samples depends on timing.

**Storage and resume.** The study lives in a database: by default the SQLite file
``artifacts/<profile>/optuna.db``; ``$OPTUNA_STORAGE`` or ``storage=`` names any Optuna RDB URL instead
(``postgresql://user:password@host:5432/db``, ``mysql+pymysql://…``). Optuna commits each trial when it
ends, so a run killed in the middle loses only the trial it was running. :func:`run_study` with
``n_trials=N`` runs only the trials missing to reach N finished (complete or pruned) trials: rerunning the
notebook or the runner continues the study and redoes nothing. Trials are sent heartbeats; a trial whose
process died (no heartbeat for ``GRACE_PERIOD`` seconds) is marked failed by the next run, which retries its
parameters once.

**Several workers, several machines.** Every process that opens the same storage URL and study name works
on the same study. Prepare the data on each machine first (``python -m sentiment_lib run --profile quick
--only 01 02``, or copy ``artifacts/quick/prepared/``: the study refuses a worker whose vocabulary differs),
then on each machine::

    export OPTUNA_STORAGE=postgresql://optuna:secret@db.example.org:5432/optuna
    python -m sentiment_lib.tuning --profile quick --trials 40          # until the study has 40 trials
    python -m sentiment_lib.tuning --profile quick --worker-trials 10   # or: exactly 10 more, from this worker

``--trials N`` is a target for the whole study (workers stop when it is reached; with k workers it can be
overshot by up to k - 1 trials that were already running); ``--worker-trials K`` makes this worker run
exactly K trials. Several workers on one machine should share its cores: ``--threads``. Notebook 05 then
reads the shared study with ``OPTUNA_STORAGE`` set (or ``load_study``). SQLite works for workers on one
machine only (file locking over network filesystems is unreliable); use PostgreSQL or MySQL across machines.

**The final model.** :func:`top_trials` picks the ``ENSEMBLE`` best complete trials (by the study's
objective, one per distinct configuration); :func:`retrain_trials` trains each configuration for ``EPOCHS``
epochs (:func:`retrain_best`: best checkpoint by validation loss, early stopping); :func:`select_members`
keeps those whose average has the lowest validation loss (greedy forward selection,
:mod:`~sentiment_lib.selection`); :func:`save_final_model` writes the run's bundle
``artifacts/<profile>/models/final.pt`` — one model, or with several an ensemble whose probability is the
mean of theirs — which ``python -m sentiment_lib predict`` loads. Why average: models of different
configurations err on partly different reviews, so the mean is often right where one of them is confidently
wrong. Why select rather than take the best k: near-copies of one configuration err on the same reviews and
add little, and a weak member can drag the mean. It is no guaranteed gain on test. Measured (test accuracy):
``full`` at 16 finished trials, the best three alone 0.8975–0.9077 averaged to 0.9083 (two of them 2×256
attention LSTMs sharing 68% of their test errors), while selection from the best four kept two 2×256 nets
and 04's 1×256 one and got 0.9142; at the profile's 20 trials selection keeps the best three, 0.9112. On
``quick`` it drops a weak BiLSTM (0.7923 alone) that raises validation loss and gets 0.8860, where all three
gave 0.8896.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import socket
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import optuna
import pandas as pd
from optuna.samplers import BaseSampler, TPESampler
from optuna.study import MaxTrialsCallback
from optuna.trial import FrozenTrial, TrialState

from . import config
from .batching import make_loader
from .bundle import Bundle, save_bundle, save_ensemble
from .embeddings import start_embeddings
from .models import ModelConfig, build_model, count_parameters
from .predict import final_model_path
from .prepare import Prepared, vectors_fingerprint
from .selection import forward_select
from .text import Vocab
from .train import FitResult, TrainConfig, fit

MODEL_CHOICES = ("lstm", "bilstm", "bilstm_pool", "attention_lstm", "gru", "bag_of_embeddings")
BATCH_SIZES = (32, 64, 128)
SPACE_ORDER = ("model", "num_layers", "hidden_size", "embeddings", "embed_dim", "dropout", "lr", "max_len",
               "truncation", "batch_size")  # the dimensions of search_space_spec, in its order
LR_RANGE = (3e-4, 1e-2)
DROPOUT_RANGE = (0.0, 0.5)
METRICS = {"val_loss": "minimize", "val_accuracy": "maximize"}
DEFAULT_METRIC = "val_loss"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
STORAGE_ENV = "OPTUNA_STORAGE"
DB_NAME = "optuna.db"
HEARTBEAT_INTERVAL = 30  # seconds between a running trial's heartbeats
GRACE_PERIOD = 120       # a running trial without a heartbeat for this long is stale (its process died)
EVAL_BATCH_FACTOR = 4    # validation batches are larger: no gradients to keep


# --------------------------------------------------------------------------------------------
# Search space
# --------------------------------------------------------------------------------------------


def _sizes(top: int, divisors: Sequence[int], floor: int) -> list[int]:
    return sorted({max(floor, top // d) for d in divisors} | {top})


def search_space_spec(params: config.Params) -> dict[str, dict[str, Any]]:
    """The search space for a profile, as plain data: ``{name: {"choices": [...]}}`` for categorical
    choices, ``{name: {"low": a, "high": b, "log": bool}}`` for ranges (ints when both ends are ints).

    Sizes are bounded by the profile: hidden sizes ``HIDDEN_SIZE/4, /2, ×1``, embedding ``EMBED_DIM/2, ×1``,
    lengths ``MAX_LEN/4, /2, ×1``. When the profile pre-trains word vectors (``EMBEDDINGS="word2vec"``), an
    ``embeddings`` choice (``word2vec`` or ``random``) comes first, and ``embed_dim`` is searched only for a
    random start (``"when": {"embeddings": "random"}``: a dimension with ``when`` is suggested only if the
    earlier ones took those values). The study stores this dict and refuses to continue with another one.
    A narrower space (e.g. fewer models) is a dict of the same form passed as ``space=``.
    """
    space: dict[str, dict[str, Any]] = {
        "model": {"choices": list(MODEL_CHOICES)},
        "num_layers": {"low": 1, "high": 2, "log": False},
        "hidden_size": {"choices": _sizes(params.hidden_size, (4, 2), 8)},
    }
    embed_dims = {"choices": _sizes(params.embed_dim, (2,), 8)}
    if params.embeddings == "word2vec":  # pre-trained vectors have the run's width; only a random start picks
        space["embeddings"] = {"choices": list(config.EMBEDDING_STARTS)}
        embed_dims["when"] = {"embeddings": "random"}
    space["embed_dim"] = embed_dims
    space.update({
        "dropout": {"low": DROPOUT_RANGE[0], "high": DROPOUT_RANGE[1], "log": False},
        "lr": {"low": LR_RANGE[0], "high": LR_RANGE[1], "log": True},
        "max_len": {"choices": _sizes(params.max_len, (4, 2), 16)},
        "truncation": {"choices": list(config.TRUNCATIONS)},
        "batch_size": {"choices": list(BATCH_SIZES)},
    })
    return space


def search_space(trial: optuna.Trial, params: config.Params,
                 space: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """Suggest one configuration from ``space`` (default :func:`search_space_spec`); returns
    ``{name: value}`` (the same as ``trial.params``)."""
    space = space if space is not None else search_space_spec(params)
    values: dict[str, Any] = {}
    for name, spec in space.items():
        if not _applies(spec, values):
            continue  # conditional dimension: not used by this configuration
        if "choices" in spec:
            values[name] = trial.suggest_categorical(name, list(spec["choices"]))
        elif isinstance(spec["low"], int) and isinstance(spec["high"], int):
            values[name] = trial.suggest_int(name, spec["low"], spec["high"], log=bool(spec.get("log")))
        else:
            values[name] = trial.suggest_float(name, float(spec["low"]), float(spec["high"]),
                                               log=bool(spec.get("log")))
    return values


@dataclass
class TrialSettings:
    """What one configuration (a trial's parameters) means: the model to build and how to feed and train
    it."""

    model_config: ModelConfig
    lr: float
    batch_size: int
    max_len: int
    truncation: str
    pretrained: bool = False

    @property
    def preprocessing(self) -> dict[str, Any]:
        return {"max_len": self.max_len, "truncation": self.truncation}


def trial_settings(values: Mapping[str, Any], params: config.Params, vocab_size: int,
                   num_classes: int = 2) -> TrialSettings:
    """Turn a configuration (``trial.params``, ``study.best_params``) into :class:`TrialSettings`.

    Names missing from ``values`` take the profile's value (``num_layers``: 1; ``embeddings``: the profile's
    ``EMBEDDINGS``); ``model`` is required. An ``lstm`` with two or more layers is built as 04's
    ``stacked_lstm``. A ``word2vec`` start uses the profile's ``EMBED_DIM`` (the width of the run's vectors).
    """
    if "model" not in values:
        raise ValueError(f"The configuration {dict(values)} names no model; it needs 'model' (one of "
                         f"{MODEL_CHOICES}).")
    name = str(values["model"])
    layers = int(values.get("num_layers", 1))
    if name == "lstm" and layers >= 2:
        name = "stacked_lstm"
    start = str(values.get("embeddings", params.embeddings))
    if start not in config.EMBEDDING_STARTS:
        raise ValueError(f"embeddings must be one of {config.EMBEDDING_STARTS}, got {start!r}.")
    pretrained = start == "word2vec"
    embed_dim = params.embed_dim if pretrained else int(values.get("embed_dim", params.embed_dim))
    model_config = ModelConfig(
        name=name, vocab_size=vocab_size, embed_dim=embed_dim,
        hidden_size=int(values.get("hidden_size", params.hidden_size)), num_layers=layers,
        dropout=float(values.get("dropout", params.dropout)), num_classes=num_classes)
    return TrialSettings(model_config=model_config, lr=float(values.get("lr", params.lr)),
                         batch_size=int(values.get("batch_size", params.batch_size)),
                         max_len=int(values.get("max_len", params.max_len)),
                         truncation=str(values.get("truncation", params.truncation)), pretrained=pretrained)


def _applies(spec: Mapping[str, Any], values: Mapping[str, Any]) -> bool:
    """Whether a (conditional, ``"when"``) dimension is used by a configuration with the earlier ``values``."""
    return all(values.get(key) == value for key, value in spec.get("when", {}).items())


def configuration_for(name: str, params: config.Params, space: Mapping[str, Mapping[str, Any]] | None = None,
                      settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Notebook 04's model ``name`` as a configuration in the search space's terms, e.g. to start a study from
    it (``run_study(start_from=[...])``). ``settings`` (04's recorded ``ModelRun.settings()``: hidden size,
    dropout, learning rate, length, truncation, batch size, embedding start and width) say how 04 ran it;
    what they leave out takes the profile's value. ``stacked_lstm`` is an ``lstm`` with 2 layers.

    Raises ``ValueError`` when the model is not searched (``rnn``) or a value lies outside ``space``.
    """
    space = space if space is not None else search_space_spec(params)
    model, layers = ("lstm", 2) if name == "stacked_lstm" else (name, 1)
    if model not in space["model"]["choices"]:
        raise ValueError(f"{name!r} is not searched by this study (models: {space['model']['choices']}).")
    wanted = {"model": model, "num_layers": layers, "hidden_size": params.hidden_size,
              "embeddings": params.embeddings, "embed_dim": params.embed_dim, "dropout": params.dropout,
              "lr": params.lr, "max_len": params.max_len, "truncation": params.truncation,
              "batch_size": params.batch_size}
    wanted.update({k: v for k, v in (settings or {}).items() if k in wanted and k not in ("model", "num_layers")
                   and v is not None})
    values: dict[str, Any] = {}
    for key, spec in space.items():
        if key not in wanted or not _applies(spec, values):
            continue
        value = wanted[key]
        inside = value in spec["choices"] if "choices" in spec else spec["low"] <= value <= spec["high"]
        if not inside:
            raise ValueError(f"{name}'s {key}={value!r} lies outside the search space {spec}.")
        values[key] = value
    return values


def _num_classes(prepared: Prepared) -> int:
    return max(2, int(prepared.splits["train"].labels.max()) + 1)


def _loaders(prepared: Prepared, settings: TrialSettings, seed: int, num_classes: int):
    """Fresh train (shuffled, seeded) and validation loaders for one configuration."""
    binary = num_classes == 2
    train = make_loader(prepared.splits["train"], settings.batch_size, settings.max_len, settings.truncation,
                        shuffle=True, seed=seed, binary=binary)
    val = make_loader(prepared.splits["val"], EVAL_BATCH_FACTOR * settings.batch_size, settings.max_len,
                      settings.truncation, binary=binary)
    return train, val


# --------------------------------------------------------------------------------------------
# Objective
# --------------------------------------------------------------------------------------------


def _check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {sorted(METRICS)}, got {metric!r}.")
    return METRICS[metric]


def objective(prepared: Prepared, params: config.Params, device: str = "auto", *,
              metric: str = DEFAULT_METRIC, space: Mapping[str, Mapping[str, Any]] | None = None,
              threads: int | None = None, progress: bool = False) -> Callable[[optuna.Trial], float]:
    """The function Optuna calls per trial: suggest a configuration, train it for ``TRIAL_EPOCHS`` epochs
    on fresh loaders, return the validation ``metric`` of the checkpoint ``fit`` keeps.

    Each epoch's validation score goes to ``trial.report``; when the pruner says so (never after the last
    epoch) the trial raises ``optuna.TrialPruned``. A diverged run (``FloatingPointError`` from ``fit``) is
    pruned too, with user attribute ``diverged``. User attributes: ``model_name`` (the model built),
    ``worker`` (``host:pid``), ``n_params``, per-epoch ``val_loss_by_epoch`` / ``val_accuracy_by_epoch``,
    and, for trials that finish, ``val_loss``, ``val_accuracy``, ``best_epoch``, ``epochs_run``,
    ``seconds``.
    """
    _check_metric(metric)
    num_classes = _num_classes(prepared)
    vocab_size = len(prepared.vocab)
    epochs = int(params.trial_epochs)

    def run_trial(trial: optuna.Trial) -> float:
        values = search_space(trial, params, space)
        settings = trial_settings(values, params, vocab_size, num_classes)
        train_loader, val_loader = _loaders(prepared, settings, params.seed, num_classes)
        config.seed_everything(params.seed)  # same initialisation recipe for every trial
        model = build_model(settings.model_config)
        start_embeddings(model, prepared, params, settings.pretrained)
        trial.set_user_attr("model_name", settings.model_config.name)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        trial.set_user_attr("n_params", count_parameters(model))
        losses: list[float] = []
        accuracies: list[float] = []

        def on_epoch_end(epoch: int, val: dict[str, Any]) -> None:
            losses.append(float(val["loss"]))
            accuracies.append(float(val["accuracy"]))
            trial.set_user_attr("val_loss_by_epoch", losses)
            trial.set_user_attr("val_accuracy_by_epoch", accuracies)
            trial.report(losses[-1] if metric == "val_loss" else accuracies[-1], epoch)
            if epoch < epochs and trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {epoch}: {metric} "
                                         f"{(losses if metric == 'val_loss' else accuracies)[-1]:.4f}")

        train_config = TrainConfig(epochs=epochs, lr=settings.lr, batch_size=settings.batch_size, patience=None,
                                   seed=params.seed, device=device, progress=progress, num_threads=threads)
        try:
            result = fit(model, train_loader, val_loader, train_config, on_epoch_end=on_epoch_end)
        except FloatingPointError as err:
            trial.set_user_attr("diverged", str(err))
            raise optuna.TrialPruned(f"diverged: {err}") from err
        accuracy = float(result.best_val_metrics.get("accuracy", np.nan))
        trial.set_user_attr("val_loss", float(result.best_val_loss))
        trial.set_user_attr("val_accuracy", accuracy)
        trial.set_user_attr("best_epoch", int(result.best_epoch))
        trial.set_user_attr("epochs_run", int(result.epochs_run))
        trial.set_user_attr("seconds", round(float(result.seconds), 3))
        return float(result.best_val_loss) if metric == "val_loss" else accuracy

    return run_trial


# --------------------------------------------------------------------------------------------
# Sampler and pruner
# --------------------------------------------------------------------------------------------


class TrialSeededTPESampler(BaseSampler):
    """A ``TPESampler`` whose random stream is seeded per trial from ``(seed, trial number)``.

    A sampler seeded once restarts its stream with every process: a resumed study would draw the same
    random startup trials again, and workers with the same seed would all draw the same ones. Seeding each
    trial by its (unique) number avoids both, and still gives the same trials for the same seed and the
    same finished trials. ``tpe_options`` go to ``TPESampler`` (e.g. ``n_startup_trials``).
    """

    def __init__(self, seed: int = 0, **tpe_options: Any):
        self.seed = int(seed)
        self.tpe_options = tpe_options
        self._inner = TPESampler(seed=self.seed, **tpe_options)

    def _seed_for(self, number: int) -> int:
        return int(np.random.SeedSequence([self.seed, number]).generate_state(1)[0])

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._inner = TPESampler(seed=self._seed_for(trial.number), **self.tpe_options)
        self._inner.before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):
        return self._inner.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._inner.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._inner.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:
        self._inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._inner.reseed_rng()


def make_sampler(seed: int, n_trials: int) -> TrialSeededTPESampler:
    """Trial-seeded TPE; random startup for half the planned trials (3 to 10): with few observations in
    nine dimensions TPE has nothing to model yet, and random trials explore the families better."""
    return TrialSeededTPESampler(seed, n_startup_trials=min(10, max(3, n_trials // 2)))


def make_pruner(n_trials: int) -> optuna.pruners.MedianPruner:
    """Median pruning from the first epoch, once a quarter of the planned trials (2 to 5) have finished."""
    return optuna.pruners.MedianPruner(n_startup_trials=min(5, max(2, n_trials // 4)), n_warmup_steps=0)


# --------------------------------------------------------------------------------------------
# Storage
# --------------------------------------------------------------------------------------------


def study_storage(profile: str, storage: str | None = None) -> str:
    """The storage URL: ``storage`` if given, else ``$OPTUNA_STORAGE``, else SQLite in the run directory
    (``sqlite:///…/artifacts/<profile>/optuna.db``; the folder is created)."""
    url = storage or os.environ.get(STORAGE_ENV)
    if url:
        return url
    path = config.run_dir(profile) / DB_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def default_study_name(profile: str) -> str:
    return f"sentiment-{profile}"


def safe_url(url: str) -> str:
    """``url`` with any password hidden (for messages and notebooks)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL sqlalchemy can parse: show it as given
        return url


@contextmanager
def _quiet_optuna(verbose: bool) -> Iterator[None]:
    """Silence Optuna's per-trial log lines (they carry timestamps) and its experimental warnings."""
    level = optuna.logging.get_verbosity()
    if not verbose:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(level)


def open_storage(url: str, heartbeat_interval: int | None = HEARTBEAT_INTERVAL,
                 grace_period: int | None = GRACE_PERIOD, attempts: int = 5) -> optuna.storages.RDBStorage:
    """An Optuna ``RDBStorage`` for ``url`` with heartbeats (``None`` turns them off): a trial whose
    process died is failed after ``grace_period`` seconds by the next run, which retries it once.

    SQLite waits up to 60 s for a lock (several local workers); server databases check connections before
    use. Creating the tables is retried: workers starting together on an empty database race to create
    them.
    """
    from sqlalchemy.exc import SQLAlchemyError

    engine_kwargs: dict[str, Any] = ({"connect_args": {"timeout": 60}} if url.startswith("sqlite")
                                     else {"pool_pre_ping": True})
    for attempt in range(1, attempts + 1):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                heartbeat: dict[str, Any] = {}
                if heartbeat_interval:
                    retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)
                    heartbeat = dict(heartbeat_interval=int(heartbeat_interval),
                                     grace_period=int(grace_period or 2 * heartbeat_interval),
                                     heartbeat_stale_trial_callback=retry)
                return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **heartbeat)
        except SQLAlchemyError:
            if attempt == attempts:
                raise
            time.sleep(0.5 * attempt)
    raise AssertionError("unreachable")


def study_setup(prepared: Prepared, params: config.Params, metric: str,
                space: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What makes trials comparable; stored in the study and checked when it is continued: the profile, metric,
    trial epochs, the vocabulary, the word vectors trials may start from (their fingerprint, ``None`` for a
    random start) and the search space."""
    vectors = vectors_fingerprint(prepared.embeddings) if params.embeddings == "word2vec" else None
    setup = {"profile": params.profile, "metric": metric, "trial_epochs": int(params.trial_epochs),
             "vocab_fingerprint": prepared.vocab.fingerprint(), "vocab_size": len(prepared.vocab),
             "vectors_fingerprint": vectors,
             "search_space": space if space is not None else search_space_spec(params)}
    return json.loads(json.dumps(setup))  # tuples -> lists, as read back from the database


def _check_setup(study: optuna.Study, setup: dict[str, Any], url: str) -> None:
    stored = study.user_attrs.get("setup")
    if stored is None:
        study.set_user_attr("setup", setup)
        return
    differences = {k: (stored.get(k), v) for k, v in setup.items() if stored.get(k) != v}
    if "search_space" in differences:  # name only the dimensions that differ
        old, new = (space or {} for space in differences.pop("search_space"))
        for name in sorted(set(old) | set(new)):
            if old.get(name) != new.get(name):
                differences[f"search_space[{name}]"] = (old.get(name), new.get(name))
    if differences:
        detail = "; ".join(f"{k}: study has {old!r}, this run {new!r}" for k, (old, new) in differences.items())
        raise ValueError(
            f"The study {study.study_name!r} in {safe_url(url)} was run with other settings ({detail}), so its "
            f"trials are not comparable with this run's. Pass another study name (study_name=…, --study), "
            f"or delete it: optuna delete-study --study-name {study.study_name} --storage <url>.")


def load_study(profile: str, storage: str | None = None, study_name: str | None = None) -> optuna.Study:
    """Open an existing study to read it (no trials run); ``KeyError`` naming the fix if there is none."""
    url = study_storage(profile, storage)
    name = study_name or default_study_name(profile)
    try:
        return optuna.load_study(study_name=name, storage=open_storage(url, heartbeat_interval=None))
    except KeyError:
        raise KeyError(f"No study {name!r} in {safe_url(url)}. Run one first (notebook 05, or "
                       f"python -m sentiment_lib.tuning --profile {profile}).") from None


def finished_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Complete and pruned trials (failed and running ones do not count towards ``n_trials``)."""
    return study.get_trials(deepcopy=False, states=FINISHED)


# --------------------------------------------------------------------------------------------
# Running a study
# --------------------------------------------------------------------------------------------


def run_study(prepared: Prepared, params: config.Params, n_trials: int | None = None, *,
              storage: str | None = None, study_name: str | None = None, device: str = "auto",
              seed: int | None = None, metric: str = DEFAULT_METRIC, worker_trials: int | None = None,
              space: Mapping[str, Mapping[str, Any]] | None = None, sampler: BaseSampler | None = None,
              pruner: optuna.pruners.BasePruner | None = None, threads: int | None = None,
              timeout: float | None = None, progress: bool = False, verbose: bool = False,
              heartbeat_interval: int | None = HEARTBEAT_INTERVAL,
              grace_period: int | None = GRACE_PERIOD,
              start_from: Sequence[Mapping[str, Any]] = ()) -> optuna.Study:
    """Create or continue the study and run the trials it is missing; returns the study.

    Args:
        prepared: the run's prepared data (train and val subsets are used).
        params: the profile's parameters (``TRIAL_EPOCHS``, sizes that bound the space, ``SEED``).
        n_trials: the number of finished (complete + pruned) trials the study should have (default
            ``N_TRIALS``); only the missing ones are run, so a rerun continues the study.
        storage: an Optuna RDB URL (default :func:`study_storage`: ``$OPTUNA_STORAGE`` or SQLite in the run
            directory).
        study_name: default ``sentiment-<profile>``.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        seed: sampler seed (default ``SEED``); see :class:`TrialSeededTPESampler` for what it guarantees
            with several workers (distinct trials, not a reproducible study).
        metric: ``"val_loss"`` (minimised, the default; see the module docstring) or ``"val_accuracy"``.
        worker_trials: run exactly this many trials in this process instead of filling up to ``n_trials``.
        space: a search space of the form of :func:`search_space_spec` (default: that).
        sampler, pruner: replace :func:`make_sampler` / :func:`make_pruner`.
        threads: torch threads for this process (several workers on one machine).
        timeout: stop starting new trials after this many seconds.
        verbose: keep Optuna's per-trial log lines.
        heartbeat_interval, grace_period: see :func:`open_storage`.
        start_from: configurations (e.g. :func:`configuration_for` notebook 04's best model) that a *new*
            study evaluates first, before the sampler proposes its own (``study.enqueue_trial``); they count
            towards ``n_trials``. A study that already has trials ignores them, so reruns and workers
            do not add them twice.

    Raises ``ValueError`` when the stored study was made with other settings (metric, trial epochs,
    vocabulary, search space): its trials would not be comparable.
    """
    direction = _check_metric(metric)
    n_trials = int(params.n_trials if n_trials is None else n_trials)
    seed = int(params.seed if seed is None else seed)
    url = study_storage(params.profile, storage)
    name = study_name or default_study_name(params.profile)
    with _quiet_optuna(verbose):
        study = optuna.create_study(
            storage=open_storage(url, heartbeat_interval, grace_period), study_name=name, direction=direction,
            load_if_exists=True, sampler=sampler or make_sampler(seed, n_trials),
            pruner=pruner or make_pruner(n_trials))
        if study.direction.name.lower() != direction:
            raise ValueError(f"The study {name!r} in {safe_url(url)} is set to {study.direction.name.lower()}, "
                             f"but metric {metric!r} needs {direction}. Pass another study name.")
        _check_setup(study, study_setup(prepared, params, metric, space), url)
        if start_from and not study.get_trials(deepcopy=False):
            for values in start_from:
                study.enqueue_trial(dict(values), user_attrs={"start_from": True}, skip_if_exists=True)
        func = objective(prepared, params, device, metric=metric, space=space, threads=threads, progress=progress)
        if worker_trials is not None:
            study.optimize(func, n_trials=int(worker_trials), timeout=timeout)
        else:
            missing = n_trials - len(finished_trials(study))
            if missing > 0:
                study.optimize(func, n_trials=missing, timeout=timeout,
                               callbacks=[MaxTrialsCallback(n_trials, states=FINISHED)])
    return study


# --------------------------------------------------------------------------------------------
# Reading a study
# --------------------------------------------------------------------------------------------


def study_summary(study: optuna.Study) -> dict[str, Any]:
    """Plain numbers about a study: trial counts by state, the best trial's number, value, parameters,
    validation loss and accuracy (``None`` while no trial has completed)."""
    trials = study.get_trials(deepcopy=False)
    counts = {state.name: 0 for state in TrialState}
    for trial in trials:
        counts[trial.state.name] += 1
    summary: dict[str, Any] = {
        "study_name": study.study_name, "direction": study.direction.name.lower(),
        "metric": study.user_attrs.get("setup", {}).get("metric"),
        "n_trials": len(trials), "n_finished": counts["COMPLETE"] + counts["PRUNED"],
        "states": {k: v for k, v in counts.items() if v},
        "best_trial": None, "best_value": None, "best_params": None, "best_model": None,
        "best_val_loss": None, "best_val_accuracy": None,
    }
    if counts["COMPLETE"]:
        best = study.best_trial
        summary.update(best_trial=best.number, best_value=float(best.value), best_params=dict(best.params),
                       best_model=best.user_attrs.get("model_name"),
                       best_val_loss=best.user_attrs.get("val_loss"),
                       best_val_accuracy=best.user_attrs.get("val_accuracy"))
    return summary


SCALAR_ATTRS = ("model_name", "val_loss", "val_accuracy", "best_epoch", "epochs_run", "seconds", "n_params")


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: ``number``, ``state``, ``value`` (for a pruned trial, its last epoch's score),
    each parameter, the scalar user attributes (:data:`SCALAR_ATTRS`; missing for pruned trials),
    ``epochs_reported`` and ``diverged`` (bool)."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        row: dict[str, Any] = {"number": trial.number, "state": trial.state.name,
                               "value": trial.value if trial.values else np.nan}
        row.update(trial.params)
        row.update({k: trial.user_attrs.get(k) for k in SCALAR_ATTRS})
        row["epochs_reported"] = len(trial.intermediate_values)
        row["diverged"] = "diverged" in trial.user_attrs
        rows.append(row)
    return pd.DataFrame(rows).set_index("number") if rows else pd.DataFrame()


# --------------------------------------------------------------------------------------------
# The final model
# --------------------------------------------------------------------------------------------


def retrain_best(prepared: Prepared, params: config.Params, best_params: Mapping[str, Any],
                 epochs: int | None = None, device: str = "auto", *, progress: bool | None = None,
                 threads: int | None = None) -> tuple[Any, ModelConfig, FitResult, dict[str, Any]]:
    """Train ``best_params`` (e.g. ``study.best_params``) for ``epochs`` (default ``EPOCHS``) with early
    stopping (``PATIENCE``); the model keeps its lowest-validation-loss epoch.

    Returns ``(model, model_config, fit_result, preprocessing)``; ``preprocessing`` (``max_len``,
    ``truncation``, ``remove_stopwords``) is what :func:`save_final_model` stores in the bundle.
    """
    num_classes = _num_classes(prepared)
    settings = trial_settings(best_params, params, len(prepared.vocab), num_classes)
    train_loader, val_loader = _loaders(prepared, settings, params.seed, num_classes)
    config.seed_everything(params.seed)
    model = build_model(settings.model_config)
    start_embeddings(model, prepared, params, settings.pretrained)
    train_config = TrainConfig(epochs=int(epochs or params.epochs), lr=settings.lr, batch_size=settings.batch_size,
                               patience=params.patience, seed=params.seed, device=device,
                               progress=config.progress_enabled() if progress is None else progress,
                               num_threads=threads)
    result = fit(model, train_loader, val_loader, train_config)
    preprocessing = {**settings.preprocessing,
                     "remove_stopwords": bool(prepared.params.get("remove_stopwords", params.remove_stopwords))}
    return model, settings.model_config, result, preprocessing


def top_trials(study: optuna.Study, k: int) -> list[FrozenTrial]:
    """The ``k`` best complete trials of ``study`` by its objective (best first), one per distinct
    configuration: a configuration evaluated twice (04's starting point enqueued again, a retried trial)
    counts once, by its better trial. Fewer than ``k`` when the study has fewer; ``ValueError`` when it has
    none (every trial pruned or failed), naming the fix."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"ENSEMBLE must be a positive integer, got {k!r}.")
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.value is not None and np.isfinite(t.value)]
    if not complete:
        raise ValueError(f"The study {study.study_name!r} has no complete trial to retrain (all were pruned or "
                         "failed): run more trials (N_TRIALS) or more epochs per trial (TRIAL_EPOCHS).")
    sign = 1.0 if study.direction == optuna.study.StudyDirection.MINIMIZE else -1.0
    chosen: dict[tuple, FrozenTrial] = {}
    for trial in sorted(complete, key=lambda t: (sign * t.value, t.number)):
        chosen.setdefault(tuple(sorted(trial.params.items())), trial)
    return list(chosen.values())[:k]


@dataclass
class Retrained:
    """One retrained configuration: the ``trial`` it comes from, the trained ``model`` (best checkpoint), its
    ``model_config``, the ``fit`` result (history, epochs, seconds) and the ``preprocessing`` a bundle stores."""

    trial: FrozenTrial
    model: Any
    model_config: ModelConfig
    fit: FitResult
    preprocessing: dict[str, Any]

    @property
    def name(self) -> str:
        """``"trial <number> <architecture>"``: the member's label in tables and in the bundle."""
        return f"trial {self.trial.number} {self.model_config.name}"


def retrain_trials(prepared: Prepared, params: config.Params, trials: Sequence[FrozenTrial],
                   epochs: int | None = None, device: str = "auto", *, progress: bool | None = None,
                   threads: int | None = None) -> list[Retrained]:
    """:func:`retrain_best` for each of ``trials`` (e.g. :func:`top_trials`), in order, each seeded with
    ``SEED`` as a single retraining would be (so the first member is the model ``ENSEMBLE=1`` gives).
    A trial given twice is a ``ValueError`` before anything trains; a member whose training diverges is a
    ``FloatingPointError`` naming its trial."""
    numbers = [t.number for t in trials]
    if len(set(numbers)) < len(numbers):
        raise ValueError(f"Trials {numbers} repeat one: pass distinct trials (tuning.top_trials gives them).")
    members = []
    for trial in trials:
        try:
            model, model_config, result, preprocessing = retrain_best(prepared, params, trial.params, epochs,
                                                                      device, progress=progress, threads=threads)
        except FloatingPointError as err:
            raise FloatingPointError(f"Retraining trial {trial.number} ({trial.params}) diverged: {err} Leave it "
                                     "out (a smaller ENSEMBLE) or retrain with another SEED.") from err
        members.append(Retrained(trial, model, model_config, result, preprocessing))
    return members


def members_frame(members: Sequence[Retrained]) -> pd.DataFrame:
    """One row per retrained member (indexed by its name): the trial's parameters (columns in search-space
    order) and validation loss, then the retraining's best epoch, epochs run, and validation loss and accuracy
    at the kept epoch (no wall times, so that the table is the same on every run with the same seed;
    ``m.fit.seconds`` has them)."""
    rows = {}
    for m in members:
        rows[m.name] = {**m.trial.params, "trial_val_loss": m.trial.user_attrs.get("val_loss", np.nan),
                        "best_epoch": m.fit.best_epoch, "epochs_run": m.fit.epochs_run,
                        "val_loss": m.fit.best_val_loss,
                        "val_accuracy": m.fit.best_val_metrics.get("accuracy", np.nan)}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    order = [c for c in SPACE_ORDER if c in frame.columns]
    return frame[order + [c for c in frame.columns if c not in order]]


def select_members(members: Sequence[Retrained], prepared: Prepared, batch_size: int = 256
                   ) -> tuple[list[Retrained], pd.DataFrame, pd.DataFrame]:
    """The retrained ``members`` worth averaging: :func:`~sentiment_lib.selection.forward_select` on the
    validation subset (start from the member with the lowest validation loss, add the one that lowers the
    average's loss most, stop when none does). The test subset is not read.

    Returns ``(kept, steps, on_val)``: the kept members in the order added (the first is the best alone), the
    steps table (``candidate``, the average's ``val_loss`` and ``val_accuracy``, ``kept``), and the kept
    members' validation scores and their mean's (:func:`~sentiment_lib.experiment.members_table`, from the
    probabilities already computed: what ``score_members(final model, subset="val")`` gives)."""
    from .experiment import members_table

    if not members:
        raise ValueError("No retrained model to select from: pass the list retrain_trials() returned.")
    split = prepared.splits["val"]
    probs = [Bundle(m.model, m.model_config, prepared.vocab, dict(m.preprocessing)).predict_split(split, batch_size)
             for m in members]
    selection = forward_select(probs, split.labels, [m.name for m in members])
    _, _, on_val = members_table(split.labels, [(members[i].name, probs[i]) for i in selection.chosen])
    return [members[i] for i in selection.chosen], selection.steps, on_val


def save_final_model(profile: str, members: Sequence[Retrained], vocab: Vocab,
                     metrics: Mapping[str, Any] | None = None) -> Path:
    """Save the final model as the run's bundle ``artifacts/<profile>/models/final.pt`` (what
    ``python -m sentiment_lib predict`` loads by default); returns the path. One member gives a plain bundle,
    several an ensemble bundle (:func:`~sentiment_lib.bundle.save_ensemble`) averaging their probabilities."""
    if not members:
        raise ValueError("No retrained model to save: pass the list retrain_trials() returned.")
    path = final_model_path(profile)
    if len(members) == 1:
        m = members[0]
        return save_bundle(path, m.model, m.model_config, vocab, dict(m.preprocessing), dict(metrics or {}),
                           name=m.name)
    return save_ensemble(path, [(m.name, m.model, m.model_config, dict(m.preprocessing)) for m in members],
                         vocab, dict(metrics or {}))


def ensemble_sentence(on_val: pd.DataFrame, on_test: pd.DataFrame, epochs: int, candidates: int | None = None
                      ) -> str:
    """One sentence for notebook 05's conclusions: what averaging did, against the best retrained model alone
    (the first member, the one forward selection started from), on validation — where the members were
    chosen — and on test.

    ``on_val``, ``on_test``: the tables of :func:`~sentiment_lib.experiment.members_table` (rows: members,
    best first, then ``ensemble (mean)`` when there are several; columns include ``accuracy`` and
    ``log_loss``); ``candidates``: how many configurations were retrained (default: as many as members)."""
    from .experiment import ENSEMBLE_ROW

    first = on_test.index[0]
    kept = len(on_test.index.drop(ENSEMBLE_ROW, errors="ignore"))
    candidates = kept if candidates is None else int(candidates)
    if ENSEMBLE_ROW not in on_test.index:
        why = (f"Adding any of the other {candidates - 1} retrained configuration(s) did not lower the validation "
               "loss, so the" if candidates > 1 else "The")
        return (f"{why} best retrained configuration alone ({first}, up to {epochs} epochs) is the final model: "
                f"test accuracy {on_test.loc[first, 'accuracy']:.4f}.")
    members = on_test.drop(index=ENSEMBLE_ROW)
    return (f"The final model averages {kept} of the {candidates} retrained configurations (each for up to "
            f"{epochs} epochs; kept by forward selection on validation loss). "
            f"On validation the average has loss {on_val.loc[ENSEMBLE_ROW, 'log_loss']:.4f} and accuracy "
            f"{on_val.loc[ENSEMBLE_ROW, 'accuracy']:.4f}, against {on_val.loc[first, 'log_loss']:.4f} and "
            f"{on_val.loc[first, 'accuracy']:.4f} for the best of them alone ({first}); on the test subset "
            f"{on_test.loc[ENSEMBLE_ROW, 'accuracy']:.4f} against {on_test.loc[first, 'accuracy']:.4f} "
            f"(the members alone: {members['accuracy'].min():.4f}–{members['accuracy'].max():.4f}).")


def final_model_row(members: Sequence[Retrained], test: Mapping[str, float],
                    candidates: Sequence[Retrained] | None = None) -> dict[str, Any]:
    """The ``final`` entry of ``metrics.json``: the test metrics (:data:`~sentiment_lib.experiment.TABLE_METRICS`
    keys of ``test``), the architecture(s), trials, parameters summed over the members, each member's epochs
    run and best epoch (lists, in member order), its training seconds (summed over the members, as for any
    other model), and the trials retrained as ``candidates`` (default: the members) with their summed training
    seconds (``candidates_train_seconds``: the cost of making the final model)."""
    from .experiment import TABLE_METRICS

    candidates = list(members if candidates is None else candidates)
    return {"model": "final", **{k: float(test[k]) for k in TABLE_METRICS},
            "architecture": " + ".join(m.model_config.name for m in members),
            "trials": [m.trial.number for m in members],
            "candidates": [m.trial.number for m in candidates],
            "parameters": int(sum(count_parameters(m.model) for m in members)),
            "train_seconds": round(sum(m.fit.seconds for m in members), 1),
            "candidates_train_seconds": round(sum(m.fit.seconds for m in candidates), 1),
            "epochs_run": [m.fit.epochs_run for m in members], "best_epoch": [m.fit.best_epoch for m in members]}


# --------------------------------------------------------------------------------------------
# Worker command
# --------------------------------------------------------------------------------------------


def _parse_value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def worker_main(argv: Sequence[str] | None = None) -> int:
    """``python -m sentiment_lib.tuning``: run trials of a (shared) study; see the module docstring."""
    parser = argparse.ArgumentParser(
        prog="python -m sentiment_lib.tuning",
        description="Run Optuna trials of the sentiment study. Every process given the same --storage URL "
                    "and --study name works on the same study (one machine or several).")
    parser.add_argument("--profile", default=config.DEFAULT_PROFILE, choices=sorted(config.PROFILES))
    parser.add_argument("--storage", help=f"Optuna RDB URL (default: ${STORAGE_ENV}, else SQLite in the run "
                                          "directory)")
    parser.add_argument("--study", help="study name (default: sentiment-<profile>)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--trials", type=int, help="run until the study has this many finished trials "
                                                  "(default: the profile's N_TRIALS)")
    group.add_argument("--worker-trials", type=int, help="run exactly this many trials in this worker")
    parser.add_argument("--metric", default=DEFAULT_METRIC, choices=sorted(METRICS))
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--threads", type=int, help="torch threads for this worker")
    parser.add_argument("--seed", type=int, help="sampler seed (default: the profile's SEED)")
    parser.add_argument("--timeout", type=float, help="start no new trial after this many seconds")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="override a profile parameter, e.g. -p TRIAL_EPOCHS 3")
    args = parser.parse_args(argv)

    from .experiment import load_run

    try:  # the run's data parameters and embedding start, as notebook 05 has them
        params, prepared = load_run(args.profile, **{n.lower(): _parse_value(v) for n, v in args.parameter})
        study = run_study(prepared, params, args.trials, storage=args.storage, study_name=args.study,
                          device=args.device, seed=args.seed, metric=args.metric, worker_trials=args.worker_trials,
                          threads=args.threads, timeout=args.timeout, verbose=True)
    except (FileNotFoundError, ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(study_summary(study), indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(worker_main())
