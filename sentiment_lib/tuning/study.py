"""Notebook 05's Optuna study: the objective, the sampler and pruner, running and resuming, reading it back.

**What is optimised.** By default the validation loss (mean cross-entropy) of the checkpoint that
:func:`~sentiment_lib.train.fit` keeps, minimised. Why loss and not accuracy: (1) it is smooth — accuracy
on a few hundred or thousand validation reviews moves in coarse steps and ties, which gives TPE and the
pruner less to go on; (2) it is the criterion ``fit`` uses to choose the checkpoint and to stop
early, so a trial's value is the value of the weights it keeps, and the final retraining optimises the same
thing; (3) it rewards calibrated probabilities, which ``predict`` prints. Validation accuracy is recorded
beside it for every trial (``trials_frame``); ``metric="val_accuracy"`` maximises accuracy instead.

**Pruning: most trials get a fraction of the budget.** Each epoch's validation score is reported to the
trial; a successive-halving pruner (:func:`make_pruner`) lets a trial past its first epoch only when its score
is in the best half of the trials that reached that epoch, so the full ``TRIAL_EPOCHS`` go to the promising
configurations and the others cost one epoch. The last epoch is never pruned (the trial is done anyway), so
with ``TRIAL_EPOCHS=1`` nothing can be pruned. ``benchmarks/tuning_budget.py`` compares such a study with an
exhaustive one (every trial at the full budget, same sampler, seed and trial count; the trials themselves
differ once the sampler has seen different results). A trial whose training diverges
(non-finite loss) is recorded as pruned, with a ``diverged`` user attribute.

**Sampler and seeds.** A ``TPESampler`` seeded *per trial* with ``(SEED, trial number)``
(:class:`TrialSeededTPESampler`): the same seed gives the same trials; a resumed study draws new trials
instead of repeating the first ones (a sampler seeded once would restart its random stream on every
resume); and workers sharing a study never draw the same startup trials. With several workers the study
is *not* reproducible as a whole — which trials have finished when a worker samples depends on timing.

Several workers share a study by opening one storage URL (:mod:`sentiment_lib.tuning.storage`); each
runs ``python -m sentiment_lib tune --profile P`` (README: "Tuning with several workers").
"""
from __future__ import annotations

import json
import os
import socket
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import optuna
import pandas as pd
from optuna.samplers import BaseSampler, TPESampler
from optuna.study import MaxTrialsCallback
from optuna.trial import FrozenTrial, TrialState

from ..experiment import Job, train
from ..models import parameter_count
from ..profiles import Params
from ..train import Callback, FitState
from ..rundir import Prepared, vectors_fingerprint
from ..runtime import Runtime
from .space import search_space, search_space_spec, study_plan, trial_configuration
from .storage import (GRACE_PERIOD, HEARTBEAT_INTERVAL, default_study_name, open_storage, quiet_optuna, safe_url,
                      study_storage)

METRICS = {"val_loss": "minimize", "val_accuracy": "maximize"}
DEFAULT_METRIC = "val_loss"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def num_classes_of(prepared: Prepared) -> int:
    """Classes of the run's training labels (2 for positive/negative)."""
    return max(2, int(prepared.splits["train"].labels.max()) + 1)


def _check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {sorted(METRICS)}, got {metric!r}.")
    return METRICS[metric]


class Pruning(Callback):
    """Reports each epoch's validation ``metric`` to an Optuna trial and prunes it when the pruner says so
    (never after the last of ``epochs``); per-epoch ``val_loss_by_epoch`` / ``val_accuracy_by_epoch`` go to
    the trial's user attributes. A training restored from its checkpoint (a trial retried after its process
    died) reports the epochs it had already run first."""

    def __init__(self, trial: optuna.Trial, metric: str, epochs: int):
        self.trial, self.metric, self.epochs = trial, metric, epochs
        self.losses: list[float] = []
        self.accuracies: list[float] = []

    def on_fit_start(self, state: FitState) -> None:
        for row in state.rows:
            self.report(int(row["epoch"]), {"loss": row["val_loss"], "accuracy": row["val_accuracy"]})

    def on_epoch_end(self, state: FitState, val: dict[str, Any]) -> None:
        self.report(len(state.rows), val)

    def report(self, epoch: int, val: dict[str, Any]) -> None:
        self.losses.append(float(val["loss"]))
        self.accuracies.append(float(val["accuracy"]))
        self.trial.set_user_attr("val_loss_by_epoch", self.losses)
        self.trial.set_user_attr("val_accuracy_by_epoch", self.accuracies)
        value = (self.losses if self.metric == "val_loss" else self.accuracies)[-1]
        self.trial.report(value, epoch)
        if epoch < self.epochs and self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch}: {self.metric} {value:.4f}")


def objective(prepared: Prepared, params: Params, device: str = "auto", *,
              metric: str = DEFAULT_METRIC, space: Mapping[str, Mapping[str, Any]] | None = None,
              threads: int | None = None, progress: bool = False,
              runtime: Runtime | None = None) -> Callable[[optuna.Trial], float]:
    """The function Optuna calls per trial: suggest a configuration, train it for ``TRIAL_EPOCHS`` epochs
    (:func:`~sentiment_lib.experiment.train`, no test scoring), return the validation ``metric``
    of the checkpoint ``fit`` keeps.

    Each epoch's validation score goes to ``trial.report``; when the pruner says so (never after the last
    epoch) the trial raises ``optuna.TrialPruned``. A diverged run (``FloatingPointError`` from ``fit``) is
    pruned too, with user attribute ``diverged``. User attributes: ``model_name`` (the model built),
    ``worker`` (``host:pid``), ``n_params``, per-epoch ``val_loss_by_epoch`` / ``val_accuracy_by_epoch``,
    and, for trials that finish, ``val_loss``, ``val_accuracy``, ``best_epoch``, ``epochs_run``,
    ``seconds``. ``runtime``: the speed and resilience machinery of each training (:func:`~sentiment_lib.experiment.train`;
    ``Runtime(checkpoints=False)`` keeps no per-epoch checkpoint and reuses none).
    """
    _check_metric(metric)
    num_classes = num_classes_of(prepared)
    vocab_size = len(prepared.vocab)
    epochs = int(params.trial_epochs)

    def run_trial(trial: optuna.Trial) -> float:
        values = search_space(trial, params, space)
        configuration = trial_configuration(values, params, vocab_size, num_classes, epochs=epochs, patience=None)
        trial.set_user_attr("model_name", configuration.model.name)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        trial.set_user_attr("n_params", parameter_count(configuration.model))
        reporter = Pruning(trial, metric, epochs)
        try:
            run = train(Job(configuration, prepared, params, configuration.model.name, score_test=False,
                            threads=threads, progress=progress), device=device, runtime=runtime, callbacks=[reporter])
        except FloatingPointError as err:
            trial.set_user_attr("diverged", str(err))
            raise optuna.TrialPruned(f"diverged: {err}") from err
        result = run.fit
        accuracy = float(result.best_val_metrics.get("accuracy", np.nan))
        trial.set_user_attr("val_loss", float(result.best_val_loss))
        trial.set_user_attr("val_accuracy", accuracy)
        trial.set_user_attr("best_epoch", int(result.best_epoch))
        trial.set_user_attr("epochs_run", int(result.epochs_run))
        trial.set_user_attr("seconds", round(float(result.seconds), 3))
        return float(result.best_val_loss) if metric == "val_loss" else accuracy

    return run_trial


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


REDUCTION_FACTOR = 2


def make_pruner(n_trials: int | None = None) -> optuna.pruners.SuccessiveHalvingPruner:
    """Asynchronous successive halving over epochs (``n_trials`` is not needed: the rungs do not depend on it):
    after its first epoch a trial goes on only if its validation score is in the best half of the trials that got
    that far; the rest stop there. With ``TRIAL_EPOCHS=2`` about half the trials get the whole budget and half
    one epoch (Li et al. 2020, ASHA)."""
    return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=REDUCTION_FACTOR,
                                                  min_early_stopping_rate=0)


def study_setup(prepared: Prepared, params: Params, metric: str,
                space: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What makes trials comparable; stored in the study and checked when it is continued: the profile, metric,
    trial epochs, the vocabulary, the word vectors trials may start from (their fingerprint, ``None`` for a
    random start), the search space and, when it searches a language-model start, that model's fingerprint."""
    vectors = vectors_fingerprint(prepared.embeddings) if params.embeddings == "word2vec" else None
    space = space if space is not None else search_space_spec(params)
    setup = {"profile": params.profile, "metric": metric, "trial_epochs": int(params.trial_epochs),
             "vocab_fingerprint": prepared.vocab.fingerprint(), "vocab_size": len(prepared.vocab),
             "vectors_fingerprint": vectors, "search_space": space}
    if "language_model" in space:  # trials that start from the language model depend on its weights
        setup["language_model_fingerprint"] = prepared.params.get("lm_fingerprint")
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


def finished_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Complete and pruned trials (failed and running ones do not count towards ``n_trials``)."""
    return study.get_trials(deepcopy=False, states=FINISHED)


def run_study(prepared: Prepared, params: Params, n_trials: int | None = None, *,
              storage: str | None = None, study_name: str | None = None, device: str = "auto",
              seed: int | None = None, metric: str = DEFAULT_METRIC, worker_trials: int | None = None,
              space: Mapping[str, Mapping[str, Any]] | None = None, sampler: BaseSampler | None = None,
              pruner: optuna.pruners.BasePruner | None = None, threads: int | None = None,
              timeout: float | None = None, progress: bool = False, verbose: bool = False,
              heartbeat_interval: int | None = HEARTBEAT_INTERVAL,
              grace_period: int | None = GRACE_PERIOD,
              start_from: Sequence[Mapping[str, Any]] | None = None) -> optuna.Study:
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
        space: a search space of the form of :func:`search_space_spec` (default: :func:`study_plan`'s, the space
            around notebook 04's chosen network, or the whole space when the run directory records none).
        sampler, pruner: replace :func:`make_sampler` / :func:`make_pruner`.
        threads: torch threads for this process (several workers on one machine).
        timeout: stop starting new trials after this many seconds.
        verbose: keep Optuna's per-trial log lines.
        heartbeat_interval, grace_period: see :func:`open_storage`.
        start_from: configurations (e.g. :func:`configuration_for` notebook 04's best model) that a *new*
            study evaluates first, before the sampler proposes its own (``study.enqueue_trial``); they count
            towards ``n_trials``. Default: :func:`study_plan`'s start when ``space`` is the default, else none. A study that already has trials ignores them, so reruns and workers
            do not add them twice.

    Raises ``ValueError`` when the stored study was made with other settings (metric, trial epochs,
    vocabulary, search space): its trials would not be comparable.
    """
    direction = _check_metric(metric)
    if space is None:  # the profile's study: around 04's chosen network when the run directory records one
        _, start, space = study_plan(params)
        start_from = start_from if start_from is not None else ([start] if start else [])
    searched = space
    if "language_model" in searched and prepared.language_model is None:
        raise ValueError("The search space starts some trials from the language model, but this run directory has "
                         "none: rerun notebooks/02_preprocessing.ipynb with LM_EPOCHS >= 1, or pass a space without "
                         "'language_model' (space=...).")
    n_trials = int(params.n_trials if n_trials is None else n_trials)
    seed = int(params.seed if seed is None else seed)
    url = study_storage(params.profile, storage)
    name = study_name or default_study_name(params.profile)
    with quiet_optuna(verbose):
        study = optuna.create_study(
            storage=open_storage(url, heartbeat_interval, grace_period), study_name=name, direction=direction,
            load_if_exists=True, sampler=sampler or make_sampler(seed, n_trials),
            pruner=pruner or make_pruner(n_trials))
        if study.direction.name.lower() != direction:
            raise ValueError(f"The study {name!r} in {safe_url(url)} is set to {study.direction.name.lower()}, "
                             f"but metric {metric!r} needs {direction}. Pass another study name.")
        _check_setup(study, study_setup(prepared, params, metric, space), url)
        if start_from and not study.get_trials(deepcopy=False):  # a new study: the start is its first trial
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


def trials_shown(trials: pd.DataFrame) -> pd.DataFrame:
    """The :func:`trials_frame` a reader needs: ``state``, ``value`` (validation loss) and ``val_accuracy`` first,
    then the settings and results that differ between trials; without what repeats another column (``val_loss``
    is ``value`` for a complete trial; ``model_name`` is ``model``), wall times and bookkeeping, and without
    the columns that hold one value in every trial (the search-space table shows those); counts as whole numbers."""
    if trials.empty:
        return trials
    hidden = {"val_loss", "model_name", "seconds", "diverged", "epochs_reported"}
    first = [c for c in ("state", "value", "val_accuracy") if c in trials.columns]
    rest = [c for c in trials.columns if c not in hidden and c not in first and trials[c].nunique(dropna=False) > 1]
    shown = trials[first + rest].copy()
    for column in ("best_epoch", "epochs_run", "n_params"):  # counts: whole numbers, blank for a pruned trial
        if column in shown.columns:
            shown[column] = shown[column].astype("Int64")
    return shown
