"""Score a saved model on your own labelled reviews: ``python -m sentiment_lib evaluate FILE``.

    python -m sentiment_lib evaluate my_reviews.csv                       # the run's final model (quick)
    python -m sentiment_lib evaluate tweets.tsv --model artifacts/quick/models/baseline.pt
    python -m sentiment_lib evaluate shop.csv --text-column body --label-column stars_ok --encoding cp1252

How a model trained on IMDB reviews transfers to other texts — shorter snippets, other writers, other
products — is only known by scoring it on them. The file is CSV or TSV (by its extension, else sniffed) with
a header; the text column is found by name (``text``, ``review``, ``sentence``, …) unless ``--text-column``
names it, the label column likewise (``label``, ``sentiment``, ``polarity``, …). Labels may be spelt
``1``/``0``, ``positive``/``negative``, ``pos``/``neg``, ``true``/``false``, ``yes``/``no``, ``good``/``bad``
or ``+``/``-`` (any case). Printed: accuracy with its exact 95% interval, precision, recall and F1 of the
positive class, and the confusion matrix. A file that is not UTF-8 is an error naming ``--encoding`` (a UTF-16
or UTF-8 byte-order mark is read as such); ``--separator`` names the column separator when neither the extension
nor the header tells it. Nothing is scored silently wrong: a row whose field count differs from the header's
(an unquoted separator inside a text), an empty text or a placeholder such as ``NaN``/``NULL`` is named by its
file line, and labels that look like star ratings are refused with the conversion to use.
"""
from __future__ import annotations

import csv
import io
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .metrics import binary_metrics, confusion
from .files import PLACEHOLDERS, sniff_encoding
from .uncertainty import accuracy_interval

TEXT_COLUMNS = ("text", "review", "reviews", "sentence", "content", "comment", "body", "document", "tweet")
LABEL_COLUMNS = ("label", "labels", "sentiment", "polarity", "class", "target", "y")
POSITIVE = {"1", "1.0", "positive", "pos", "p", "+", "true", "yes", "y", "good"}
NEGATIVE = {"0", "0.0", "-1", "-1.0", "negative", "neg", "n", "-", "false", "no", "bad"}
SEPARATORS = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}


class EvaluateError(Exception):
    """A problem with the file or the options that the user fixes; the message names the fix."""


@dataclass
class Labelled:
    """The reviews of a labelled file: ``texts`` (N,) and ``labels`` (N,) 0/1, with the columns they came from."""

    texts: list[str]
    labels: np.ndarray
    text_column: str
    label_column: str


def _pick(columns: list[str], wanted: str | None, candidates: tuple[str, ...], what: str, option: str) -> str:
    if wanted is not None:
        if wanted not in columns:
            raise EvaluateError(f"No column {wanted!r} in the file; its columns are {columns}. Fix {option}.")
        return wanted
    by_lower = {c.strip().lower(): c for c in columns}
    for name in candidates:
        if name in by_lower:
            return by_lower[name]
    raise EvaluateError(f"Cannot tell which column holds the {what}: the columns are {columns}. Name it with "
                        f"{option} COLUMN.")


def label_values(raw: pd.Series) -> np.ndarray:
    """0/1 labels from the common spellings (see the module docstring); :class:`EvaluateError` listing the rest."""
    spelt = raw.astype(str).str.strip().str.lower()
    unknown = sorted(set(spelt) - POSITIVE - NEGATIVE)
    numbers = {v for v in spelt if v.isdigit()}
    if numbers and numbers == set(spelt) and numbers - {"0", "1"} and {int(v) for v in numbers} <= set(range(1, 11)):
        raise EvaluateError(f"The labels look like star ratings ({sorted(numbers, key=int)}), not positive/negative: "
                            "convert them first (IMDB's convention: 7–10 stars positive, 1–4 negative, 5–6 left "
                            "out), e.g. a column label = 1 if rating >= 7 else 0.")
    if unknown:
        raise EvaluateError(f"Labels {unknown[:8]} are neither positive nor negative. Accepted spellings: "
                            f"{sorted(POSITIVE)} for positive, {sorted(NEGATIVE)} for negative.")
    return spelt.isin(POSITIVE).to_numpy().astype(np.int64)


def _separator(path: Path, sample: str, separator: str | None) -> str:
    if separator is not None:
        sep = "\t" if separator in ("\\t", "tab") else separator
        if sep not in SEPARATORS:
            raise EvaluateError(f"Unknown --separator {separator!r}: use one of , ; | or tab.")
        return sep
    suffix = path.suffix.lower()
    if suffix in (".tsv", ".tab"):
        return "\t"
    header = sample.split("\n", 1)[0]
    if suffix == ".csv" and "," in header:
        return ","
    try:
        return csv.Sniffer().sniff(header, delimiters=",\t;|").delimiter
    except csv.Error:
        raise EvaluateError(f"Cannot tell how {path}'s columns are separated: name the separator with "
                            "--separator (, ; | or tab), or save it as .csv or .tsv.") from None


def _check_fields(text: str, sep: str, path: Path) -> None:
    """Every row must have the header's number of fields: an unquoted separator inside a text would shift the
    columns (pandas then takes the first field as an index and scores the rest). Names the file lines."""
    reader = csv.reader(text.splitlines(keepends=True), delimiter=sep)
    header = next(reader, None)
    if header is None:
        raise EvaluateError(f"{path} is empty: give a CSV or TSV with a header, one text and one label column.")
    wrong = [(reader.line_num, len(row)) for row in reader if row and len(row) != len(header)]
    if wrong:
        lines = ", ".join(f"{line} ({count} fields)" for line, count in wrong[:10])
        more = f" and {len(wrong) - 10} more" if len(wrong) > 10 else ""
        raise EvaluateError(
            f"{len(wrong)} row(s) of {path} do not have the header's {len(header)} fields — lines {lines}{more}: a "
            f"text holds the {SEPARATORS[sep]} that separates the columns. Quote such texts "
            f"(\"A wonderful film, loved it\",1), or give the file another --separator.")


def read_labelled(path: Path, text_column: str | None = None, label_column: str | None = None,
                  encoding: str = "utf-8", separator: str | None = None) -> Labelled:
    """Read a CSV/TSV of labelled texts; :class:`EvaluateError` for a missing file or a folder, a wrong encoding,
    rows with the wrong number of fields, unknown columns or labels, and empty or placeholder texts (naming
    their file lines)."""
    import codecs

    path = Path(path).expanduser()
    if path.is_dir():
        raise EvaluateError(f"{path} is a folder: give the CSV or TSV file inside it.")
    if not path.is_file():
        raise EvaluateError(f"No file {path}: give a CSV or TSV with a header, one text and one label column.")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise EvaluateError(f"Unknown --encoding {encoding!r}: use a Python codec name such as utf-8, latin-1 "
                            "or cp1252.") from None
    raw = path.read_bytes()
    encoding = sniff_encoding(raw[:4], encoding)
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as err:
        raise EvaluateError(f"{path} is not {encoding} text ({err.reason} at byte {err.start}): give its encoding "
                            "with --encoding (e.g. --encoding latin-1 or cp1252), or save it as UTF-8.") from None
    text = text.lstrip("\ufeff")
    sep = _separator(path, text[:65536], separator)
    _check_fields(text, sep, path)
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, index_col=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise EvaluateError(f"{path} is not a readable {'TSV' if sep == chr(9) else 'CSV'} file: "
                            f"{' '.join(str(err).split())[:200]}") from None
    columns = [str(c) for c in frame.columns]
    text_col = _pick(columns, text_column, TEXT_COLUMNS, "texts", "--text-column")
    label_col = _pick(columns, label_column, LABEL_COLUMNS, "labels", "--label-column")
    if frame.empty:
        raise EvaluateError(f"{path} has a header but no rows: add labelled texts.")
    texts = frame[text_col].astype(str)
    empty = [i + 2 for i, t in enumerate(texts) if not t.strip()]  # file rows: the header is row 1
    if empty:
        raise EvaluateError(f"Rows {empty[:10]} of {path} have an empty {text_col!r}: remove them or add text.")
    placeholders = [i + 2 for i, t in enumerate(texts) if t.strip().lower() in PLACEHOLDERS]
    if placeholders:
        raise EvaluateError(f"Rows {placeholders[:10]} of {path} hold a placeholder ({', '.join(sorted(PLACEHOLDERS))}) "
                            f"instead of a text in {text_col!r}: remove them or add the texts.")
    return Labelled(texts.tolist(), label_values(frame[label_col]), text_col, label_col)


def report(labels: np.ndarray, prob: np.ndarray) -> str:
    """Accuracy with its exact 95% interval, precision/recall/F1 (positive = 1) and the confusion matrix."""
    scores = binary_metrics(labels, prob)
    n = len(labels)
    correct = int(round(scores["accuracy"] * n))
    low, high = accuracy_interval(correct, n)
    cm = confusion(labels, (prob >= 0.5).astype(int), labels=[0, 1])
    table = pd.DataFrame(cm, index=["true negative", "true positive"],
                         columns=["predicted negative", "predicted positive"])
    lines = [f"reviews: {n} ({int(labels.sum())} positive, {n - int(labels.sum())} negative)",
             f"accuracy: {scores['accuracy']:.4f}  (95% interval {low:.4f}–{high:.4f}, {correct} of {n} right)",
             f"precision: {scores['precision']:.4f}  recall: {scores['recall']:.4f}  F1: {scores['f1']:.4f}  "
             f"(positive class)", "", table.to_string()]
    if labels.min() == labels.max():
        lines.append("(every label is the same class: precision/recall of the other class are undefined)")
    return "\n".join(lines)


def main_evaluate(args) -> int:
    """The ``evaluate`` command; returns the exit status (0, or 2 with a message on stderr)."""
    from .bundle import load_bundle
    from .predict import PredictError, resolve_bundle

    try:
        path = resolve_bundle(args.profile, args.model)
        data = read_labelled(Path(args.file), args.text_column, args.label_column, args.encoding or "utf-8",
                             getattr(args, "separator", None))
        bundle = load_bundle(path)
        if bundle.num_classes != 2:
            raise EvaluateError(f"{path} predicts {bundle.num_classes} classes; evaluate scores positive/negative "
                                "models (pass a binary bundle with --model).")
        prob = bundle.predict(data.texts)
    except (EvaluateError, PredictError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    partner = getattr(bundle, "partner", None)
    print(f"model: {path}" + (f" (averaged with its {partner.name} partner, weight {partner.weight_on_network:.2f} "
                              "on the network)" if partner is not None else ""))
    print(f"file: {args.file} (text column {data.text_column!r}, label column {data.label_column!r})")
    print(report(data.labels, prob))
    return 0
