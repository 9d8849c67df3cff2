"""Batches for training: encoded splits, dynamic padding and length-bucketed sampling.

Padding every review to ``MAX_LEN`` (a widely shared tutorial notebook: 400 tokens) wastes most of the compute on padding
(NLTK tokens per review: mean ≈ 240, median ≈ 180). Here each batch is padded only to its
longest review, and ``BucketBatchSampler`` groups reviews of similar length, so that little
padding is left. Truncation to ``max_len`` happens per batch, so one encoded split serves every
``max_len`` / truncation side (Optuna tunes both).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from .text import PAD, truncate


@dataclass
class EncodedSplit:
    """One subset, encoded: ``ids[i]`` is review i's token ids (int32, untruncated, length ≥ 1),
    ``labels`` (N,) int64 class indices (0/1 for sentiment), ``ratings`` (N,) stars or -1."""

    ids: list[np.ndarray]
    labels: np.ndarray
    ratings: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.ratings is None:
            self.ratings = np.full(len(self.ids), -1, dtype=np.int64)
        if not (len(self.ids) == len(self.labels) == len(self.ratings)):
            raise ValueError("ids, labels and ratings must have the same length.")
        self._lengths = np.fromiter((len(x) for x in self.ids), dtype=np.int64, count=len(self.ids))
        self._lengths.setflags(write=False)
        empty = np.flatnonzero(self._lengths == 0)
        if empty.size:
            raise ValueError(f"Reviews {empty[:5].tolist()} encode to no tokens; drop them before batching.")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def lengths(self) -> np.ndarray:
        """Untruncated token counts, shape (N,), read-only; counted once, when the split is made."""
        return self._lengths

    def with_labels(self, labels: np.ndarray) -> "EncodedSplit":
        """The same reviews with other targets (e.g. star-rating buckets)."""
        return EncodedSplit(self.ids, labels, self.ratings)

    def select(self, rows: Sequence[int] | np.ndarray) -> "EncodedSplit":
        rows = np.asarray(rows)
        return EncodedSplit([self.ids[i] for i in rows], self.labels[rows], self.ratings[rows])


@dataclass
class Batch:
    """``tokens`` (B, T) int64 padded with PAD to the batch's longest review; ``lengths`` (B,)
    int64 on the CPU (what ``pack_padded_sequence`` wants); ``labels`` (B,) float32 for binary or
    int64 class indices; ``index`` (B,) int64 row positions in the split (to undo bucketing)."""

    tokens: torch.Tensor
    lengths: torch.Tensor
    labels: torch.Tensor
    index: torch.Tensor

    def to(self, device: torch.device | str) -> "Batch":
        non_blocking = torch.device(device).type == "cuda"
        return Batch(self.tokens.to(device, non_blocking=non_blocking), self.lengths,
                     self.labels.to(device, non_blocking=non_blocking), self.index)

    def __len__(self) -> int:
        return len(self.index)


class Collate:
    """Turn a list of row positions into a ``Batch``: truncate, then pad to the longest."""

    def __init__(self, split: EncodedSplit, max_len: int, truncation: str = "head",
                 binary: bool = True, pad_to: int | None = None):
        self.split, self.max_len, self.truncation = split, max_len, truncation
        self.binary, self.pad_to = binary, pad_to

    def __call__(self, rows: list[int]) -> Batch:
        seqs = [truncate(self.split.ids[i], self.max_len, self.truncation) for i in rows]
        lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
        width = self.pad_to or int(lengths.max())
        tokens = np.full((len(seqs), width), PAD, dtype=np.int64)
        for r, s in enumerate(seqs):
            tokens[r, : len(s)] = s
        labels = self.split.labels[rows]
        return Batch(
            torch.from_numpy(tokens),
            torch.from_numpy(lengths),
            torch.from_numpy(labels.astype(np.float32 if self.binary else np.int64)),
            torch.as_tensor(rows, dtype=torch.int64),
        )


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar-length reviews, in a shuffled order.

    Rows are shuffled, cut into pools of ``pool_batches * batch_size``, each pool sorted by
    length and cut into batches, and the batches shuffled. Randomness comes from ``seed`` and the
    epoch counter, so a run is reproducible and each epoch differs. With ``shuffle=False`` the
    rows are sorted by length once (fast, deterministic evaluation).
    """

    def __init__(self, lengths: np.ndarray, batch_size: int, shuffle: bool = True, seed: int = 0,
                 pool_batches: int = 50):
        if batch_size <= 0:
            raise ValueError(f"BATCH_SIZE must be positive, got {batch_size}.")
        self.lengths = np.asarray(lengths)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.pool = batch_size * pool_batches
        self.epoch = 0

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        n, bs = len(self.lengths), self.batch_size
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable")
            yield from (order[i:i + bs].tolist() for i in range(0, n, bs))
            return
        rng = np.random.default_rng((self.seed, self.epoch))
        self.epoch += 1
        rows = rng.permutation(n)
        batches = []
        for start in range(0, n, self.pool):
            pool = rows[start:start + self.pool]
            pool = pool[np.argsort(self.lengths[pool], kind="stable")]
            batches.extend(pool[i:i + bs].tolist() for i in range(0, len(pool), bs))
        for b in rng.permutation(len(batches)):
            yield batches[b]


class _SeededRandomSampler(Sampler[list[int]]):
    """Plain shuffled batches (no bucketing), seeded per epoch like ``BucketBatchSampler``."""

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int):
        self.n, self.batch_size, self.shuffle, self.seed, self.epoch = n, batch_size, shuffle, seed, 0

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        rows = np.arange(self.n)
        if self.shuffle:
            rows = np.random.default_rng((self.seed, self.epoch)).permutation(self.n)
            self.epoch += 1
        yield from (rows[i:i + self.batch_size].tolist() for i in range(0, self.n, self.batch_size))


def make_loader(split: EncodedSplit, batch_size: int, max_len: int, truncation: str = "head",
                shuffle: bool = False, bucket: bool = True, seed: int = 0, binary: bool = True,
                pad_to_max_len: bool = False) -> DataLoader:
    """A DataLoader of ``Batch`` over ``split``.

    ``bucket`` groups similar lengths (the fast path); ``pad_to_max_len=True, bucket=False`` is
    the tutorial-style reference (every batch padded to ``max_len``): notebook 03's demonstration and the benchmark.
    Batches are built in the main process: collation is cheap, and on a 2-core machine worker
    processes would steal the cores the model trains on.
    """
    if max_len <= 0:
        raise ValueError(f"MAX_LEN must be positive, got {max_len}.")
    if bucket:
        sampler: Sampler = BucketBatchSampler(split.lengths, batch_size, shuffle=shuffle, seed=seed)
    else:
        sampler = _SeededRandomSampler(len(split), batch_size, shuffle, seed)
    collate = Collate(split, max_len, truncation, binary, pad_to=max_len if pad_to_max_len else None)
    return DataLoader(range(len(split)), batch_sampler=sampler, collate_fn=collate, num_workers=0)
