"""Per-epoch checkpoints: a training killed part-way continues where it stopped, with the same result.

:class:`Checkpoint` is a :class:`~sentiment_lib.train.Callback`. After every epoch it writes the whole training
state — weights (and their moving average), optimiser, schedule, best epoch, history and the random generators
— to one file, atomically; when :func:`~sentiment_lib.train.fit` starts with that file present, it restores the
state and the loop goes on after the last finished epoch (or, when the training had finished, returns its result
without training).
``FitState.resumed`` says which: ``None``, ``"from epoch k"`` or ``"finished"``. The caller keys the file by
everything the training depends on (:func:`sentiment_lib.experiment.checkpoint_path`).
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..files import atomic_path
from ..train import Callback, FitState


def rng_state() -> dict[str, Any]:
    """The random generators' states, as data ``torch.load(weights_only=True)`` reads back."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"torch": torch.get_rng_state(), "numpy": [name, keys.tolist(), pos, has_gauss, cached],
            "python": random.getstate()}


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in state["python"]))


class Checkpoint(Callback):
    """Save the training state to ``path`` after every epoch; restore it when ``fit`` starts."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def on_fit_start(self, state: FitState) -> None:
        if not self.path.exists():
            return
        saved = torch.load(self.path, map_location=next(state.model.parameters()).device, weights_only=True)
        state.rows, state.best_loss, state.best_epoch = saved["rows"], saved["best_loss"], saved["best_epoch"]
        state.best_state, state.best_metrics = saved["best_state"], saved["best_metrics"]
        state.epochs_without_gain, state.stopped_early = saved["epochs_without_gain"], saved["stopped_early"]
        state.finished, state.earlier_seconds = saved["finished"], saved["seconds"]
        state.resumed = "finished" if state.finished else f"from epoch {len(state.rows) + 1}"
        if state.finished:
            return
        state.model.load_state_dict(saved["model"])
        state.optimizer.load_state_dict(saved["optimizer"])
        state.scheduler.load_state_dict(saved["scheduler"])
        if state.average is not None:
            state.average.load_state_dict(saved["average"])
        set_rng_state(saved["rng"])
        sampler = getattr(state.train_loader, "batch_sampler", None)
        if hasattr(sampler, "epoch"):
            sampler.epoch = len(state.rows)  # each epoch's batch order comes from (seed, epoch)

    def on_epoch_end(self, state: FitState, val: dict[str, Any]) -> None:
        keep = {"rows": state.rows, "best_loss": state.best_loss, "best_epoch": state.best_epoch,
                "best_state": state.best_state, "best_metrics": state.best_metrics,
                "epochs_without_gain": state.epochs_without_gain, "stopped_early": state.stopped_early,
                "finished": state.finished, "seconds": state.seconds()}
        if not state.finished:  # what continuing needs; a finished training keeps only its result
            keep.update(model=state.model.state_dict(), optimizer=state.optimizer.state_dict(),
                        scheduler=state.scheduler.state_dict(), rng=rng_state())
            if state.average is not None:
                keep["average"] = state.average.state_dict()
        with atomic_path(self.path) as tmp:
            torch.save(keep, tmp)
