"""Command line: ``python -m sentiment_lib COMMAND`` (``sentiment COMMAND`` once installed).

    run [--profile P] [--only 02 03] [-p NAME VALUE]   run the notebook chain into reports/P/
    snapshots [--only …]                              regenerate the nbval regression snapshots
    site [--profile P]                                build and check the report site of reports/P/
    data                                              download the official archive (internet)
    train MODEL … [--profile P] [-p NAME VALUE]       train models of notebook 04 by name, print test metrics
    tune [--profile P] [--trials N] [--storage URL]   run trials of notebook 05's (shared) Optuna study
    predict [--profile P] [TEXT …] [--file F]         label reviews with a run's saved model
    evaluate FILE [--profile P] [--model M]           score a saved model on your own labelled CSV/TSV
    bench [--epoch] [--extra WAY …]                   training-speed benchmark (benchmarks/bench.py)
    results [--profile P …] [--out F]                 docs/results.md from each reports/P/metrics.json
"""
from __future__ import annotations

import argparse
import ast
import sys
from typing import Any

from . import config, profiles


def parse_value(text: str) -> Any:
    """A ``-p NAME VALUE`` value as Python reads it (``4`` → 4, ``1e-3`` → 0.001, ``None``), else the text."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _parameters(pairs: list[list[str]]) -> dict[str, Any]:
    return {name: parse_value(value) for name, value in pairs}


def _profile(command: argparse.ArgumentParser) -> None:
    command.add_argument("--profile", default=profiles.DEFAULT_PROFILE, choices=sorted(profiles.PROFILES))


def _parameter_option(command: argparse.ArgumentParser, example: str) -> None:
    command.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"), default=[],
                         help=f"a notebook parameter, e.g. {example}")


def _chain_commands(sub) -> None:
    run = sub.add_parser("run", help="execute the notebook chain for a profile")
    _profile(run)
    run.add_argument("--only", nargs="+", metavar="NOTEBOOK", help="notebook prefixes, e.g. 01 02")
    _parameter_option(run, "-p EPOCHS 4 (every notebook that declares it)")
    run.add_argument("--no-html", action="store_true")
    snaps = sub.add_parser("snapshots", help="regenerate tests/regression/ (smoke profile)")
    snaps.add_argument("--only", nargs="*")
    _profile(sub.add_parser("site", help="build the report site (index, pages, navigation) from reports/P/"))
    sub.add_parser("data", help="download the official IMDB archive into data/raw/")
    results = sub.add_parser("results", help="write docs/results.md: the results tables of reports/P/metrics.json")
    results.add_argument("--profile", nargs="+", choices=sorted(profiles.PROFILES),
                         help="only these profiles (default: every one with reports/P/metrics.json)")
    results.add_argument("--out", help="the Markdown file to write (default: docs/results.md)")


def _model_commands(sub) -> None:
    predict = sub.add_parser("predict", help="label reviews with a run's saved model")
    predict.add_argument("texts", nargs="*", help="review texts (or use --file / stdin)")
    _profile(predict)
    predict.add_argument("--model", help="path to a model bundle (default: the run's final model)")
    predict.add_argument("--file", help="a file with one review per line ('-' for stdin)")
    predict.add_argument("--encoding", default="utf-8", help="the --file's text encoding (default utf-8; e.g. latin-1)")
    evaluate = sub.add_parser("evaluate", help="score a saved model on a labelled CSV/TSV of your own texts")
    evaluate.add_argument("file", help="CSV or TSV with a header: a text column and a label column")
    _profile(evaluate)
    evaluate.add_argument("--model", help="path to a model bundle (default: the run's final model)")
    evaluate.add_argument("--text-column", help="the texts' column (default: found by name: text, review, …)")
    evaluate.add_argument("--label-column", help="the labels' column (default: label, sentiment, polarity, …)")
    evaluate.add_argument("--encoding", default="utf-8", help="the file's text encoding (default utf-8; a byte-order "
                          "mark is honoured)")
    evaluate.add_argument("--separator", help="the column separator: , ; | or tab (default: by extension or header)")


def _training_commands(sub) -> None:
    train = sub.add_parser("train", help="train models of notebook 04 by name on a run (02 must have run)")
    train.add_argument("models", nargs="+", help="model names, e.g. attention_lstm bilstm_pool")
    _profile(train)
    _parameter_option(train, "-p LR 2e-3 -p EPOCHS 4")
    train.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    train.add_argument("--save", action="store_true", help="save each bundle as 04 does (models/<name>.pt)")
    train.add_argument("--json", help="also write the rows to this JSON file")
    tune = sub.add_parser("tune", help="run trials of notebook 05's Optuna study (several workers: one --storage)",
                          description="Run Optuna trials of the sentiment study. Every process given the same "
                                      "--storage URL and --study name works on the same study (one machine or "
                                      "several).")
    _profile(tune)
    tune.add_argument("--storage", help="Optuna RDB URL (default: $OPTUNA_STORAGE, else SQLite in the run directory)")
    tune.add_argument("--study", help="study name (default: sentiment-<profile>)")
    group = tune.add_mutually_exclusive_group()
    group.add_argument("--trials", type=int, help="run until the study has this many finished trials "
                                                  "(default: the profile's N_TRIALS)")
    group.add_argument("--worker-trials", type=int, help="run exactly this many trials in this worker")
    tune.add_argument("--metric", default="val_loss", choices=("val_accuracy", "val_loss"))
    tune.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    tune.add_argument("--threads", type=int, help="torch threads for this worker")
    tune.add_argument("--seed", type=int, help="sampler seed (default: the profile's SEED)")
    tune.add_argument("--timeout", type=float, help="start no new trial after this many seconds")
    _parameter_option(tune, "-p TRIAL_EPOCHS 3")
    sub.add_parser("bench", help="training-speed benchmark: seed-style loop vs this project's loop "
                                 "(options: python -m sentiment_lib bench --help)", add_help=False)


def parser() -> argparse.ArgumentParser:
    """The command line's parser: one sub-command per job (see the module docstring)."""
    made = argparse.ArgumentParser(prog="python -m sentiment_lib", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = made.add_subparsers(dest="command", required=True)
    _chain_commands(sub)
    _model_commands(sub)
    _training_commands(sub)
    return made


def main(argv: list[str] | None = None) -> int:
    made = parser()
    args, rest = made.parse_known_args(argv)
    if args.command == "bench":
        return _bench(rest)
    if rest:
        made.error(f"unrecognized arguments: {' '.join(rest)}")
    return COMMANDS[args.command](args)


def _run(args) -> int:
    """The ``run`` command: the notebook chain into reports/P/."""
    from .pipeline import ChainError, run_chain, staging_dir
    from .runtime.lock import RunLocked

    try:
        timings = run_chain(args.profile, args.only, parameters=_parameters(args.parameter), html=not args.no_html)
    except (ChainError, RunLocked, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted: the report in reports/{args.profile}/ is as it was; the interrupted notebook's "
              f"copy is in {staging_dir(args.profile)}. Run the same command again to resume (finished "
              "trainings are reused from their checkpoints).", file=sys.stderr)
        return 130
    print(f"chain done in {sum(timings.values()):.0f} s: " +
          ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
    return 0


def _snapshots(args) -> int:
    from .pipeline import write_snapshots

    write_snapshots(args.only)
    return 0


def _site(args) -> int:
    """The ``site`` command: build reports/P/'s site and check its links."""
    from .site import build_site, check_site

    try:
        pages = build_site(args.profile)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    problems = check_site(pages[0].parent)
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    print(f"{len(pages)} pages in {pages[0].parent}: open {pages[0]}")
    return 1 if problems else 0


def _data(args) -> int:
    from .data import download_archive

    print(download_archive())
    return 0


def _predict(args) -> int:
    from .predict import main_predict

    return main_predict(args)


def _evaluate(args) -> int:
    from .evaluate import main_evaluate

    return main_evaluate(args)


def _results(args) -> int:
    """The ``results`` command: docs/results.md from the committed reports."""
    from .results_doc import ResultsError, write_results

    try:
        out = write_results(args.out or config.project_root() / "docs" / "results.md", profiles=args.profile)
    except ResultsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {config.shown_path(out)}")
    return 0


def _tune(args) -> int:
    """The ``tune`` command: run trials of the profile's study, then print its summary as JSON."""
    import json

    from .rundir import load_run
    from .tuning.study import run_study, study_summary

    try:  # the run's data parameters and embedding start, as notebook 05 has them
        params, prepared = load_run(args.profile, **{n.lower(): v for n, v in _parameters(args.parameter).items()})
        study = run_study(prepared, params, args.trials, storage=args.storage, study_name=args.study,
                          device=args.device, seed=args.seed, metric=args.metric, worker_trials=args.worker_trials,
                          threads=args.threads, timeout=args.timeout, verbose=True)
    except (FileNotFoundError, ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(study_summary(study), indent=2, default=str))
    return 0


def _bench(argv: list[str]) -> int:
    """The ``bench`` command: ``benchmarks/bench.py`` of the checkout (the benchmark is not in the package)."""
    bench = config.project_root() / "benchmarks" / "bench.py"
    if not bench.is_file():
        print(f"error: no benchmark at {bench}: the benchmark ships with the source checkout, not the installed "
              "package; run it from a clone of the repository (make bench).", file=sys.stderr)
        return 2
    import subprocess

    # the benchmark lives beside the package, not in it: run it from the checkout (the package edits no sys.path)
    return subprocess.call([sys.executable, "-m", "benchmarks.bench", *argv], cwd=config.project_root())


def _train(args) -> int:
    """The ``train`` command: a table of test metrics (and a JSON file with ``--json``)."""
    import platform

    import pandas as pd
    import torch

    from .experiment import train_named
    from .files import write_json_atomic

    from .runtime.lock import RunLocked

    overrides = {name.lower(): value for name, value in _parameters(args.parameter).items()}
    try:
        rows = train_named(args.profile, args.models, device=args.device, save=args.save, **overrides)
    except (ValueError, FileNotFoundError, RunLocked) as err:
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


COMMANDS = {"run": _run, "snapshots": _snapshots, "site": _site, "data": _data, "predict": _predict,
            "evaluate": _evaluate, "train": _train, "tune": _tune, "results": _results}


if __name__ == "__main__":
    sys.exit(main())
