"""Training-speed benchmark: the seed-style loop against this project's loop, side by side in one run.

    python -m sentiment_lib bench [--profile quick] [--batches 40 | --epoch] [--hidden 256] [--embed 128]
                                  [--max-len 400] [--batch-size 64] [--eval-size 1000] [--eval-split val|test]
                                  [--threads N]
                                  [--extra packed|dynamic|naive-dense|bf16|fp32|project@128|seed+keep-memory|
                                           project-glibc ...]
    make bench

It trains the same model (the final architecture of a widely shared tutorial notebook: BiLSTM + masked
mean/max pooling; same initial weights) on the same reviews with the same optimiser (AdamW, gradient clipping 1.0) and the same loop
(:func:`sentiment_lib.train.train_one_epoch`) in several *ways*, one row of the table each:

- ``seed-style``: that tutorial's loop, the reference: random batches of 64, every batch padded to
  ``--max-len``, the BiLSTM run over the whole padded tensor without packing
  (:class:`benchmarks.seed_style.PaddedBiLSTMPool`), glibc's allocator as it behaves by default
  (:func:`sentiment_lib.runtime.memory.keep_freed_memory` ``(False)``).
- ``project``: this project's defaults, what the notebooks get from :func:`sentiment_lib.train.fit`,
  bfloat16 autocast included where the CPU has native bf16 (:func:`sentiment_lib.config.choose_precision`;
  ``project fp32`` is then the same loop in float32, to show that share of the gain):
  length-bucketed batches padded to their longest review; ``recurrence="dense"`` (one fused kernel call
  per direction; the backward direction reads each review reversed within its own length, so no padding
  enters a real step's state); freed memory kept for the next step (``keep_freed_memory(True)``).
- extras on request (``--extra``): ``packed`` (bucketed, ``pack_padded_sequence``), ``dynamic``
  (per-batch padding without bucketing), ``naive-dense`` (bucketed, recurrence over the padded tensor
  as is: the backward direction starts on padding, so it is *not* correct; it shows what the reversal
  costs), ``bf16`` (project + bfloat16 autocast; on a CPU without native bf16 the recurrence itself
  stays float32, see :mod:`sentiment_lib.models`), ``project@N`` (project with batch size N),
  ``seed+keep-memory`` and ``project-glibc`` (the allocator setting alone, either way round).

The ways take turns, a few batches each (``--chunk``), so that a change in the machine's load hits all of
them alike; the allocator setting is switched at each turn. Data are a profile's prepared run directory
(notebook 02), so tokenisation is not in the loop; building batches is, and its share is ``load %``.

Columns:

- ``real tok/s``: real (non-PAD) tokens trained per second, batch building included.
- ``padded tok/s``: tokens the model processed (B × T per batch), padding included.
- ``pad %``: share of processed tokens that are padding.
- ``s/epoch``: seconds for one epoch over the profile's whole training split: measured with ``--epoch``;
  otherwise that epoch's padded tokens (exact, from the batch sampler) / padded tok/s.
- ``load %``: share of the loop's time spent building batches.
- ``peak MiB``: peak resident memory of a fresh process (multiprocessing *spawn*) that builds the model
  and trains two steps on this way's largest batch of the epoch (``VmHWM`` on Linux; elsewhere
  ``ru_maxrss``, which after fork + exec may still count the parent's size). It includes Python, torch
  and the batch, so compare rows rather than read it as the model's footprint.
- ``train MiB``: that peak minus the same process's resident memory just before its first training step:
  what training adds (activations kept for backward, gradients, optimiser state, allocator caches).
  ``tracemalloc`` would not see torch's CPU allocations, hence a process per way.
- ``GFLOP/s``: useful FLOP rate, real tokens/s × training FLOPs per token (below); padding is waste.
- ``% fp32 roof`` / ``% bf16 roof``: that rate as a share of the float32 and the bfloat16 roof, a 2048×2048
  matrix product timed in this run (best of several, same thread count; float32 before and after the timed
  loop, the higher used).
- ``val acc``: accuracy on ``--eval-size`` validation reviews after the fixed budget (every way makes one
  pass over the same training reviews).

Training FLOPs per real token, for each LSTM layer and direction::

    3 × 2 × 4H × (I + H)

four gates of width H, each a matrix-vector product with the layer's input (width I: the embedding E for
layer 1) and the previous state (H), 2 FLOPs per multiply-add; backward ≈ 2 × forward, so training ≈ 3 ×
forward. Gate nonlinearities, embedding, pooling and output layer are left out (< 1 %). BiLSTM, H = 256,
E = 128: 2 directions × 3 × 2 × 1024 × 384 = 4.72 MFLOP per token.

The last line is ``speedup: X.XX``: seed-style s/epoch / project s/epoch.
"""
from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import re
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import torch

from sentiment_lib.batching import Batch, EncodedSplit, make_loader
from sentiment_lib.config import choose_precision
from sentiment_lib.runtime.memory import FreedMemoryCap, keep_freed_memory
from sentiment_lib.models import BiLSTMPool
from sentiment_lib.train import evaluate, train_one_epoch
from sentiment_lib.uncertainty import mcnemar, predictions_correct

try:
    from .seed_style import PaddedBiLSTMPool
except ImportError:  # run as a script: python benchmarks/bench.py
    from seed_style import PaddedBiLSTMPool

SEED_STYLE, PROJECT, PROJECT_FP32 = "seed-style", "project", "project fp32"
EXTRAS = ("packed", "dynamic", "naive-dense", "bf16", "fp32", "project@N", "seed+keep-memory", "project-glibc")
COLUMNS = ["way", "batch", "amp", "real tok/s", "padded tok/s", "pad %", "s/epoch", "load %", "peak MiB",
           "train MiB", "GFLOP/s", "% fp32 roof", "% bf16 roof", "val acc"]
SEED_BATCH_SIZE = 64


@dataclass(frozen=True)
class Way:
    """One way of training: how batches are made and how the recurrence meets the padding."""

    name: str
    bucket: bool
    pad_to_max_len: bool
    recurrence: str
    batch_size: int
    amp_dtype: str | None = None
    keep_freed_memory: bool = True  # train.keep_freed_memory(...) during its turns


def make_ways(extras: list[str] | tuple[str, ...] = (), batch_size: int = 64) -> list[Way]:
    """``seed-style`` and ``project`` (the notebooks' defaults, bfloat16 autocast where the CPU has it natively)
    first, then ``project fp32`` when ``project`` took bfloat16, then the requested extras (:data:`EXTRAS`)."""
    seed_style = Way(SEED_STYLE, bucket=False, pad_to_max_len=True, recurrence="padded",
                     batch_size=SEED_BATCH_SIZE, keep_freed_memory=False)
    project = Way(PROJECT, bucket=True, pad_to_max_len=False, recurrence="dense", batch_size=batch_size,
                  amp_dtype=choose_precision("auto"))
    ways = [seed_style, project]
    if project.amp_dtype is not None:  # the fast path took bfloat16: show its share of the gain
        ways.append(replace(project, name=PROJECT_FP32, amp_dtype=None))
    for extra in extras:
        if extra == "seed+keep-memory":
            ways.append(replace(seed_style, name=extra, keep_freed_memory=True))
        elif extra == "project-glibc":
            ways.append(replace(project, name=extra, keep_freed_memory=False))
        elif extra == "fp32":
            if project.amp_dtype is not None:
                continue  # already there
            ways.append(replace(project, name=PROJECT_FP32, amp_dtype=None))
        elif extra == "packed":
            ways.append(Way("packed", True, False, "packed", batch_size))
        elif extra == "dynamic":
            ways.append(Way("dynamic", False, False, "dense", batch_size))
        elif extra == "naive-dense":
            ways.append(Way("naive-dense", True, False, "padded", batch_size))
        elif extra == "bf16":
            ways.append(Way("bf16", True, False, "dense", batch_size, amp_dtype="bfloat16"))
        elif re.fullmatch(r"project@\d+", extra) and int(extra.split("@")[1]) > 0:
            ways.append(Way(extra, True, False, "dense", int(extra.split("@")[1])))
        else:
            raise ValueError(f"Unknown --extra {extra!r}; choose from {', '.join(EXTRAS)} (e.g. project@128).")
    return ways


@dataclass
class BenchOptions:
    """What :func:`run_benchmark` does; the command line's options (see ``--help``)."""

    batches: int | None = 40
    hidden: int = 256
    embed: int = 128
    max_len: int = 400
    batch_size: int = 64
    eval_size: int = 1000
    threads: int | None = None
    extras: list[str] = field(default_factory=list)
    lr: float = 2e-3
    dropout: float = 0.4
    truncation: str = "head"
    chunk: int = 4
    memory: bool = True
    roof_size: int = 2048
    seed: int = 0
    eval_name: str = "validation"  # which split ``val`` is (the accuracy check's reviews)

    def __post_init__(self) -> None:
        if self.batches is not None and self.batches < 1:
            raise ValueError(f"--batches must be at least 1 (or use --epoch), got {self.batches}.")
        for name in ("hidden", "embed", "max_len", "batch_size", "chunk", "roof_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}.")
        if self.eval_size < 0:
            raise ValueError(f"--eval-size must be >= 0 (0 skips the accuracy check), got {self.eval_size}.")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"--threads must be at least 1, got {self.threads}.")


@dataclass
class BenchResult:
    """The table (columns :data:`COLUMNS`, one row per way), the roof and the notes printed around it."""

    table: pd.DataFrame
    roof_gflops: float
    speedup: float
    header: list[str]
    notes: list[str]

    def report(self) -> str:
        """Header, table, notes; the last line is ``speedup: X.XX``."""
        return "\n".join([*self.header, "", format_table(self.table), "", *self.notes,
                          f"speedup: {self.speedup:.2f}"])


# --------------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------------


def lstm_train_flops_per_token(embed: int, hidden: int, num_layers: int = 1, bidirectional: bool = True) -> float:
    """Training FLOPs per real token: Σ over layers and directions of ``3 × 2 × 4H × (I + H)``."""
    dirs = 2 if bidirectional else 1
    total = 0.0
    for layer in range(num_layers):
        width_in = embed if layer == 0 else hidden * dirs
        total += dirs * 3 * 2 * 4 * hidden * (width_in + hidden)
    return total


def matmul_gflops(size: int = 2048, dtype: torch.dtype = torch.float32, repeats: int = 5,
                  budget_s: float = 10.0) -> float:
    """Best GFLOP/s of a ``size × size`` matrix product (2·n³ FLOPs) over ``repeats`` timed runs,
    stopping early once ``budget_s`` seconds are spent (slow dtypes)."""
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    best, spent = math.inf, 0.0
    a @ b  # warm-up: thread pool, page faults
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        elapsed = time.perf_counter() - start
        best, spent = min(best, elapsed), spent + elapsed
        if spent > budget_s:
            break
    return 2 * size ** 3 / best / 1e9


class _CpuMeter:
    """CPU time used by *other* processes while we run (Linux ``/proc/stat``); ``None`` elsewhere."""

    def __init__(self) -> None:
        self.start = self._read()

    @staticmethod
    def _read() -> tuple[float, float, float] | None:
        try:
            with open("/proc/stat") as f:
                values = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        busy = (sum(values) - values[3] - (values[4] if len(values) > 4 else 0)) / ticks
        own = os.times()
        return busy, own.user + own.system, time.perf_counter()

    def foreign_cores(self) -> float | None:
        end = self._read()
        if self.start is None or end is None or end[2] <= self.start[2]:
            return None
        return max(0.0, (end[0] - self.start[0] - (end[1] - self.start[1])) / (end[2] - self.start[2]))


class _TimedBatches:
    """Wraps an iterator of ``Batch``: time spent producing batches, real and padded token counts."""

    def __init__(self, batches: Iterator[Batch]):
        self.batches, self.seconds, self.real, self.padded, self.count = batches, 0.0, 0, 0, 0

    def __iter__(self) -> "_TimedBatches":
        return self

    def __next__(self) -> Batch:
        start = time.perf_counter()
        batch = next(self.batches)
        self.seconds += time.perf_counter() - start
        self.real += int(batch.lengths.sum())
        self.padded += batch.tokens.numel()
        self.count += 1
        return batch


def _loader(split: EncodedSplit, way: Way, options: BenchOptions, shuffle: bool, batch_size: int | None = None):
    return make_loader(split, batch_size or way.batch_size, options.max_len, options.truncation,
                       shuffle=shuffle, bucket=way.bucket, seed=options.seed, pad_to_max_len=way.pad_to_max_len)


def _model(way: Way, vocab_size: int, options: BenchOptions) -> BiLSTMPool:
    """The benchmarked BiLSTM + pooling; ``recurrence="padded"``: the seed-style one that reads the padding."""
    kind = PaddedBiLSTMPool if way.recurrence == "padded" else BiLSTMPool
    return kind(vocab_size, embed_dim=options.embed, hidden_size=options.hidden, dropout=options.dropout,
                recurrence="dense" if way.recurrence == "padded" else way.recurrence)


def epoch_tokens(split: EncodedSplit, way: Way, options: BenchOptions) -> tuple[int, int, list[int]]:
    """(real tokens, padded tokens, rows of the batch with the most padded tokens) of one epoch of
    ``way`` over ``split``, from its batch sampler (no batch is built)."""
    lengths = np.minimum(split.lengths, options.max_len)
    real = padded = 0
    largest: tuple[int, list[int]] = (-1, [])
    for rows in _loader(split, way, options, shuffle=True).batch_sampler:
        width = options.max_len if way.pad_to_max_len else int(lengths[rows].max())
        size = len(rows) * width
        real, padded = real + int(lengths[rows].sum()), padded + size
        if size > largest[0]:
            largest = (size, list(rows))
    return real, padded, largest[1]


class _Trainer:
    """One way's model, optimiser and pass over the training reviews, advanced a few batches at a time."""

    def __init__(self, way: Way, train: EncodedSplit, warmup: EncodedSplit, vocab_size: int,
                 options: BenchOptions, init_state: dict[str, torch.Tensor]):
        self.way = way
        self.model = _model(way, vocab_size, options)
        self.model.load_state_dict(init_state)
        # Warm-up step (thread pools, kernel set-up, allocator) on other reviews, then back to the start.
        warm = torch.optim.AdamW(self.model.parameters(), lr=options.lr)
        train_one_epoch(self.model, islice(iter(_loader(warmup, way, options, shuffle=True)), 1), warm, None,
                        grad_clip=1.0, progress=False, amp_dtype=way.amp_dtype)
        self.model.load_state_dict(init_state)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=options.lr)
        loader = _loader(train, way, options, shuffle=True)
        self.remaining = len(loader)
        self.batches = _TimedBatches(iter(loader))
        self.seconds = 0.0
        self.memory_cap = FreedMemoryCap() if way.keep_freed_memory else None  # as fit() does

    def step(self, n: int) -> None:
        n = min(n, self.remaining)
        if n <= 0:
            return
        keep_freed_memory(self.way.keep_freed_memory)
        start = time.perf_counter()
        train_one_epoch(self.model, islice(self.batches, n), self.optimizer, None, grad_clip=1.0,
                        progress=False, amp_dtype=self.way.amp_dtype, desc=self.way.name,
                        after_step=self.memory_cap)
        self.seconds += time.perf_counter() - start
        self.remaining -= n


def _status_mib(field: str) -> float | None:
    """A memory line of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in MiB; ``None`` off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _reset_peak_rss() -> None:
    """Start ``VmHWM`` afresh from the current RSS (Linux >= 4.0); silently nothing elsewhere."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _peak_rss_mib() -> float:
    """This process's peak RSS: ``VmHWM`` on Linux (its own address space only), else ``ru_maxrss``
    (which, after fork + exec, can still hold the parent's size at the fork)."""
    peak = _status_mib("VmHWM")
    if peak is not None:
        return peak
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value / 2 ** 20 if sys.platform == "darwin" else value / 1024  # bytes on macOS, KiB on Linux


def train_peak_memory(way: Way, split: EncodedSplit, vocab_size: int, options: BenchOptions) -> dict[str, float]:
    """Peak RSS (MiB) of this process after two training steps on ``split`` as one batch, and that peak
    minus the RSS just before the first step. Meant to run in a fresh process (:func:`_memory_in_child`)."""
    if options.threads:
        torch.set_num_threads(options.threads)
    keep_freed_memory(way.keep_freed_memory)
    torch.manual_seed(options.seed)
    model = _model(way, vocab_size, options)
    optimizer = torch.optim.AdamW(model.parameters(), lr=options.lr)
    loader = _loader(split, way, options, shuffle=False, batch_size=len(split))
    _reset_peak_rss()
    before = _status_mib("VmRSS")
    for _ in range(2):  # the second step also holds the optimiser's moments
        train_one_epoch(model, loader, optimizer, None, grad_clip=1.0, progress=False, amp_dtype=way.amp_dtype)
    peak = _peak_rss_mib()
    # RSS counters are updated in batches of pages, so a step that adds nothing may read slightly negative.
    return {"peak MiB": peak, "train MiB": max(0.0, peak - before) if before is not None else math.nan}


def _memory_in_child(way: Way, split: EncodedSplit, vocab_size: int, options: BenchOptions) -> dict[str, float]:
    """:func:`train_peak_memory` in a fresh spawned process, so that each way's peak is its own."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(train_peak_memory, way, split, vocab_size, options).result()


# --------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------


def _sample(split: EncodedSplit, size: int | None, seed: int) -> EncodedSplit:
    if size is None or size >= len(split):
        return split
    return split.select(np.sort(np.random.default_rng(seed).permutation(len(split))[:size]))


def _interleave(trainers: Sequence["_Trainer"], chunk: int, log: Callable[[str], None]) -> None:
    """Train every way ``chunk`` batches at a time, in turns, until each has seen its reviews."""
    turn = 0
    while any(t.remaining for t in trainers):
        for trainer in trainers:
            trainer.step(chunk)
        turn += 1
        if turn % 5 == 0:
            log("  " + ", ".join(f"{t.way.name}: {t.batches.count} batches" for t in trainers))


def _row(trainer: "_Trainer", train: EncodedSplit, eval_split: EncodedSplit | None, options: BenchOptions,
         flops: float, roof: float, bf16_roof: float, log: Callable[[str], None]) -> tuple[dict, np.ndarray | None]:
    """One way's line of the table (throughput, epoch time, share of the roofs, accuracy check) and its
    probabilities on the accuracy check's reviews (``None`` without one)."""
    way, seen = trainer.way, trainer.batches
    real_rate, padded_rate = seen.real / trainer.seconds, seen.padded / trainer.seconds
    if options.batches is None:
        seconds_per_epoch = trainer.seconds
    else:
        _, epoch_padded, _ = epoch_tokens(train, way, options)
        seconds_per_epoch = epoch_padded / padded_rate
    accuracy, prob = math.nan, None
    if eval_split is not None:
        log(f"evaluating {way.name} on {len(eval_split)} {options.eval_name} reviews …")
        eval_loader = _loader(eval_split, way, options, shuffle=False,
                              batch_size=way.batch_size if way.pad_to_max_len else 4 * way.batch_size)
        scored = evaluate(trainer.model, eval_loader, amp_dtype=way.amp_dtype)
        accuracy, prob = scored["accuracy"], scored["prob"]
    return ({"way": way.name, "batch": way.batch_size, "amp": way.amp_dtype or "-", "real tok/s": real_rate,
             "padded tok/s": padded_rate, "pad %": 100 * (1 - seen.real / seen.padded),
             "s/epoch": seconds_per_epoch, "load %": 100 * seen.seconds / trainer.seconds,
             "peak MiB": math.nan, "train MiB": math.nan, "GFLOP/s": real_rate * flops / 1e9,
             "% fp32 roof": 100 * real_rate * flops / 1e9 / roof,
             "% bf16 roof": 100 * real_rate * flops / 1e9 / bf16_roof, "val acc": accuracy}, prob)


def _header(train: EncodedSplit, subset: EncodedSplit, ways: Sequence[Way], options: BenchOptions, flops: float,
            roofs: tuple[float, float, float]) -> list[str]:
    """What was measured on what: torch and the CPU, the roofs, the model, the data."""
    roof_before, roof_after, bf16_roof = roofs
    lengths = np.minimum(train.lengths, options.max_len)
    return [
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}; project precision: "
        f"{'bfloat16 autocast' if ways[1].amp_dtype else 'float32'} (auto)",
        f"fp32 roof ({options.roof_size}² matmul): {roof_before:.0f} GFLOP/s before, {roof_after:.0f} after; "
        f"bf16 roof ({options.roof_size}² matmul): {bf16_roof:.0f} GFLOP/s",
        f"model: BiLSTM + masked mean/max pool, embed {options.embed}, hidden {options.hidden}, "
        f"{flops / 1e6:.2f} MFLOP per real token (training); AdamW lr {options.lr}, dropout {options.dropout}",
        f"data: {len(train)} training reviews, {lengths.mean():.0f} real tokens per review on average at "
        f"max_len {options.max_len} ({options.truncation} truncation); timed: "
        + ("one epoch" if options.batches is None else
           f"{len(subset)} reviews ({options.batches} batches of {SEED_BATCH_SIZE}), one pass per way"),
    ]


def _notes(table: pd.DataFrame, subset: EncodedSplit, eval_split: EncodedSplit | None, probs: dict,
           options: BenchOptions, foreign: float | None, roof: float, bf16_roof: float) -> list[str]:
    """What to read the table with: the accuracy check, the machine's other load, bf16 against fp32."""
    notes = []
    if eval_split is not None:
        acc = table["val acc"]
        notes.append(f"val acc: after one pass over the same {len(subset)} training reviews, on "
                     f"{len(eval_split)} {options.eval_name} reviews; project − seed-style = "
                     f"{100 * (acc.iloc[1] - acc.iloc[0]):+.1f} points")
    if foreign is not None:
        notes.append(f"other processes used {foreign:.1f} of {os.cpu_count()} CPUs during the timed loop"
                     + (" — not a clean measurement: rerun on an idle machine (or with --threads 1)"
                        if foreign > 0.25 else ""))
    if PROJECT in probs and PROJECT_FP32 in probs:
        correct = {name: predictions_correct(eval_split.labels, probs[name]) for name in (PROJECT, PROJECT_FP32)}
        test = mcnemar(correct[PROJECT], correct[PROJECT_FP32])
        agree = "agree within it" if test.low <= 0 <= test.high else "differ"
        notes.append(f"bf16 vs fp32 (the same loop, same start): {100 * test.difference:+.2f} points on "
                     f"{test.n} reviews, paired 95% interval [{100 * test.low:+.2f}, {100 * test.high:+.2f}] "
                     f"(McNemar p = {test.p_value:.2f}): they {agree}")
    if bf16_roof < roof / 4:
        notes.append("bf16: no native bfloat16 matrix kernels on this CPU (no AVX512-BF16/AMX); bfloat16 "
                     "autocast would be far slower than float32 here")
    return notes


def run_benchmark(train: EncodedSplit, val: EncodedSplit, vocab_size: int, options: BenchOptions | None = None,
                  log: Callable[[str], None] | None = None) -> BenchResult:
    """Train every way of :func:`make_ways` on the same reviews, interleaved, and measure it.

    ``train`` is the training split (its epoch is what ``s/epoch`` refers to); ``--batches N`` trains
    on N × 64 of its reviews (a fixed sample), ``options.batches=None`` on all of it. ``val`` gives the
    warm-up batches and the ``--eval-size`` reviews of the accuracy check. ``log`` gets progress lines.
    """
    options = options or BenchOptions()
    log = log or (lambda line: None)
    if options.threads:
        torch.set_num_threads(options.threads)
    ways = make_ways(options.extras, options.batch_size)
    budget = None if options.batches is None else options.batches * SEED_BATCH_SIZE
    subset = _sample(train, budget, options.seed)
    eval_split = _sample(val, options.eval_size, options.seed + 1) if options.eval_size else None
    flops = lstm_train_flops_per_token(options.embed, options.hidden)

    log(f"roof: timing a {options.roof_size}×{options.roof_size} float32 matrix product …")
    roof_before = matmul_gflops(options.roof_size)
    torch.manual_seed(options.seed)
    init_state = {k: v.clone() for k, v in _model(ways[0], vocab_size, options).state_dict().items()}
    log(f"warming up {len(ways)} ways …")
    trainers = [_Trainer(way, subset, val, vocab_size, options, init_state) for way in ways]
    log(f"training {len(subset)} reviews per way, {options.chunk} batches per turn …")
    meter = _CpuMeter()
    _interleave(trainers, options.chunk, log)
    foreign = meter.foreign_cores()
    roof_after = matmul_gflops(options.roof_size)
    roof = max(roof_before, roof_after)
    bf16_roof = matmul_gflops(options.roof_size, torch.bfloat16, repeats=3, budget_s=5.0)

    rows, probs = [], {}
    for trainer in trainers:
        row, prob = _row(trainer, train, eval_split, options, flops, roof, bf16_roof, log)
        rows.append(row)
        if prob is not None:
            probs[trainer.way.name] = prob
    if options.memory:
        for row, way in zip(rows, ways):
            log(f"peak memory of {way.name} (fresh process) …")
            _, _, largest = epoch_tokens(train, way, options)
            row.update(_memory_in_child(way, train.select(largest), vocab_size, options))
    table = pd.DataFrame(rows, columns=COLUMNS)
    speedup = float(table["s/epoch"].iloc[0] / table["s/epoch"].iloc[1])
    header = _header(train, subset, ways, options, flops, (roof_before, roof_after, bf16_roof))
    return BenchResult(table, roof, speedup, header,
                       _notes(table, subset, eval_split, probs, options, foreign, roof, bf16_roof))


def format_table(table: pd.DataFrame) -> str:
    """The table as aligned text (integers for rates, one decimal for shares and MiB)."""
    formats = {"real tok/s": "{:.0f}", "padded tok/s": "{:.0f}", "pad %": "{:.1f}", "s/epoch": "{:.1f}",
               "load %": "{:.1f}", "peak MiB": "{:.0f}", "train MiB": "{:.0f}", "GFLOP/s": "{:.1f}",
               "% fp32 roof": "{:.1f}", "% bf16 roof": "{:.1f}", "val acc": "{:.4f}"}
    shown = table.copy()
    for column, fmt in formats.items():
        shown[column] = [("-" if isinstance(v, float) and math.isnan(v) else fmt.format(v)) for v in table[column]]
    return shown.to_string(index=False)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sentiment_lib bench",
                                     description="Training speed: seed-style loop vs this project's loop.")
    parser.add_argument("--profile", default="quick", help="run directory with prepared data (default quick)")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--batches", type=int, default=40,
                        help="train each way on this many batches of 64 reviews (default 40)")
    budget.add_argument("--epoch", action="store_true", help="train each way one whole epoch instead")
    parser.add_argument("--hidden", type=int, default=256, help="LSTM hidden size per direction (256)")
    parser.add_argument("--embed", type=int, default=128, help="embedding width (128)")
    parser.add_argument("--max-len", type=int, default=400, help="truncate/pad reviews to this (400)")
    parser.add_argument("--batch-size", type=int, default=64, help="the project way's batch size (64)")
    parser.add_argument("--eval-size", type=int, default=1000,
                        help="validation reviews for the accuracy check (1000; 0 skips it)")
    parser.add_argument("--eval-split", choices=("val", "test"), default="val",
                        help="reviews of the accuracy check: validation (default) or test (more reviews: a benchmark "
                             "chooses nothing, so reading test here is harmless)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--extra", action="append", default=[], metavar="WAY",
                        help=f"also measure: {', '.join(EXTRAS)}; repeatable")
    parser.add_argument("--lr", type=float, default=2e-3, help="AdamW learning rate (2e-3)")
    parser.add_argument("--dropout", type=float, default=0.4, help="dropout before the output layer (0.4)")
    parser.add_argument("--chunk", type=int, default=4, help="batches per way per turn (4)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    args = parser.parse_args(argv)

    from sentiment_lib.rundir import load_prepared  # pandas/parquet: only the command line needs them

    try:
        options = BenchOptions(batches=None if args.epoch else args.batches, hidden=args.hidden, embed=args.embed,
                               max_len=args.max_len, batch_size=args.batch_size, eval_size=args.eval_size,
                               threads=args.threads, extras=args.extra, lr=args.lr, dropout=args.dropout,
                               chunk=args.chunk, memory=not args.no_memory,
                               eval_name="validation" if args.eval_split == "val" else "test")
        make_ways(options.extras, options.batch_size)
        prepared = load_prepared(args.profile)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    result = run_benchmark(prepared.splits["train"], prepared.splits[args.eval_split], len(prepared.vocab), options,
                           log=lambda line: print(line, file=sys.stderr, flush=True))
    print(result.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
