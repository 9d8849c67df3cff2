"""Speed and resilience, plugged into the teachable core from the side.

The core (:mod:`~sentiment_lib.models`, :mod:`~sentiment_lib.train`, …) is plain PyTorch: a model packs its
batches, ``fit`` runs its loop. What makes a run fast or safe on a given machine joins from here:

- :mod:`.fused_rnn` — the recurrence as one fused kernel call per layer and direction (the same function as
  packing, tested equal in outputs and gradients), chosen per model by :meth:`Runtime.prepare`;
- :mod:`.memory` — glibc allocator tuning: freed memory kept between training steps, within a bound
  (a :class:`~sentiment_lib.train.Callback`);
- :mod:`.checkpoint` — per-epoch checkpoints: a killed training continues where it stopped (a callback);
- :mod:`.parallel` — independent trainings side by side in worker processes of one thread each;
- :mod:`.lock` — one writer per run directory.

bfloat16 autocast is a training setting (``TrainConfig.amp_dtype``, chosen per machine by
:func:`sentiment_lib.config.choose_precision`). :class:`Runtime` says which of the above a training uses;
``Runtime.plain()`` turns all of them off: the same model on the same machine, more slowly (a test shows it).
``SENTIMENT_RUNTIME=plain`` in the environment makes that the default of a whole run.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..train import Callback
from . import fused_rnn, memory
from .checkpoint import Checkpoint

ENVIRONMENT = "SENTIMENT_RUNTIME"


@dataclass(frozen=True)
class Runtime:
    """Which speed and resilience machinery a training uses (all on by default).

    Attributes:
        fused_recurrence: recurrent models run :func:`.fused_rnn.fused_recurrence` instead of packing.
        keep_freed_memory: on a CPU, keep freed memory between training steps (:class:`.memory.KeepFreedMemory`)
            and cap what inference keeps.
        checkpoints: keep a per-epoch checkpoint, so that a killed training resumes and a finished one is reused.
        workers: independent trainings run in worker processes (the ``PROCESSES`` parameter); off: one
            after another in the calling process.
    """

    fused_recurrence: bool = True
    keep_freed_memory: bool = True
    checkpoints: bool = True
    workers: bool = True

    @classmethod
    def plain(cls) -> "Runtime":
        """Everything off: the core alone."""
        return cls(fused_recurrence=False, keep_freed_memory=False, checkpoints=False, workers=False)

    @classmethod
    def from_environment(cls) -> "Runtime":
        """``Runtime.plain()`` when ``SENTIMENT_RUNTIME=plain``, else everything on."""
        value = os.environ.get(ENVIRONMENT, "").strip().lower()
        if value not in ("", "plain", "default"):
            raise ValueError(f"{ENVIRONMENT}={value!r}: use 'plain' (no fused recurrence, allocator tuning, "
                             "checkpoints or workers) or leave it unset.")
        return cls.plain() if value == "plain" else cls()

    def prepare(self, model: nn.Module) -> nn.Module:
        """``model`` set to run as fast as this runtime allows (the same function either way)."""
        return fused_rnn.use_fused_recurrence(model) if self.fused_recurrence else model

    def callbacks(self, device: torch.device, checkpoint: Path | None = None) -> list[Callback]:
        """The callbacks ``fit`` needs for this runtime: allocator tuning on a CPU, then the checkpoint (saved
        after each epoch before any callback the caller adds, e.g. pruning, can end the training)."""
        chosen: list[Callback] = []
        if self.keep_freed_memory and torch.device(device).type == "cpu":
            chosen.append(memory.KeepFreedMemory(torch.device(device)))
        if self.checkpoints and checkpoint is not None:
            chosen.append(Checkpoint(checkpoint))
        return chosen

    def inference_hook(self, device: torch.device | str) -> Callable[[], None] | None:
        """What to call after each inference batch (a memory cap on a CPU), or ``None``."""
        return memory.inference_hook(torch.device(device)) if self.keep_freed_memory else None

    def processes(self, processes: int) -> int:
        """The worker processes to use for ``processes`` requested (1 — none — without workers)."""
        return processes if self.workers else 1
