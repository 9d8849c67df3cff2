"""Train / validation / test splits of the labelled reviews, seeded and stratified by label.

- ``standard``: the official 25k train / 25k test; validation carved from train (stratified).
  Exact duplicate texts inside train are dropped, and so are training texts that also occur in
  the test split (they would leak it); the official test split stays whole, so test numbers are
  comparable with the literature.
- ``random``: a widely shared tutorial notebook's 70/15/15 stratified split over the labelled reviews, deduplicated
  first (so no text can land in two subsets).

``make_splits`` returns the labelled reviews with a ``subset`` column (train/val/test) and a
``SplitReport`` of what was dropped and why; ``subsample`` shrinks each subset, stratified,
for the small profiles.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd
from sklearn.model_selection import train_test_split

from .data import DataError, labelled

SUBSETS = ("train", "val", "test")


@dataclass
class SplitReport:
    """Counts (reviews) behind a split: duplicates found and dropped, and the resulting sizes."""

    method: str
    labelled_reviews: int
    distinct_texts: int
    duplicates_within_train: int
    cross_split_duplicates: int
    dropped: int
    sizes: dict[str, int]

    def as_dict(self) -> dict:
        return asdict(self)


def _stratified_take(frame: pd.DataFrame, n: int | None, seed: int) -> pd.DataFrame:
    if n is None or n >= len(frame):
        return frame
    if n < 2:
        raise ValueError(f"Cannot take a stratified sample of {n} review(s); ask for at least 2.")
    taken, _ = train_test_split(frame, train_size=n, stratify=frame["label"], random_state=seed)
    return taken


def make_splits(reviews: pd.DataFrame, method: str = "standard", val_fraction: float = 0.1,
                seed: int = 42) -> tuple[pd.DataFrame, SplitReport]:
    """Assign each labelled review to ``train``/``val``/``test`` (column ``subset``).

    ``reviews`` is the table from ``data.load_reviews``. Returns (frame, report); the frame keeps
    the table's columns plus ``subset``, ordered train, val, test.
    """
    frame = labelled(reviews).reset_index(drop=True)
    n_labelled = len(frame)
    distinct = int(frame["text"].nunique())
    if method == "standard":
        if not {"train", "test"} <= set(frame["split"].unique()):
            raise DataError(
                "SPLIT='standard' needs the official train/test split, which this source lacks (the "
                "single-file CSV has none). Use SPLIT='random', or the official archive."
            )
        train = frame[frame["split"] == "train"]
        test = frame[frame["split"] == "test"]
        dup_train = int(train["text"].duplicated().sum())
        train = train[~train["text"].duplicated()]
        in_test = train["text"].isin(set(test["text"]))
        cross = int(in_test.sum())
        train = train[~in_test]
        train, val = train_test_split(train, test_size=val_fraction, stratify=train["label"],
                                      random_state=seed)
        dropped = dup_train + cross
    elif method == "random":
        dup_train = int(frame["text"].duplicated().sum())
        # Texts that occur in both official splits: counted for the report, merged by dedup.
        by_text = frame.groupby("text", sort=False)["split"].nunique()
        cross = int((by_text > 1).sum())
        frame = frame[~frame["text"].duplicated()]
        train, rest = train_test_split(frame, test_size=0.30, stratify=frame["label"], random_state=seed)
        val, test = train_test_split(rest, test_size=0.50, stratify=rest["label"], random_state=seed)
        dropped = dup_train
    else:
        raise ValueError(f"Unknown split method {method!r}; use 'standard' or 'random'.")

    parts = {"train": train, "val": val, "test": test}
    out = pd.concat([p.assign(subset=name) for name, p in parts.items()], ignore_index=True)
    out["subset"] = out["subset"].astype("string")
    report = SplitReport(method, n_labelled, distinct, dup_train, cross, dropped,
                         {k: len(v) for k, v in parts.items()})
    return out, report


def subsample(frame: pd.DataFrame, sizes: dict[str, int | None], seed: int = 42) -> pd.DataFrame:
    """Stratified sample of at most ``sizes[subset]`` reviews per subset (``None``: keep all)."""
    parts = []
    for i, name in enumerate(SUBSETS):
        part = frame[frame["subset"] == name]
        parts.append(_stratified_take(part, sizes.get(name), seed + i))
    return pd.concat(parts, ignore_index=True)


def class_balance(frame: pd.DataFrame) -> pd.DataFrame:
    """Reviews per subset and label, with the positive share: one row per subset."""
    table = frame.groupby("subset", sort=False)["label"].agg(reviews="size", positive="sum")
    table["negative"] = table["reviews"] - table["positive"]
    table["positive_share"] = (table["positive"] / table["reviews"]).round(4)
    return table.reindex([s for s in SUBSETS if s in table.index])

