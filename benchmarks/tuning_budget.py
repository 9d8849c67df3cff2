"""Does successive halving pick configurations as good as an exhaustive study, for a fraction of its time?

    python -m benchmarks.tuning_budget [--profile quick] [--trials N] [--seed S]
    make bench-tuning

Runs notebook 05's study twice on a profile's prepared data (notebook 02 must have run), in memory (the run's
own study is not touched) and without checkpoints (nothing is reused between the two): once with the study's
pruner (:func:`sentiment_lib.tuning.study.make_pruner`: successive halving over epochs), once exhaustive
(every trial trains all ``TRIAL_EPOCHS``), with the same sampler, seed and trial count. It prints, for each,
the wall time, the epochs trained, the best validation loss, the mean of the ``ENSEMBLE`` best (the trials 05
retrains), and their validation accuracies. Validation only: the test split is never read.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np
import optuna
import pandas as pd

from sentiment_lib.profiles import Params
from sentiment_lib.rundir import Prepared, load_run
from sentiment_lib.runtime import Runtime
from sentiment_lib.tuning.space import study_plan
from sentiment_lib.tuning.study import finished_trials, make_pruner, make_sampler, objective
from sentiment_lib.tuning.storage import quiet_optuna


def run_one(prepared: Prepared, params: Params, pruner: optuna.pruners.BasePruner, n_trials: int, seed: int
            ) -> dict[str, Any]:
    """One in-memory study; its cost and what it found."""
    with quiet_optuna(False):
        study = optuna.create_study(direction="minimize", sampler=make_sampler(seed, n_trials), pruner=pruner)
        start = time.perf_counter()
        space = study_plan(params)[2]  # 05's space: around 04's chosen network when the run recorded one
        study.optimize(objective(prepared, params, runtime=Runtime(checkpoints=False), space=space), n_trials=n_trials)
        seconds = time.perf_counter() - start
    trials = finished_trials(study)
    complete = sorted((t for t in trials if t.state == optuna.trial.TrialState.COMPLETE), key=lambda t: t.value)
    top = complete[: params.ensemble]
    return {"seconds": seconds, "epochs": sum(len(t.user_attrs.get("val_loss_by_epoch", [])) for t in trials),
            "complete": len(complete), "pruned": len(trials) - len(complete),
            "best val loss": complete[0].value if complete else np.nan,
            f"top-{params.ensemble} val loss": float(np.mean([t.value for t in top])) if top else np.nan,
            f"top-{params.ensemble} val acc": float(np.mean([t.user_attrs["val_accuracy"] for t in top]))
            if top else np.nan,
            "best": complete[0].params if complete else {}}


def compare(profile: str = "quick", n_trials: int | None = None, seed: int | None = None) -> pd.DataFrame:
    """The two studies side by side (rows ``successive halving`` and ``exhaustive``)."""
    params, prepared = load_run(profile)
    n_trials = int(n_trials or params.n_trials)
    seed = int(params.seed if seed is None else seed)
    rows = {"successive halving": run_one(prepared, params, make_pruner(n_trials), n_trials, seed),
            "exhaustive": run_one(prepared, params, optuna.pruners.NopPruner(), n_trials, seed)}
    return pd.DataFrame(rows).T


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tuning_budget", description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--trials", type=int, default=None, help="trials per study (default: the profile's N_TRIALS)")
    parser.add_argument("--seed", type=int, default=None, help="sampler seed (default: the profile's SEED)")
    args = parser.parse_args(argv)
    try:
        table = compare(args.profile, args.trials, args.seed)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    with pd.option_context("display.width", 200, "display.max_colwidth", 120):
        print(table.drop(columns=["best"]).to_string())
        for name, row in table.iterrows():
            print(f"{name}: best configuration {row['best']}")
    sh, full = table.loc["successive halving"], table.loc["exhaustive"]
    print(f"successive halving used {sh['seconds'] / full['seconds']:.0%} of the exhaustive study's time "
          f"({sh['epochs']} vs {full['epochs']} epochs); best validation loss {sh['best val loss']:.4f} vs "
          f"{full['best val loss']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
