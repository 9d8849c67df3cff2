"""Label new reviews with a run's saved model: ``python -m sentiment_lib predict``.

    python -m sentiment_lib predict --profile quick "A wonderful film." "Dull and far too long."
    python -m sentiment_lib predict --profile quick --file reviews.txt      # one review per line
    cat reviews.txt | python -m sentiment_lib predict --profile quick       # or --file -
    python -m sentiment_lib predict --model artifacts/quick/models/baseline.pt "Great acting."

The model is the run's final bundle, :func:`sentiment_lib.config.final_model_path` (written by notebook 05
with :func:`sentiment_lib.final_model.save_final_model`), or any bundle named with ``--model``. Each review gives one
tab-separated line on stdout::

    positive<TAB>0.9312<TAB>A wonderful film.

the label, the probability the model gives that label, and the review's first 60 characters (whitespace
collapsed). Multi-class bundles print the class name (from the bundle's ``class_names`` metric, else
``class_<i>``). Blank lines of a file or of stdin are skipped; a line with no words or a placeholder (``NaN``,
``NULL``, …) is skipped too, named by its line number in the file on stderr with the count, and the other
lines are scored. An empty review given as an argument, a missing bundle or a missing file (or a folder) is an
error (message on stderr, exit status 2).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence, TextIO

import numpy as np

from . import config
from .files import PLACEHOLDERS, sniff_encoding

SNIPPET_CHARS = 60
EXIT_USAGE = 2


class PredictError(Exception):
    """A problem the user fixes (no bundle, no input, an empty review); the message names the fix."""


def resolve_bundle(profile: str, model: str | None = None) -> Path:
    """The bundle to load: ``model`` when given, else the profile's final model.

    Raises :class:`PredictError` naming how to make one (and the other bundles the run has) when the file
    does not exist.
    """
    if model:
        path = Path(model).expanduser()
        if not path.is_file():
            raise PredictError(f"No model bundle at {path}. Pass the path of a bundle saved by the notebooks "
                               f"(e.g. {config.final_model_path(profile)}).")
        return path
    path = config.final_model_path(profile)
    if path.is_file():
        return path
    others = sorted(config.models_dir(profile).glob("*.pt"))
    hint = ""
    if others:
        hint = (" The run has these other bundles; pass one with --model: "
                + ", ".join(str(p) for p in others) + ".")
    raise PredictError(
        f"No final model for profile {profile!r} at {path}. Train it first: `make run PROFILE={profile}` "
        f"(notebook 05 saves it), or pass --model PATH to a saved bundle.{hint}")


def _lines(stream: TextIO, name: str = "stdin", encoding: str = "utf-8") -> list[tuple[str, str]]:
    """``(where, line)`` for the non-blank lines of ``stream`` (``where``: ``"<name> line <n>"``, counting every
    line of the file from 1), without their line ends; :class:`PredictError` when it does not decode."""
    try:
        return [(f"{name} line {number}", line.rstrip("\r\n")) for number, line in enumerate(stream, start=1)
                if line.strip()]
    except UnicodeDecodeError as err:
        raise PredictError(f"{name} is not {encoding} text ({err.reason} at byte {err.start}): give its encoding "
                           "with --encoding (e.g. --encoding latin-1 or cp1252), or save it as UTF-8.") from None


def gather_reviews(texts: Sequence[str], file: str | None, stdin: TextIO | None = None,
                   encoding: str = "utf-8") -> list[tuple[str, str]]:
    """``(where, review)`` from the arguments (``"argument 2"``), then from ``file`` (one per line, ``"FILE line
    5001"``; ``'-'`` is stdin), or from stdin when there are neither and stdin is not a terminal. ``encoding`` is
    the file's (default UTF-8). Raises :class:`PredictError` when there is nothing to score, a file is missing,
    is a folder or does not decode, the encoding is unknown, or an argument is blank."""
    import codecs

    try:
        codecs.lookup(encoding)
    except LookupError:
        raise PredictError(f"Unknown --encoding {encoding!r}: use a Python codec name such as utf-8, latin-1 "
                           "or cp1252.") from None
    stdin = stdin if stdin is not None else sys.stdin
    blank = [i + 1 for i, text in enumerate(texts) if not text.strip()]
    if blank:
        raise PredictError(f"Review argument(s) {blank} are empty; give each review some words.")
    gathered = [(f"argument {i}", text) for i, text in enumerate(texts, start=1)]
    if file == "-":
        gathered += _lines(stdin)
    elif file:
        path = Path(file).expanduser()
        if path.is_dir():
            raise PredictError(f"{path} is a folder: give a text file inside it, with one review per line.")
        if not path.is_file():
            raise PredictError(f"No file {path}: give a text file with one review per line, or '-' for stdin.")
        with open(path, "rb") as raw:
            encoding = sniff_encoding(raw.read(4), encoding)  # a byte-order mark names it
        with open(path, encoding=encoding) as handle:
            gathered += _lines(handle, str(path), encoding)
    elif not texts and stdin is not None and not _is_terminal(stdin):
        gathered += _lines(stdin)
    if not gathered:
        raise PredictError('No review to score. Give reviews as arguments ("some review text"), '
                           "--file PATH with one review per line, or pipe them on stdin.")
    return gathered


def gather_texts(texts: Sequence[str], file: str | None, stdin: TextIO | None = None,
                 encoding: str = "utf-8") -> list[str]:
    """The reviews of :func:`gather_reviews`, without where they came from."""
    return [text for _, text in gather_reviews(texts, file, stdin, encoding)]


def unscorable(bundle, reviews: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """``(where, why)`` for each review the model cannot score: a placeholder instead of a text, or no word left
    after cleaning. ``bundle``: a loaded bundle (an ensemble is checked through its first member, which cleans
    texts as every member does)."""
    reader = getattr(bundle, "members", [bundle])[0]
    bad = []
    for where, text in reviews:
        if text.strip().lower() in PLACEHOLDERS:
            bad.append((where, f"a placeholder ({text.strip()!r}), not a review"))
        elif not reader.has_words(text):
            bad.append((where, "no words after cleaning (only punctuation or markup)"))
    return bad


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or stand-in streams
        return True


def snippet(text: str, width: int = SNIPPET_CHARS) -> str:
    """The first ``width`` characters of ``text`` on one line (whitespace runs become one space)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def label_rows(prob: np.ndarray, class_names: Sequence[str] | None = None) -> list[tuple[str, float]]:
    """``(label, probability of that label)`` per review.

    ``prob``: (N,) probability of *positive* (binary bundles), or (N, C) class probabilities.
    """
    prob = np.asarray(prob, dtype=float)
    if prob.ndim == 1:
        return [("positive", p) if p >= 0.5 else ("negative", 1.0 - p) for p in prob.tolist()]
    names = list(class_names) if class_names and len(class_names) == prob.shape[1] else \
        [f"class_{i}" for i in range(prob.shape[1])]
    best = prob.argmax(axis=1)
    return [(names[k], float(prob[i, k])) for i, k in enumerate(best)]


def format_rows(texts: Sequence[str], prob: np.ndarray, class_names: Sequence[str] | None = None) -> list[str]:
    """One tab-separated line per review: label, its probability (4 decimals), the text's start."""
    return [f"{label}\t{p:.4f}\t{snippet(text)}" for text, (label, p) in zip(texts, label_rows(prob, class_names))]


def main_predict(args) -> int:
    """The ``predict`` command: ``args`` has ``texts`` (list), ``profile``, ``model`` (path or None) and
    ``file`` (path, ``'-'`` or None). Prints one line per review; returns the exit status (0, or 2 with a
    message on stderr)."""
    from .bundle import load_bundle

    try:
        path = resolve_bundle(args.profile, args.model)
        reviews = gather_reviews(args.texts or [], args.file, encoding=getattr(args, "encoding", None) or "utf-8")
        bundle = load_bundle(path)
        skipped = unscorable(bundle, reviews)
        bad = {where for where, _ in skipped}
        if any(where.startswith("argument") for where in bad):
            raise PredictError("Review " + "; ".join(f"{w}: {why}" for w, why in skipped if w.startswith("argument"))
                               + ". Give each review some words.")
        texts = [text for where, text in reviews if where not in bad]
        if not texts:
            raise PredictError(f"None of the {len(reviews)} lines can be scored: "
                               + "; ".join(f"{w}: {why}" for w, why in skipped[:10]) + ".")
        prob = bundle.predict(texts)
    except (PredictError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    for line in format_rows(texts, prob, bundle.metrics.get("class_names")):
        print(line)
    if skipped:
        print(f"skipped {len(skipped)} of {len(reviews)} lines that cannot be scored: "
              + "; ".join(f"{w}: {why}" for w, why in skipped[:20]) + ("; …" if len(skipped) > 20 else ""),
              file=sys.stderr)
    return 0
