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
from ..train import Callback, FitState, Track


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


_TRACK_FIELDS = ("best_loss", "best_epoch", "best_state", "best_metrics", "epochs_without_gain", "stopped_early",
                 "stopped_at", "seconds", "val_rows")


def _saved_track(track: Track) -> dict[str, Any]:
    return {name: getattr(track, name) for name in _TRACK_FIELDS}


def _kept_track(saved: dict[str, Any], finished: bool) -> Track:
    """The kept network's track from a checkpoint; one written before tracks (flat ``best_*`` keys, no
    ``stopped_at``, ``val_rows`` or track seconds) reads as the one track of a training that validated one network."""
    if "track" in saved:
        return Track(**saved["track"])
    rows = saved["rows"]
    return Track(**{name: saved[name] for name in _TRACK_FIELDS[:6]},
                 stopped_at=len(rows) if finished else 0, seconds=saved["seconds"] if finished else 0.0,
                 val_rows=[{k: row[k] for k in row if k.startswith("val_")} for row in rows])


class Checkpoint(Callback):
    """Save the training state to ``path`` after every epoch; restore it when ``fit`` starts."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def on_fit_start(self, state: FitState) -> None:
        if not self.path.exists():
            return
        saved = torch.load(self.path, map_location=next(state.model.parameters()).device, weights_only=True)
        if ("raw" in saved) != (state.raw is not None):
            raise ValueError(f"{self.path} was written by a training that {'did' if 'raw' in saved else 'did not'} "
                             "keep the raw weights beside their average; delete it to train again.")
        state.rows, state.finished, state.earlier_seconds = saved["rows"], saved["finished"], saved["seconds"]
        state.track = _kept_track(saved, state.finished)
        if state.raw is not None:
            state.raw = Track(**saved["raw"])
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
        keep = {"rows": state.rows, "track": _saved_track(state.track), "finished": state.finished,
                "seconds": state.seconds()}
        if state.raw is not None:
            keep["raw"] = _saved_track(state.raw)
        if not state.finished:  # what continuing needs; a finished training keeps only its result
            keep.update(model=state.model.state_dict(), optimizer=state.optimizer.state_dict(),
                        scheduler=state.scheduler.state_dict(), rng=rng_state())
            if state.average is not None:
                keep["average"] = state.average.state_dict()
        with atomic_path(self.path) as tmp:
            torch.save(keep, tmp)
