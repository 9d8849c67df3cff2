"""Allocator tuning for CPU training: keep freed memory for the next step, within a bound.

A training step allocates and frees hundreds of MB of activations. By default glibc hands blocks over
32 MiB (``mmap``) and the free top of its heap back to the kernel at once, so every step faults the same
memory in again, a page at a time; on a small CPU that kernel time is a large share of a recurrent
model's step (``make bench`` measures it: its ``project-glibc`` and ``seed+keep-memory`` rows switch this
setting alone). :func:`keep_freed_memory` makes big blocks come from the heap and keeps freed memory
there; :class:`FreedMemoryCap` bounds what is kept. :class:`KeepFreedMemory` is the
callback that brings them into :func:`sentiment_lib.train.fit`.

Process-wide, glibc/Linux only; a no-op elsewhere.
"""
from __future__ import annotations

import ctypes
import functools
import os
import platform
import sys
from typing import Callable

import torch

from ..train import Callback, FitState

# What fit() lets kept freed memory grow by before handing it back (FreedMemoryCap); see TrainConfig.
FREED_MEMORY_LIMIT_MIB = 2048
# What inference lets freed memory grow by before handing it back (inference_hook).
INFERENCE_FREED_MEMORY_MIB = 256
# How many processes train side by side on this machine and share that budget (share_freed_memory).
_SHARING_PROCESSES = 1

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
_GLIBC_MMAP_MAX_DEFAULT = 65536


@functools.lru_cache(maxsize=None)
def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt, libc.malloc_trim  # noqa: B018 (both must exist)
        return libc
    except (OSError, AttributeError):
        return None


def keep_freed_memory(enable: bool = True) -> bool:
    """Let glibc's ``malloc`` keep freed memory for reuse (``enable=True``), or go back to the thresholds
    its defaults settle at in a training loop (``False``: mmap above 32 MiB, trim above 64 MiB, and return
    free memory now — what the benchmark's seed-style reference uses).

    Returns whether it was applied (glibc only; a no-op returning ``False`` elsewhere).
    """
    libc = _glibc()
    if libc is None:
        return False
    if enable:
        ok = libc.mallopt(_M_MMAP_MAX, 0) and libc.mallopt(_M_TRIM_THRESHOLD, 2 ** 31 - 1)
    else:
        ok = (libc.mallopt(_M_MMAP_MAX, _GLIBC_MMAP_MAX_DEFAULT) and libc.mallopt(_M_MMAP_THRESHOLD, 32 * 2 ** 20)
              and libc.mallopt(_M_TRIM_THRESHOLD, 64 * 2 ** 20))
        libc.malloc_trim(0)
    return bool(ok)


_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes() -> int | None:
    """This process's resident memory in bytes (``/proc/self/statm``); ``None`` where there is none."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return None


class FreedMemoryCap:
    """Bounds the memory that :func:`keep_freed_memory` keeps; call it after every training step.

    With freed memory kept, batches of varying shapes fragment glibc's heap: freed blocks sit between
    blocks still in use, a larger request does not fit in them, and the heap grows. When the resident
    size is more than ``limit_mib`` above its level after the last release, ``malloc_trim(0)`` hands the
    free pages back to the kernel; the next steps fault them in again, as with the defaults. The first
    call also releases what earlier trainings in the process kept, so the bound holds per training
    however many run in one process (Optuna trials). ``releases`` counts the ``malloc_trim`` calls.
    A no-op off glibc/Linux. (docs/measurements.md gives measured peaks.)
    """

    def __init__(self, limit_mib: int = FREED_MEMORY_LIMIT_MIB):
        self.limit = int(limit_mib) * 2 ** 20
        self.base: int | None = None
        self.releases = 0

    def __call__(self) -> None:
        rss = resident_bytes()
        libc = _glibc()
        if rss is None or libc is None:
            return
        if self.base is None or rss > self.base + self.limit:
            libc.malloc_trim(0)
            self.releases += 1
            self.base = resident_bytes() or rss


def share_freed_memory(processes: int) -> None:
    """Declare that ``processes`` processes (this one included) train side by side on this machine: each
    :func:`step_hook` made afterwards in this process keeps at most ``limit_mib / processes`` of freed memory,
    so that the machine keeps what one training would. :mod:`sentiment_lib.runtime.parallel` calls it in every worker
    (docs/measurements.md: what it saves on ``full``'s notebook 04)."""
    global _SHARING_PROCESSES
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise ValueError(f"processes must be a positive integer, got {processes!r}")
    _SHARING_PROCESSES = processes


def step_hook(device: torch.device, keep: bool = True, limit_mib: int = FREED_MEMORY_LIMIT_MIB
              ) -> Callable[[], None] | None:
    """What to call after each optimiser step on ``device``: on a CPU with ``keep``, switch
    :func:`keep_freed_memory` on and return a fresh :class:`FreedMemoryCap` of ``limit_mib`` (MiB) divided
    between the processes declared by :func:`share_freed_memory`; otherwise ``None``."""
    if device.type != "cpu" or not keep:
        return None
    keep_freed_memory(True)
    return FreedMemoryCap(limit_mib // _SHARING_PROCESSES)


def inference_hook(device: torch.device) -> Callable[[], None] | None:
    """What to call after each inference batch on ``device``: a :class:`FreedMemoryCap` of
    :data:`INFERENCE_FREED_MEMORY_MIB` on a CPU (``None`` elsewhere). Scoring a bucketed split sends batches of
    growing length, each a little larger than the blocks the last one freed, so the heap grows by what no
    batch needs any more, several GB on ``full``'s test reviews without this cap (docs/measurements.md)."""
    return FreedMemoryCap(INFERENCE_FREED_MEMORY_MIB) if device.type == "cpu" else None


class KeepFreedMemory(Callback):
    """:func:`~sentiment_lib.train.fit`'s allocator tuning on a CPU: keeps freed memory between training steps
    (bounded by a :class:`FreedMemoryCap` of ``limit_mib``, shared as :func:`share_freed_memory` says), caps
    what each validation pass keeps (:func:`inference_hook`), and goes back to glibc's defaults when ``fit``
    returns or raises, so that what runs next (test scoring, another cell) hands freed memory back at once."""

    def __init__(self, device: torch.device, limit_mib: int = FREED_MEMORY_LIMIT_MIB):
        self.device, self.limit_mib = torch.device(device), limit_mib
        self.step_cap: Callable[[], None] | None = None
        self.eval_cap: Callable[[], None] | None = None

    def on_fit_start(self, state: FitState) -> None:
        self.step_cap = step_hook(self.device, True, self.limit_mib)

    def after_step(self) -> None:
        if self.step_cap is not None:
            self.step_cap()
        self.eval_cap = None  # a fresh cap for the next validation pass

    def after_eval_batch(self) -> None:
        if self.eval_cap is None:
            self.eval_cap = inference_hook(self.device)
        if self.eval_cap is not None:
            self.eval_cap()

    def on_fit_end(self, state: FitState) -> None:
        if self.step_cap is not None:
            keep_freed_memory(False)
