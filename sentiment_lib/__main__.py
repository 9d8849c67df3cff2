"""Command line: ``python -m sentiment_lib COMMAND``.

    run [--profile P] [--only 02 03] [-p NAME VALUE]   run the notebook chain into reports/P/
    snapshots [--only …]                              regenerate the nbval regression snapshots
    data                                              download the official archive (internet)
    predict [--profile P] [TEXT …] [--file F]         label reviews with a run's saved model
    train MODEL … [--profile P] [-p NAME VALUE]       train models of notebook 04 by name, print test metrics
"""
from __future__ import annotations

import argparse
import ast
import sys

from . import config


def _parse_value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sentiment_lib", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute the notebook chain for a profile")
    run.add_argument("--profile", default=config.DEFAULT_PROFILE, choices=sorted(config.PROFILES))
    run.add_argument("--only", nargs="*", help="notebook prefixes, e.g. 01 02")
    run.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                     default=[], help="papermill parameter for every notebook")
    run.add_argument("--no-html", action="store_true")
    snaps = sub.add_parser("snapshots", help="regenerate tests/regression/ (smoke profile)")
    snaps.add_argument("--only", nargs="*")
    sub.add_parser("data", help="download the official IMDB archive into data/raw/")
    predict = sub.add_parser("predict", help="label reviews with a run's saved model")
    predict.add_argument("texts", nargs="*", help="review texts (or use --file / stdin)")
    predict.add_argument("--profile", default=config.DEFAULT_PROFILE, choices=sorted(config.PROFILES))
    predict.add_argument("--model", help="path to a model bundle (default: the run's final model)")
    predict.add_argument("--file", help="a file with one review per line ('-' for stdin)")
    train = sub.add_parser("train", help="train models of notebook 04 by name on a run (02 must have run)")
    train.add_argument("models", nargs="+", help="model names, e.g. attention_lstm bilstm_pool")
    train.add_argument("--profile", default=config.DEFAULT_PROFILE, choices=sorted(config.PROFILES))
    train.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                       default=[], help="a notebook parameter, e.g. -p LR 2e-3 -p EPOCHS 4")
    train.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    train.add_argument("--save", action="store_true", help="save each bundle as 04 does (models/<name>.pt)")
    train.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)

    if args.command == "run":
        from .pipeline import ChainError, run_chain

        params = {name: _parse_value(value) for name, value in args.parameter}
        try:
            timings = run_chain(args.profile, args.only, parameters=params, html=not args.no_html)
        except ChainError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        print(f"chain done in {sum(timings.values()):.0f} s: " +
              ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
    elif args.command == "snapshots":
        from .pipeline import write_snapshots

        write_snapshots(args.only)
    elif args.command == "data":
        from .data import download_archive

        print(download_archive())
    elif args.command == "predict":
        from .predict import main_predict

        return main_predict(args)
    elif args.command == "train":
        return _train(args)
    return 0


def _train(args) -> int:
    """The ``train`` command: a table of test metrics (and a JSON file with ``--json``)."""
    import platform

    import pandas as pd
    import torch

    from .experiment import train_named
    from .files import write_json_atomic

    overrides = {name.lower(): _parse_value(value) for name, value in args.parameter}
    try:
        rows = train_named(args.profile, args.models, device=args.device, save=args.save, **overrides)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    shown = ["accuracy", "precision", "recall", "f1", "roc_auc", "val_accuracy", "epochs_run", "best_epoch",
             "embeddings", "wall_seconds"]
    print(pd.DataFrame(rows).set_index("model")[shown].round(4).to_string())
    if args.json:
        record = {"profile": args.profile, "parameters": overrides, "machine": platform.machine(),
                  "threads": torch.get_num_threads(), "device": args.device, "models": rows}
        write_json_atomic(record, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
