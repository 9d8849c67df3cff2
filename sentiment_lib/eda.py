"""Statistics for exploring the reviews table (notebook 01): lengths, duplicates, HTML noise,
word frequencies, rating distribution and train/test overlap.

Every function takes the table from ``data.load_reviews`` (or a part of it) and returns a small
DataFrame or dict that a notebook shows or quotes; the figures live in ``plots``.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Sequence

import numpy as np
import pandas as pd

from .text import stop_words

LABEL_NAMES = {0: "negative", 1: "positive", -1: "unlabelled"}
_TAG = re.compile(r"<[^>]+>")
_ENTITY = re.compile(r"&[a-zA-Z]+;|&#\d+;")


def overview(frame: pd.DataFrame) -> pd.DataFrame:
    """Reviews per official split and label, with missing / empty text counts."""
    table = frame.assign(label=frame["label"].map(LABEL_NAMES)).pivot_table(
        index="split", columns="label", values="id", aggfunc="size", fill_value=0)
    table["total"] = table.sum(axis=1)
    table["missing_text"] = frame.groupby("split")["text"].apply(lambda s: int(s.isna().sum()))
    table["empty_text"] = frame.groupby("split")["text"].apply(lambda s: int((s.str.strip() == "").sum()))
    return table


def missing_values(frame: pd.DataFrame) -> pd.Series:
    """Missing values per column (star ratings are missing by design for the CSV source)."""
    return frame.isna().sum()


def duplicates(frame: pd.DataFrame) -> dict[str, int]:
    """Exact duplicate texts among the labelled reviews: how many rows repeat an earlier text,
    how many repeated texts carry conflicting labels, and how many texts occur in both train
    and test."""
    lab = frame[frame["label"] >= 0]
    dup_rows = int(lab["text"].duplicated().sum())
    by_text = lab.groupby("text", sort=False)
    conflicting = int((by_text["label"].nunique() > 1).sum())
    in_both = len(set(lab.loc[lab["split"] == "train", "text"]) & set(lab.loc[lab["split"] == "test", "text"]))
    return {"labelled": len(lab), "distinct_texts": int(lab["text"].nunique()),
            "duplicate_rows": dup_rows, "conflicting_labels": conflicting, "train_test_overlap": in_both}


def lengths(frame: pd.DataFrame, tokens: Sequence[Sequence[str]] | None = None) -> pd.DataFrame:
    """Per-review lengths: ``chars``, ``words`` (whitespace-separated, raw text) and, when
    ``tokens`` (aligned with ``frame``) is given, ``tokens`` (after cleaning + NLTK)."""
    out = pd.DataFrame({
        "label": frame["label"].map(LABEL_NAMES).to_numpy(),
        "chars": frame["text"].str.len().to_numpy(),
        "words": frame["text"].str.split().str.len().to_numpy(),
    })
    if tokens is not None:
        out["tokens"] = np.fromiter((len(t) for t in tokens), dtype=np.int64, count=len(tokens))
    return out


def length_summary(lens: pd.DataFrame, column: str = "words") -> pd.DataFrame:
    """describe() of one length column by label, plus the 95th and 99th percentiles."""
    grouped = lens.groupby("label")[column]
    table = grouped.describe(percentiles=[0.25, 0.5, 0.75, 0.95, 0.99])
    overall = lens[column].describe(percentiles=[0.25, 0.5, 0.75, 0.95, 0.99])
    table.loc["all"] = overall
    return table.round(1)


def length_bins(lens: pd.DataFrame, column: str = "words",
                edges: Sequence[int] = (0, 100, 200, 300, 500, 1000, 3000)) -> pd.DataFrame:
    """Reviews per length bin, with the positive share in each bin (length-sentiment link)."""
    top = max(int(lens[column].max()) + 1, edges[-1] + 1)
    bins = pd.cut(lens[column], list(edges[:-1]) + [top], right=False)
    table = lens.assign(bin=bins, positive=lens["label"] == "positive").groupby("bin", observed=False)
    out = table.agg(reviews=("positive", "size"), positive_share=("positive", "mean"))
    out["share_of_reviews"] = out["reviews"] / out["reviews"].sum()
    return out.round(3)


def html_noise(frame: pd.DataFrame) -> dict[str, float]:
    """How much markup the texts carry: share of reviews with a tag (mostly ``<br />``), with an
    HTML entity, and the most common tags."""
    texts = frame["text"]
    has_tag = texts.str.contains(_TAG)
    has_entity = texts.str.contains(_ENTITY)
    tags = Counter(t.lower() for s in texts[has_tag] for t in _TAG.findall(s))
    return {"reviews": len(texts), "share_with_tag": float(has_tag.mean()),
            "share_with_entity": float(has_entity.mean()),
            "tags_total": int(sum(tags.values())),
            "top_tags": dict(tags.most_common(5))}


def top_words(tokens: Sequence[Sequence[str]], labels: Sequence[int] | None = None, n: int = 20,
              remove_stopwords: bool = True) -> pd.DataFrame:
    """The ``n`` most frequent tokens overall (``labels`` None) or per label, stop words removed.

    Returns long format: columns label, word, count, share (of the label's non-stop tokens).
    """
    stops = stop_words() if remove_stopwords else frozenset()
    groups: dict[str, list] = {}
    keys = ["all"] * len(tokens) if labels is None else [LABEL_NAMES[int(x)] for x in labels]
    for key, toks in zip(keys, tokens):
        groups.setdefault(key, []).append(toks)
    rows = []
    for key, lists in groups.items():
        counter = Counter(t for toks in lists for t in toks if t not in stops and len(t) > 1 and t[0].isalnum())
        total = sum(counter.values())
        rows += [(key, w, c, c / total) for w, c in counter.most_common(n)]
    return pd.DataFrame(rows, columns=["label", "word", "count", "share"])


def distinctive_words(tokens: Sequence[Sequence[str]], labels: Sequence[int], n: int = 15,
                      min_reviews: int = 200) -> pd.DataFrame:
    """Words most typical of each class: log-odds of appearing in a positive vs a negative review
    (document frequency, add-one smoothed), among words found in at least ``min_reviews``
    reviews, so that a film's name repeated in a handful of reviews does not top the list."""
    pos, neg = Counter(), Counter()
    for toks, y in zip(tokens, labels):
        (pos if y == 1 else neg).update(set(toks))
    n_pos = max(1, sum(1 for y in labels if y == 1))
    n_neg = max(1, len(labels) - n_pos)
    words = [w for w in set(pos) | set(neg) if pos[w] + neg[w] >= min_reviews]
    score = pd.Series({w: np.log((pos[w] + 1) / n_pos) - np.log((neg[w] + 1) / n_neg) for w in words},
                      dtype=float)
    top = score.nlargest(n).rename("log_odds").to_frame().assign(label="positive")
    bottom = score.nsmallest(n).rename("log_odds").to_frame().assign(label="negative")
    return pd.concat([top, bottom]).rename_axis("word").reset_index()


def rating_distribution(frame: pd.DataFrame) -> pd.DataFrame:
    """Reviews per star rating and split (labelled reviews: 1–4 negative, 7–10 positive)."""
    lab = frame[frame["label"] >= 0]
    return lab.pivot_table(index="rating", columns="split", values="id", aggfunc="size", fill_value=0)


def sample_reviews(frame: pd.DataFrame, n_per_label: int = 1, seed: int = 0, width: int = 600) -> pd.DataFrame:
    """A seeded sample of labelled reviews per label, text cut to ``width`` characters."""
    lab = frame[frame["label"] >= 0]
    sample = lab.groupby("label", group_keys=False).sample(n=n_per_label, random_state=seed)
    out = sample[["split", "id", "rating", "label", "text"]].copy()
    out["label"] = out["label"].map(LABEL_NAMES)
    out["text"] = out["text"].str.slice(0, width) + np.where(out["text"].str.len() > width, " …", "")
    return out.reset_index(drop=True)
