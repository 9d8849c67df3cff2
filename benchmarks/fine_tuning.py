"""Do Howard & Ruder's (2018) fine-tuning schedules help 04's ladder networks? Discriminative rates, a slanted
triangular rate, both, against the rung as 04 trains it.

    python -m benchmarks.fine_tuning [--profile quick] [--rung "language-model start + AT" …]
                                     [--layer-decay 2.6] [--way "slanted triangle" …]

On a profile's prepared data (notebooks 01–02 must have run), each rung named (a label of
:data:`sentiment_lib.plans.LADDER_STARTS` that the run plans) is trained in each way of :data:`WAYS` (``--way``
picks some), its job from :func:`sentiment_lib.plans.ladder_jobs` with only its rates changed
(``Configuration.layer_decay``, ``schedule``, ``lr``): as 04 trains it (constant rate, one rate for every
layer); discriminative rates (the recurrence at ``lr / layer_decay``, the embedding at ``lr / layer_decay**2``);
the slanted triangle over the rung's epoch cap (a rise over its first tenth, then a linear fall); both; and
discriminative rates with the output side at ``lr × layer_decay``, so that the recurrence keeps the rung's own
rate. Independent trainings run side by side as 04's do (``PROCESSES``), with checkpoints in the run directory,
so an interrupted benchmark continues and the row of 04's own rung is the one 04 trains (read back when 04 has
run). It prints, per training and ranked on validation loss (:func:`sentiment_lib.experiment.comparison_table`),
the validation loss and accuracy of the kept epoch (what a choice may look at), the kept and run epochs, the
training time, whether it was read back, and the test accuracy (printed for the record; it decides nothing), with
the machine's CPU capability and precision.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace

import pandas as pd
import torch

from sentiment_lib import plans
from sentiment_lib.config import choose_device, choose_precision
from sentiment_lib.experiment import comparison_table, train_many
from sentiment_lib.rundir import load_run

# Each way's changes to the rung's configuration, from the rung's rate and --layer-decay.
WAYS = {"as 04 trains it": lambda lr, decay: {},
        "discriminative rates": lambda lr, decay: {"layer_decay": decay},
        "slanted triangle": lambda lr, decay: {"schedule": "slanted"},
        "both": lambda lr, decay: {"layer_decay": decay, "schedule": "slanted"},
        # the output side faster, so that the recurrence keeps the rung's own rate
        "discriminative rates, LSTM at the rung's rate": lambda lr, decay: {"layer_decay": decay, "lr": lr * decay}}


def variants(rungs: list[str], profile: str, layer_decay: float, ways: list[str] | None = None) -> list:
    """The jobs: each rung of ``rungs`` in each of ``ways`` (keys of :data:`WAYS`; default all), labelled
    ``"<rung> | <way>"``, with the factor in brackets where the way sets ``layer_decay``."""
    params, prepared = load_run(profile)
    jobs, labels = plans.ladder_jobs(prepared, params), plans.ladder_labels(prepared, params)
    unknown = [rung for rung in rungs if rung not in labels]
    if unknown:
        raise SystemExit(f"This run plans no rung {unknown}; it plans {list(labels)} "
                         "(rerun 02 with the data the rung needs, e.g. -p LM_BACKWARD True).")
    out = []
    for rung in rungs:
        base = jobs[labels[rung]]
        for way in ways or list(WAYS):
            change = WAYS[way](base.configuration.lr, layer_decay)
            factor = f" ({layer_decay:g})" if "layer_decay" in change else ""
            out.append(replace(base, configuration=replace(base.configuration, **change),
                               name=f"{rung} | {way}{factor}", twin=None))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--rung", nargs="+", default=[plans.LADDER_STARTS[2]])
    parser.add_argument("--layer-decay", type=float, default=2.6, help="Howard & Ruder's 2.6")
    parser.add_argument("--way", nargs="+", choices=list(WAYS), help="only these ways (default: every one)")
    args = parser.parse_args(argv)
    jobs = variants(args.rung, args.profile, args.layer_decay, args.way)
    params = jobs[0].params
    device = choose_device("auto")
    print(f"CPU capability {torch.backends.cpu.get_cpu_capability()}, device {device.type}, precision "
          f"{choose_precision(params.precision, device) or 'float32'}, {len(jobs)} trainings", flush=True)
    table = comparison_table(train_many(jobs, desc="fine-tuning variants"))  # ranked on validation loss
    table = table[["val_loss", "val_accuracy", "best_epoch", "epochs_run", "train_seconds", "resumed", "accuracy"]]
    table = table.rename(columns={"accuracy": "test accuracy (reported only)"})
    with pd.option_context("display.width", 200, "display.max_colwidth", 60):
        print(table.round(4).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
