"""Hidden checks of notebook 05 (Optuna)."""
from __future__ import annotations

import copy
from typing import Callable

import optuna

from sentiment_lib.tuning import space as tuning_space

from ._common import Failed, _call, _own, _require


SPACES = [
    {"model": {"choices": ["lstm", "gru", "bilstm_pool"]}, "num_layers": {"low": 1, "high": 3, "log": False},
     "dropout": {"low": 0.0, "high": 0.5, "log": False}, "lr": {"low": 1e-4, "high": 1e-2, "log": True},
     "hidden_size": {"choices": [16, 32, 64]}},
    {"batch_size": {"choices": [32, 64]}, "embed_dim": {"low": 8, "high": 128, "log": True},
     "weight_decay": {"low": 1e-6, "high": 1e-3, "log": True},
     "label_smoothing": {"low": 0, "high": 0.2, "log": False}},  # an int low end, a float high end: a float range
]
SPACE_RULES = ("categorical for choices, an int range when both ends are ints, else a float range, on a log scale "
               "when log is true")


def _distribution(d: optuna.distributions.BaseDistribution) -> str:
    return f"{type(d).__name__}{'(log)' if getattr(d, 'log', False) else ''}"


def _asked(sampler_seed: int):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=sampler_seed))
    return study.ask()


def check_suggest(fn: Callable[[optuna.Trial, dict], dict]) -> None:
    _own(fn, "suggest")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for k, spec in enumerate(SPACES):
        theirs, ours = _asked(k), _asked(k)
        got = _call(fn, "suggest", theirs, copy.deepcopy(spec))
        expected = tuning_space.search_space(ours, None, spec)  # type: ignore[arg-type]
        _require(isinstance(got, dict), f"suggest must return a dict {{name: value}}, got {type(got).__name__}.")
        _require(set(theirs.distributions) == set(spec), "suggest must suggest every dimension of the space, once.")
        # the values depend on the order of the suggestions (any order is right): compare with the trial's own
        for name in spec:
            a, b = theirs.distributions[name], ours.distributions[name]
            if a != b:
                raise Failed(f"{name!r} is suggested as {_distribution(a)}; the space asks for {_distribution(b)} over "
                             f"the same range ({SPACE_RULES}).")
        _require(got == theirs.params, "suggest must return the suggested values, keyed by dimension name.")
        fixed = dict(expected)
        _require(_call(fn, "suggest", optuna.trial.FixedTrial(fixed), copy.deepcopy(spec)) == fixed,
                 "suggest does not return the trial's values (checked with optuna.trial.FixedTrial).")


class _PruneFromStep(optuna.pruners.BasePruner):
    def __init__(self, step: int):
        self.step = step

    def prune(self, study, trial) -> bool:
        return trial.last_step is not None and trial.last_step >= self.step


def _fake_training(log: list):
    """A training of four epochs whose validation loss is best at the third (the last is not the best)."""
    def train(config: dict, report: Callable[[int, float], None]) -> float:
        losses = [curve / config["num_layers"] + config["lr"] for curve in (1.0, 0.6, 0.5, 0.7)]
        for epoch, loss in enumerate(losses):
            log.append(epoch)
            report(epoch, loss)
        return min(losses)
    return train


def check_objective(fn: Callable[..., float]) -> None:
    _own(fn, "objective")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = {"num_layers": {"low": 1, "high": 3, "log": False}, "lr": {"low": 1e-4, "high": 1e-2, "log": True}}
    fixed = {"num_layers": 2, "lr": 0.001}
    log: list = []
    value = _call(fn, "objective", optuna.trial.FixedTrial(fixed), spec, _fake_training(log))
    expected = _fake_training([])(fixed, lambda e, v: None)
    _require(isinstance(value, (float, int)) and abs(float(value) - expected) < 1e-12,
             "objective must return what train returns for the trial's configuration (checked with a FixedTrial).")
    _require(log == [0, 1, 2, 3], "objective must let train run every epoch when nothing prunes it.")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), pruner=_PruneFromStep(1))
    log.clear()
    trial = study.ask()
    try:
        fn(trial, spec, _fake_training(log))
    except optuna.TrialPruned:
        pass
    except NotImplementedError:
        raise Failed("objective is not written yet (it raises NotImplementedError).") from None
    except Exception as err:  # noqa: BLE001
        raise Failed(f"objective raised {type(err).__name__}: {err}") from None
    else:
        raise Failed("objective must raise optuna.TrialPruned when trial.should_prune() says so after a report.")
    reference = _asked(0)
    tuning_space.search_space(reference, None, spec)  # type: ignore[arg-type]
    _require(trial.distributions == reference.distributions,
             f"objective must suggest the configuration from the space as suggest does ({SPACE_RULES}).")
    _require(sorted(study.trials[0].intermediate_values) == [0, 1],
             "objective must report each epoch's validation loss with trial.report(value, epoch) and stop at the "
             "first epoch the pruner prunes.")
    _require(log == [0, 1], "A pruned trial must stop training at once (raise inside report).")
