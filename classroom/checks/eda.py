"""Hidden checks of notebook 01 (exploring the data)."""
from __future__ import annotations

import re
from typing import Callable

import numpy as np
import pandas as pd

from sentiment_lib import eda, text

from ._common import Failed, _call, _own, _require, partial


CLEAN_CASES = [
    "A <b>great</b> film!<br /><br />Go see it.",
    "!!!Terrible, terrible... 1/10 -- avoid.",
    "I don't think 'quoted' words, or the dogs' bone, keep their quote marks.",
    "Caf&eacute; &amp; bar: 10/10 (really) #best",
    "Mixed CASE, tabs\tand\nnew lines; ok?",
    "''It's'' -- an 'odd' one...",
]


def _clean_review_mistake(case: str, got: str, expected: str) -> str:
    """What a wrong cleaning of ``case`` (``got``, where the rules give ``expected``) most likely does wrong."""
    words, right = got.split(), set(expected.split())
    markup = {w.lower() for pair in re.findall(r"<\s*/?\s*(\w+)|&(\w+);", case) for w in pair if w}
    if any(c in got for c in ".,;:!?()#-/"):
        return ("clean_review leaves punctuation inside the text: replace every character that is not a letter, a "
                "digit, an apostrophe or white space, everywhere, not only at the start.")
    if "<" in got or "&" in got or any(w in markup and w not in right for w in words):
        return ("clean_review leaves HTML in the text (tags, or entities such as &amp;): unescape entities with "
                "html.unescape and replace tags with a space before removing other characters.")
    if any(c.isupper() for c in got):
        return "clean_review leaves upper-case letters: lower-case the review."
    if re.search(r"[^a-z0-9'\s]", got):
        return ("clean_review keeps characters other than a-z, 0-9 and apostrophes (accented letters, underscores: "
                "\\w matches more than a-z and 0-9): name the characters to keep, [^a-z0-9'\\s].")
    if "".join(words) == "".join(expected.split()):
        return ("clean_review joins words that a removed character separated: replace each removed character by a "
                "space, not by nothing.")
    if any(w.startswith("'") or w.endswith("'") for w in words):
        return "clean_review keeps apostrophes that are quote marks (not inside a word): replace those by a space."
    if "'" in expected and "'" not in got:
        return "clean_review removes the apostrophe inside words such as don't: keep it, remove only quote marks."
    return ("clean_review gives different words from the rules on some reviews "
            "(check upper case, entities and apostrophes that are quote marks).")


# One part of the rules per group of reviews, each group testing that part alone (plain lower-case words besides).
CLEAN_PARTS = [
    ("HTML removed (tags and entities)", 0.5, ["a <b>great</b> film<br /><br />go see it", "dogs&nbsp;and cats <i>too</i>"]),
    ("lower case", 0.5, ["Mixed CASE words", "A Great FILM"]),
    ("punctuation and other characters replaced by a space, everywhere",
     0.5, ["!!!terrible, terrible... 1/10 -- avoid", "café bar: 10/10 (really) #best", "snake_case words; ok?"]),
    ("apostrophes kept inside words, quote marks removed",
     0.5, ["i don't think 'quoted' words or the dogs' bone keep their quote marks", "''it's'' an 'odd' one"]),
]


def _clean_part(fn: Callable[[str], str], cases: list[str]) -> Callable[[], None]:
    def test() -> None:
        for case in cases:
            got = _call(fn, "clean_review", case)
            _require(isinstance(got, str), f"clean_review must return a str, got {type(got).__name__}.")
            expected = " ".join(text.clean_text(case).split())
            _require(" ".join(got.split()) == expected, _clean_review_mistake(case, got, expected))
    return test


def check_clean_review(fn: Callable[[str], str]) -> float:
    """Partial credit: each part of the rules (:data:`CLEAN_PARTS`) on reviews that test it alone; then the whole
    rules on :data:`CLEAN_CASES`, which mix them, for the last part."""
    _own(fn, "clean_review")
    parts = [(title, points, _clean_part(fn, cases)) for title, points, cases in CLEAN_PARTS]
    title, points, last = parts[-1]
    parts[-1] = (title, points, lambda: (last(), _clean_part(fn, CLEAN_CASES)()))
    return partial("clean_review", parts)


def overlap_frame() -> pd.DataFrame:
    rows = [
        ("train", 1, "a fine film"), ("train", 0, "a dull film"), ("train", 0, "a dull film"),
        ("train", 1, "seen twice"), ("test", 1, "seen twice"), ("test", 1, "seen twice"),
        ("test", 0, "a dull film"), ("test", 1, "only in test"),
        ("train", -1, "only in test"),  # unlabelled: not part of the labelled overlap
        ("test", 0, "unlabelled copy"), ("train", -1, "unlabelled copy"),
    ]
    return pd.DataFrame(rows, columns=["split", "label", "text"])


def check_train_test_overlap(fn: Callable[[pd.DataFrame], int]) -> None:
    _own(fn, "train_test_overlap")
    frame = overlap_frame()
    expected = eda.duplicates(frame)["train_test_overlap"]
    got = _call(fn, "train_test_overlap", frame.copy())
    _require(isinstance(got, (int, np.integer)), f"train_test_overlap must return an int, got {type(got).__name__}.")
    if int(got) != expected:
        raise Failed(f"train_test_overlap counts {int(got)} texts where the rules give {expected}: count distinct "
                     "texts, labelled reviews only (label 0 or 1), that occur in both train and test.")
    _require(int(_call(fn, "train_test_overlap", frame[frame["split"] == "train"].copy())) == 0,
             "train_test_overlap must be 0 when there is no test review.")

