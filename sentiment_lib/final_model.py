"""Notebook 05's final model: the study's best configurations retrained, those worth averaging kept, saved.

:func:`top_trials` picks the ``ENSEMBLE`` best complete trials (by the study's objective, one per distinct
configuration); :func:`retrain_trials` trains each configuration again through the one training path
(:func:`~sentiment_lib.experiment.train`: ``EPOCHS`` epochs, best checkpoint by validation loss,
early stopping), each a :class:`~sentiment_lib.experiment.ModelRun` that keeps its trial, and the best of them
from ``BEST_SEEDS`` seeds, side by side (``PROCESSES``); :func:`retrain_with_seeds` gives the seed runs alone;
:func:`ladder_candidates` reads notebook 04's ladder networks back from their checkpoints, to be chosen among
them; :func:`select_members` keeps those whose average has the lowest validation loss (greedy forward selection,
:mod:`~sentiment_lib.selection`; test is not read); :func:`save_final_model` writes the run's bundle — one
model, or with several an ensemble whose probability is the mean of theirs — which
``python -m sentiment_lib predict`` loads.

Why average: models of different configurations err on partly different reviews, so the mean is often right
where one of them is confidently wrong. Why select rather than take the best k: near-copies of one
configuration err on the same reviews and add little, and a weak member can drag the mean. It is no
guaranteed gain on test (the README reports what it did on each profile).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from . import config
from .bundle import Bundle, save_bundle, save_ensemble
from .experiment import TABLE_METRICS, Job, ModelRun, by_name, train_many
from .linear import LinearReference
from .manifest import FINAL_NETWORKS
from .models import count_parameters
from .plans import ladder_jobs, ladder_labels
from .profiles import Params
from .rundir import Prepared, record_bundle
from .runtime import Runtime
from .scoring import members_table
from .selection import forward_select
from .text import Vocab
from .tuning.space import SPACE_ORDER, trial_configuration
from .tuning.study import num_classes_of


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


def _retrainings(prepared: Prepared, params: Params, trials: Sequence[FrozenTrial], epochs: int | None,
                 progress: bool | None, threads: int | None, suffix: str = "") -> list[Job]:
    """The :class:`~sentiment_lib.experiment.Job` of each trial at ``params`` (its seed), not yet run."""
    num_classes = num_classes_of(prepared)
    return [Job(configuration, prepared, params, f"trial {trial.number} {configuration.model.name}{suffix}",
                score_test=False, trial=trial, threads=threads, progress=progress)
            for trial in trials
            for configuration in [trial_configuration(trial.params, params, len(prepared.vocab), num_classes,
                                                      epochs=epochs or params.epochs, patience=params.patience)]]


def _train_members(jobs: Sequence[Job], device: str, runtime: Runtime | None) -> list[ModelRun]:
    """The jobs side by side (:func:`~sentiment_lib.experiment.train_many`); a diverging one is named."""
    try:
        return train_many(jobs, device=device, runtime=runtime)
    except FloatingPointError as err:
        raise FloatingPointError(f"Retraining diverged: {err} Leave that trial out (a smaller ENSEMBLE) or retrain "
                                 "with another SEED.") from err


def retrain_trials(prepared: Prepared, params: Params, trials: Sequence[FrozenTrial], epochs: int | None = None,
                   device: str = "auto", *, progress: bool | None = None, threads: int | None = None,
                   runtime: Runtime | None = None, seeds: int = 1) -> list[ModelRun]:
    """Train each of ``trials`` (e.g. :func:`top_trials`) again for ``epochs`` (default ``EPOCHS``) with early
    stopping (``PATIENCE``), each seeded with ``SEED`` as a single retraining would be (so the first member is
    the model ``ENSEMBLE=1`` gives), then the first trial from ``seeds - 1`` further seeds
    (:func:`retrain_with_seeds`) — all side by side (``PROCESSES``), results in that order. Each result is named
    ``"trial <number> <architecture>"`` (``" (seed <s>)"`` for the further seeds) and keeps its ``trial``; it
    is not scored on test. ``runtime``: see :func:`~sentiment_lib.experiment.train` (with checkpoints, a killed
    retraining continues and a finished one is reused).

    A trial given twice is a ``ValueError`` before anything trains; a member whose training diverges is a
    ``FloatingPointError`` naming its trial."""
    numbers = [t.number for t in trials]
    if len(set(numbers)) < len(numbers):
        raise ValueError(f"Trials {numbers} repeat one: pass distinct trials (final_model.top_trials gives them).")
    jobs = _retrainings(prepared, params, trials, epochs, progress, threads)
    if trials:
        jobs += _seed_retrainings(prepared, params, trials[0], seeds, epochs, progress, threads)
    return _train_members(jobs, device, runtime)


def _seed_retrainings(prepared: Prepared, params: Params, trial: FrozenTrial, seeds: int, epochs: int | None,
                      progress: bool | None, threads: int | None) -> list[Job]:
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"BEST_SEEDS must be a positive integer, got {seeds!r}.")
    return [one for seed in range(params.seed + 1, params.seed + seeds)
            for one in _retrainings(prepared, params.replace(seed=seed), [trial], epochs, progress, threads,
                                    suffix=f" (seed {seed})")]


def retrain_with_seeds(prepared: Prepared, params: Params, trial: FrozenTrial, seeds: int | None = None,
                       epochs: int | None = None, device: str = "auto", *, progress: bool | None = None,
                       threads: int | None = None, runtime: Runtime | None = None) -> list[ModelRun]:
    """``trial`` retrained as :func:`retrain_trials` does, once per further seed ``SEED + 1`` … ``SEED + seeds - 1``
    (``seeds`` default ``BEST_SEEDS``; its ``SEED`` retraining is :func:`retrain_trials`' own): the same
    configuration from other initial weights and batch orders, a seed ensemble's candidates. Each is named
    ``"trial <number> <architecture> (seed <s>)"``. An empty list for ``seeds`` = 1."""
    seeds = params.best_seeds if seeds is None else seeds
    jobs = _seed_retrainings(prepared, params, trial, seeds, epochs, progress, threads)
    return _train_members(jobs, device, runtime) if jobs else []


def ladder_candidates(prepared: Prepared, params: Params, device: str = "auto", *,
                      runtime: Runtime | None = None) -> list[ModelRun]:
    """Notebook 04's ladder networks (:func:`~sentiment_lib.plans.ladder_jobs`: the language-model start, with
    adversarial training, with the rungs on the unlabelled reviews, and the AT rung read in both directions) as
    candidates for the final average, read back from the checkpoints 04 left (trained again only where none is
    found), not scored on test, in the ladder's order. Empty when 02 trained no language model."""
    jobs = [replace(job, score_test=False) for job in ladder_jobs(prepared, params).values()]
    trained = by_name(_train_members(jobs, device, runtime)) if jobs else {}
    return [trained[label] for label in ladder_labels(prepared, params).values()]


# What a retraining measured: the first columns of members_frame, before the trial's parameters.
MEASURED_COLUMNS = ("val_loss", "val_accuracy", "best_epoch", "epochs_run", "trial_val_loss")


def members_frame(members: Sequence[ModelRun]) -> pd.DataFrame:
    """One row per retrained member (indexed by its name): first the retraining's validation loss and accuracy at
    the kept epoch, its best epoch, epochs run and the trial's validation loss, then the trial's parameters
    (columns in search-space order) (no wall times, so that the table is the same on every run with the same
    seed; ``m.fit.seconds`` has them)."""
    rows = {}
    for m in members:
        rows[m.name] = {"val_loss": m.fit.best_val_loss, "val_accuracy": m.fit.best_val_metrics.get("accuracy", np.nan),
                        "best_epoch": m.fit.best_epoch, "epochs_run": m.fit.epochs_run,
                        "trial_val_loss": m.trial.user_attrs.get("val_loss", np.nan), **m.trial.params}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    measured = list(MEASURED_COLUMNS)
    return frame[measured + [c for c in SPACE_ORDER if c in frame.columns]
                 + [c for c in frame.columns if c not in measured and c not in SPACE_ORDER]]


def members_shown(members: Sequence[ModelRun]) -> pd.DataFrame:
    """:func:`members_frame` as a page shows it: the measured columns, then only the parameters that differ between
    the members (the search-space table shows the fixed ones)."""
    frame = members_frame(members)
    measured = list(MEASURED_COLUMNS)
    return frame[measured + [c for c in frame.columns if c not in measured and frame[c].nunique(dropna=False) > 1]]


def select_members(members: Sequence[ModelRun], prepared: Prepared, batch_size: int = 256,
                   partner: LinearReference | None = None) -> tuple[list[ModelRun], pd.DataFrame, pd.DataFrame]:
    """The retrained ``members`` worth averaging: :func:`~sentiment_lib.selection.forward_select` on the
    validation subset (start from the member with the lowest validation loss, add the one that lowers the
    average's loss most, stop when none does). With ``partner`` (the linear partner the saved model will
    carry), each average is judged averaged with it, at the weight that suits it best on validation. The test
    subset is not read.

    Returns ``(kept, steps, on_val)``: the kept members in the order added (the first is the best alone), the
    steps table (``candidate``, the average's ``val_loss`` and ``val_accuracy``, ``kept``), and the kept
    members' validation scores and their mean's (:func:`~sentiment_lib.scoring.members_table`, from the
    probabilities already computed: what ``score_members(final model, subset="val")`` gives)."""
    if not members:
        raise ValueError("No retrained model to select from: pass the list retrain_trials() returned.")
    split = prepared.splits["val"]
    probs = [Bundle(m.model, m.model_config, prepared.vocab, dict(m.preprocessing)).predict_split(split, batch_size)
             for m in members]
    selection = forward_select(probs, split.labels, [m.name for m in members],
                               partner=None if partner is None else partner.val_prob)
    _, _, on_val = members_table(split.labels, [(members[i].name, probs[i]) for i in selection.chosen])
    return [members[i] for i in selection.chosen], selection.steps, on_val


def save_final_model(profile: str, members: Sequence[ModelRun], vocab: Vocab,
                     metrics: Mapping[str, Any] | None = None, partner: Mapping[str, Any] | None = None,
                     partner_weight: float | None = None) -> Path:
    """Save the final model as the run's bundle (:func:`sentiment_lib.config.final_model_path`, what
    ``python -m sentiment_lib predict`` loads by default) and list it in the manifest; returns the path. One member gives a plain bundle,
    several an ensemble bundle (:func:`~sentiment_lib.bundle.save_ensemble`) averaging their probabilities;
    ``partner`` (a token-level NBSVM's ``LinearReference.export``) with ``partner_weight`` (the weight on the
    networks, chosen on validation) makes the bundle average them with it."""
    if not members:
        raise ValueError("No retrained model to save: pass the list retrain_trials() returned.")
    path = config.final_model_path(profile)
    with_partner = {"partner": dict(partner) if isinstance(partner, Mapping) else partner,
                    "partner_weight": partner_weight}
    if len(members) == 1:
        m = members[0]
        save_bundle(path, m.model, m.model_config, vocab, dict(m.preprocessing), dict(metrics or {}), name=m.name,
                    **with_partner)
    else:
        save_ensemble(path, [(m.name, m.model, m.model_config, dict(m.preprocessing)) for m in members],
                      vocab, dict(metrics or {}), **with_partner)
    record_bundle(profile, config.FINAL_MODEL, path, notebook="05")
    return path


def final_model_row(members: Sequence[ModelRun], test: Mapping[str, float],
                    candidates: Sequence[ModelRun] | None = None) -> dict[str, Any]:
    """The ``final_networks`` entry of ``metrics.json`` (the final model's networks without their linear partner;
    ``final`` is the bundle ``predict`` uses, networks and partner): the test metrics (:data:`~sentiment_lib.experiment.TABLE_METRICS`
    keys of ``test``), the architecture(s), members (names), their trials (04's ladder networks have none),
    parameters summed over the members, each member's epochs
    run and best epoch (lists, in member order), its training seconds (summed over the members, as for any
    other model), and the trials retrained as ``candidates`` (default: the members) with their summed training
    seconds (``candidates_train_seconds``: the cost of making the final model)."""
    candidates = list(members if candidates is None else candidates)
    return {"model": "final networks (05)", "id": FINAL_NETWORKS, **{k: float(test[k]) for k in TABLE_METRICS},
            "architecture": " + ".join(m.model_config.name for m in members),
            "members": [m.name for m in members],
            "trials": [m.trial.number for m in members if m.trial is not None],
            "candidates": [m.trial.number if m.trial is not None else m.name for m in candidates],
            "parameters": int(sum(count_parameters(m.model) for m in members)),
            "train_seconds": round(sum(m.fit.seconds for m in members), 1),
            "candidates_train_seconds": round(sum(m.fit.seconds for m in candidates), 1),
            "epochs_run": [m.fit.epochs_run for m in members], "best_epoch": [m.fit.best_epoch for m in members]}
