"""Hidden checks of notebook 02 (preparing the reviews)."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch

from sentiment_lib import text
from sentiment_lib.batching import Collate, EncodedSplit

from ._common import Failed, _call, _own, _require


VOCAB_TOKENS = [
    ["good", "film", "good", "plot"], ["bad", "film", "dull"], ["film", "plot", "zany", "acting"],
    ["leak", "leak", "leak", "leak"], ["good", "acting"], ["acting", "bad", "spoiler", "spoiler"],
]
VOCAB_SUBSETS = ["train", "train", "train", "test", "train", "val"]


def check_build_vocab(fn: Callable[..., list]) -> None:
    _own(fn, "build_vocab")
    train_tokens = [t for t, s in zip(VOCAB_TOKENS, VOCAB_SUBSETS) if s == "train"]
    unseen = {w for t in VOCAB_TOKENS for w in t} - {w for t in train_tokens for w in t}  # "leak", "spoiler"
    for max_size, min_freq in [(None, 1), (None, 2), (5, 1), (3, 1)]:
        got = _call(fn, "build_vocab", [list(t) for t in VOCAB_TOKENS], list(VOCAB_SUBSETS), max_size, min_freq)
        expected = text.Vocab.build(train_tokens, max_size=max_size, min_freq=min_freq).itos
        _require(isinstance(got, (list, tuple)), f"build_vocab must return a list of tokens, got {type(got).__name__}.")
        got = list(got)
        _require(got[:2] == [text.PAD_TOKEN, text.UNK_TOKEN],
                 f"The vocabulary must start with {text.PAD_TOKEN!r} (id 0) and {text.UNK_TOKEN!r} (id 1).")
        _require(not unseen & set(got),
                 "The vocabulary holds a word that occurs only in validation or test reviews: count training reviews only.")
        _require(len(got) <= (max_size or len(got)), "The vocabulary is longer than max_size (PAD and UNK count).")
        _require(got == expected, f"With max_size={max_size}, min_freq={min_freq} the tokens or their order differ: most "
                                  "frequent first, ties in alphabetical order, at least min_freq occurrences.")


def check_truncate(fn: Callable[..., Any]) -> None:
    _own(fn, "truncate")
    for n in range(0, 14):
        ids = np.arange(1, n + 1, dtype=np.int32)
        for max_len in (1, 2, 4, 7, 8):
            for side in ("head", "tail", "head+tail"):
                got = _call(fn, "truncate", ids.copy(), max_len, side)
                expected = text.truncate(ids, max_len, side)
                if not np.array_equal(np.asarray(got), expected):
                    _require(n > max_len, f"truncate must return a review that fits (no longer than max_len) whole, "
                                          f"whatever the side: side={side!r} changed a review of {n} tokens.")
                    raise Failed(f"truncate(..., max_len={max_len}, side={side!r}) keeps the wrong tokens for a "
                                 f"review of {n} tokens.")


def check_pad_batch(fn: Callable[[Sequence[Sequence[int]]], tuple]) -> None:
    _own(fn, "pad_batch")
    cases = [[[5, 6, 7], [8], [9, 10]], [[3, 4]], [[2] * 4, [7, 7, 7, 7, 7, 7], [11]]]
    for seqs in cases:
        split = EncodedSplit([np.asarray(s, dtype=np.int32) for s in seqs], np.zeros(len(seqs)))
        expected = Collate(split, max_len=10_000)(list(range(len(seqs))))
        got = _call(fn, "pad_batch", [list(s) for s in seqs])
        _require(isinstance(got, tuple) and len(got) == 2, "pad_batch must return (tokens, lengths).")
        tokens, lengths = got
        _require(isinstance(tokens, torch.Tensor) and tokens.dtype == torch.long,
                 "tokens must be a torch.long tensor (embedding layers want integer ids).")
        _require(isinstance(lengths, torch.Tensor) and lengths.dtype == torch.long, "lengths must be a torch.long tensor.")
        _require(torch.equal(lengths, expected.lengths), "lengths must hold each review's number of real tokens.")
        time_first = tokens.dim() == 2 and not torch.equal(tokens, expected.tokens) and \
            torch.equal(tokens.t(), expected.tokens)
        _require(not time_first, "tokens are (longest review, batch), time first: put the batch first "
                                 "(pad_sequence(..., batch_first=True), or one row per review).")
        _require(tuple(tokens.shape) == tuple(expected.tokens.shape),
                 "tokens must be (batch, longest review) : pad to the longest review of the batch, no more.")
        _require(torch.equal(tokens, expected.tokens),
                 f"tokens differ: each review first, then PAD={text.PAD} up to the longest review.")

