"""One training loop for every model: an epoch, an evaluation, and ``fit`` with best checkpoint and early
stopping.

Loaders yield batches with ``tokens`` (B, T) long, ``lengths`` (B,) long, ``labels`` (B,) (float 0/1 for
binary, long class index for multi-class), ``index`` (B,) long — each review's row in its split — and a
``.to(device)`` method (see :mod:`sentiment_lib.batching`). Length-bucketed loaders reorder reviews;
:func:`evaluate` and :func:`predict_proba` put results back in the split's original order by ``index``.

Unlike a widely shared tutorial notebook, evaluation never calls ``backward()`` or ``optimizer.step()``: it runs under
``torch.no_grad()`` in eval mode.

Speed on a CPU comes from elsewhere, so that this loop stays plain: the loaders bucket reviews by length
(:mod:`sentiment_lib.batching`), the recurrent models run a fused recurrence (:mod:`sentiment_lib.fused_rnn`),
and :func:`fit`'s step hook keeps freed memory for the next step (:mod:`sentiment_lib.memory`).
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from . import adversarial as adv
from .config import choose_device, seed_everything
from .memory import FREED_MEMORY_LIMIT_MIB, inference_hook, keep_freed_memory, step_hook
from .metrics import binary_metrics, multiclass_metrics

AMP_DTYPES = (None, "bfloat16")
DECAYS = ("constant", "linear")
HISTORY_COLUMNS = ["epoch", "train_loss", "train_accuracy", "train_precision", "train_recall", "train_f1",
                   "val_loss", "val_accuracy", "val_precision", "val_recall", "val_f1", "seconds", "lr"]
METRIC_NAMES = ("accuracy", "precision", "recall", "f1")


@dataclass
class TrainConfig:
    """Optimisation settings for :func:`fit`.

    Attributes:
        epochs: maximum number of passes over the training loader.
        lr: peak learning rate of AdamW.
        weight_decay: AdamW's decoupled weight decay (0 makes it plain Adam).
        batch_size: reviews per batch; :func:`fit` takes ready loaders, so this is what callers pass to
            ``make_loader`` (kept here so one object records the whole training recipe).
        grad_clip: clip the global gradient L2 norm to this value; ``None`` disables clipping.
        warmup_steps: optimizer steps of linear warm-up from ``lr / warmup_steps`` to ``lr``.
        decay: after warm-up, ``"constant"`` keeps ``lr``; ``"linear"`` decays it linearly towards 0,
            reached one step after the last of ``epochs`` epochs (the last step uses
            ``lr / (total steps - warmup_steps)``).
        patience: stop after this many epochs without a lower validation loss; ``None`` never stops early.
        seed: seeds Python, NumPy and torch at the start of :func:`fit` (dropout, shuffling).
        device: ``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda"``.
        amp_dtype: ``None`` (float32) or ``"bfloat16"`` (``torch.autocast`` on the device type).
        adversarial: ``epsilon`` of adversarial training on the word embeddings (:mod:`sentiment_lib.adversarial`:
            the perturbation's norm per review in word-vector lengths); 0 trains on the clean loss alone.
        num_threads: ``torch.set_num_threads`` for the process; ``None`` leaves torch's default (one per
            core: the fastest on an otherwise idle machine; when other processes keep the cores busy, or
            several trainings run side by side, give each 1 thread: waiting for a descheduled thread at
            every time step makes 2 threads many times slower than 1).
        progress: show a per-epoch progress bar over batches (``tqdm.auto``, cleared when done).
        keep_freed_memory: on a CPU, keep freed memory for the next step (glibc only; see
            :func:`sentiment_lib.memory.step_hook`): faster steps, at the price of memory the process keeps.
        freed_memory_limit_mib: with ``keep_freed_memory``, the most the resident memory may grow (MiB)
            above its level after the last release before freed memory goes back to the kernel
            (:class:`sentiment_lib.memory.FreedMemoryCap`).
    """

    epochs: int = 5
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 64
    grad_clip: float | None = 1.0
    warmup_steps: int = 0
    decay: str = "constant"
    patience: int | None = 2
    seed: int = 0
    device: str = "auto"
    amp_dtype: str | None = None
    adversarial: float = 0.0
    num_threads: int | None = None
    progress: bool = True
    keep_freed_memory: bool = True
    freed_memory_limit_mib: int = FREED_MEMORY_LIMIT_MIB

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}.")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}: use e.g. lr=1e-3.")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}.")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}.")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be positive or None (no clipping), got {self.grad_clip}.")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}.")
        if self.decay not in DECAYS:
            raise ValueError(f"decay must be one of {DECAYS}, got {self.decay!r}.")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be at least 1 or None (no early stopping), got {self.patience}.")
        if not self.adversarial >= 0:
            raise ValueError(f"adversarial (epsilon) must be >= 0, got {self.adversarial}: 0 turns it off, "
                             f"{adv.DEFAULT_EPSILON} is the usual size.")
        if self.amp_dtype not in AMP_DTYPES:
            raise ValueError(f"amp_dtype must be one of {AMP_DTYPES}, got {self.amp_dtype!r}.")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"num_threads must be at least 1 or None, got {self.num_threads}.")
        if self.freed_memory_limit_mib < 0:
            raise ValueError(f"freed_memory_limit_mib must be >= 0, got {self.freed_memory_limit_mib}: "
                             "e.g. 2048, or keep_freed_memory=False to return freed memory at once.")


@dataclass
class FitResult:
    """What :func:`fit` returns; the model itself holds the best weights afterwards.

    Attributes:
        history: one row per epoch run, columns :data:`HISTORY_COLUMNS` (``seconds``: wall time of the
            epoch including validation; ``lr``: learning rate after the epoch's last step).
        best_epoch: 1-based epoch with the lowest validation loss (its weights are in the model).
        best_val_loss: that loss (mean per review).
        best_val_metrics: validation metrics at ``best_epoch`` (no arrays).
        epochs_run: epochs actually trained (fewer than ``TrainConfig.epochs`` after early stopping).
        stopped_early: whether early stopping ended training.
        seconds: total wall time of ``fit`` (over every process, when it resumed a checkpoint).
        resumed: ``None`` (trained from the start), ``"from epoch k"`` or ``"finished"`` (see :func:`fit`).
    """

    history: pd.DataFrame
    best_epoch: int
    best_val_loss: float
    best_val_metrics: dict[str, float] = field(default_factory=dict)
    epochs_run: int = 0
    stopped_early: bool = False
    seconds: float = 0.0
    resumed: str | None = None


def classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean loss over the batch: BCE-with-logits for logits (B,), cross-entropy for logits (B, C)."""
    logits = logits.float()
    if logits.ndim == 1:
        return F.binary_cross_entropy_with_logits(logits, labels.float())
    return F.cross_entropy(logits, labels.long())


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Sigmoid of logits (B,) (probability of class 1) or softmax of logits (B, C)."""
    logits = logits.float()
    return torch.sigmoid(logits) if logits.ndim == 1 else torch.softmax(logits, dim=-1)


def score(labels: np.ndarray, prob: np.ndarray) -> dict[str, float]:
    """Metrics for probabilities (N,) (binary) or (N, C) (multi-class); see :mod:`sentiment_lib.metrics`."""
    return binary_metrics(labels, prob) if prob.ndim == 1 else multiclass_metrics(labels, prob)


def make_scheduler(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int,
                   decay: str = "constant") -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step learning-rate multiplier: linear warm-up ``(step+1)/warmup_steps`` for ``warmup_steps``
    steps, then 1 (``"constant"``) or a linear decay reaching 0 at ``total_steps`` (``"linear"``)."""
    if decay not in DECAYS:
        raise ValueError(f"decay must be one of {DECAYS}, got {decay!r}.")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if decay == "linear":
            return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _autocast(device: torch.device, amp_dtype: str | None):
    """``torch.autocast`` on the device's type in ``amp_dtype``; a no-op context when it is ``None``."""
    dtype = getattr(torch, amp_dtype) if amp_dtype else None
    return torch.autocast(device_type=device.type, dtype=dtype, enabled=amp_dtype is not None)


def train_one_epoch(model: nn.Module, loader: Iterable, optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
                    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = classification_loss,
                    device: torch.device | str = "cpu", grad_clip: float | None = None, progress: bool = True,
                    *, amp_dtype: str | None = None, desc: str = "train",
                    after_step: Callable[[], None] | None = None, adversarial: float = 0.0) -> dict[str, float]:
    """One pass over ``loader`` in train mode, one optimizer (and scheduler) step per batch;
    ``after_step()`` (e.g. a :class:`FreedMemoryCap`) is called after each. ``adversarial`` > 0 adds the loss
    on adversarially perturbed embeddings to each step (:mod:`sentiment_lib.adversarial`; twice the work).

    Returns ``loss`` (mean per review) and the metrics of :func:`score` on the predictions made while
    training (dropout active).
    """
    device = torch.device(device)
    model.train()
    total_loss, count = 0.0, 0
    probs, labels = [], []
    for batch in tqdm(loader, desc=desc, leave=False, disable=not progress, unit="batch"):
        batch = batch.to(device)
        optimizer.zero_grad(set_to_none=True)
        if adversarial > 0:
            logits, loss = _adversarial_step(model, batch, loss_fn, device, amp_dtype, adversarial)
        else:
            with _autocast(device, amp_dtype):
                logits = model(batch.tokens, batch.lengths)
            loss = loss_fn(logits.float(), batch.labels)
            loss.backward()
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        size = len(batch.labels)
        total_loss += loss.item() * size
        count += size
        probs.append(probabilities(logits.detach()).cpu())
        labels.append(batch.labels.detach().cpu())
        if after_step is not None:
            after_step()
    if count == 0:
        raise ValueError("The training loader yielded no batches; check that the training split is not empty.")
    prob = torch.cat(probs).numpy()
    return {"loss": total_loss / count, **score(torch.cat(labels).numpy(), prob)}


def _adversarial_step(model: nn.Module, batch, loss_fn, device: torch.device, amp_dtype: str | None,
                      epsilon: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Backward of the clean loss and of the loss on embeddings perturbed along its gradient (gradients
    accumulate in the parameters); returns the clean logits and loss."""
    embedding = adv.embedding_of(model)
    with adv.captured(embedding) as found, _autocast(device, amp_dtype):
        logits = model(batch.tokens, batch.lengths)
    loss = loss_fn(logits.float(), batch.labels)
    loss.backward()
    embedded = found["embedded"]
    mask = torch.arange(embedded.size(1), device=embedded.device)[None, :] < batch.lengths.to(embedded.device)[:, None]
    r = adv.perturbation(embedded, embedded.grad, mask, epsilon)
    with adv.perturbed(embedding, r), _autocast(device, amp_dtype):
        adversarial_logits = model(batch.tokens, batch.lengths)
    loss_fn(adversarial_logits.float(), batch.labels).backward()
    return logits, loss


@torch.no_grad()
def _infer(model: nn.Module, loader: Iterable, device: torch.device, amp_dtype: str | None, progress: bool,
           desc: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (N,) or (N, C) as float32 and labels (N,), on the CPU, in the split's original order."""
    was_training = model.training
    model.eval()
    logits, labels, index = [], [], []
    after_batch = inference_hook(device)  # hands back what batches of growing length leave behind
    try:
        for batch in tqdm(loader, desc=desc, leave=False, disable=not progress, unit="batch"):
            batch = batch.to(device)
            with _autocast(device, amp_dtype):
                logits.append(model(batch.tokens, batch.lengths).float().cpu())
            labels.append(batch.labels.cpu())
            index.append(getattr(batch, "index", None))
            if after_batch is not None:
                after_batch()
    finally:
        model.train(was_training)
    if not logits:
        raise ValueError("The loader yielded no batches; there is nothing to evaluate.")
    all_logits, all_labels = torch.cat(logits), torch.cat(labels)
    if all(i is not None for i in index):  # bucketed loaders reorder reviews: undo it
        order = torch.argsort(torch.cat(index).cpu(), stable=True)
        all_logits, all_labels = all_logits[order], all_labels[order]
    return all_logits, all_labels


def evaluate(model: nn.Module, loader: Iterable, device: torch.device | str = "cpu", *,
             amp_dtype: str | None = None, progress: bool = False, desc: str = "evaluate") -> dict[str, Any]:
    """Score ``model`` on ``loader`` without changing it (``torch.no_grad()``, eval mode, no optimizer).

    Returns a dict with ``loss`` (mean per review), the metrics of :func:`score` (``accuracy``,
    ``precision``, ``recall``, ``f1``, and ``roc_auc`` for binary tasks), and the arrays ``prob``
    ((N,) probability of class 1, or (N, C)) and ``labels`` (N,), in the split's original order. The
    model's train/eval mode is restored afterwards.
    """
    logits, labels = _infer(model, loader, torch.device(device), amp_dtype, progress, desc)
    prob = probabilities(logits).numpy()
    labels_np = labels.numpy()
    return {"loss": classification_loss(logits, labels).item(), **score(labels_np, prob),
            "prob": prob, "labels": labels_np}


def predict_proba(model: nn.Module, loader: Iterable, device: torch.device | str = "cpu", *,
                  amp_dtype: str | None = None, progress: bool = False) -> np.ndarray:
    """Probabilities in the split's original order: (N,) of class 1 (binary) or (N, C) (multi-class)."""
    logits, _ = _infer(model, loader, torch.device(device), amp_dtype, progress, "predict")
    return probabilities(logits).numpy()


def _state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def _rng_state() -> dict[str, Any]:
    """The random generators' states, as data ``torch.load(weights_only=True)`` reads back."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"torch": torch.get_rng_state(), "numpy": [name, keys.tolist(), pos, has_gauss, cached],
            "python": random.getstate()}


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in state["python"]))


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    from .files import atomic_path

    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def fit(model: nn.Module, train_loader: Iterable, val_loader: Iterable, config: TrainConfig | None = None,
        on_epoch_end: Callable[[int, dict[str, Any]], None] | None = None,
        checkpoint: Path | None = None) -> FitResult:
    """Train ``model`` with AdamW and keep the weights of the epoch with the lowest validation loss.

    Seeds everything with ``config.seed`` first, so the same seed, model initialisation and loaders give
    the same history. The loss is BCE-with-logits for binary models (logits (B,)) and cross-entropy for
    multi-class ones (logits (B, C)). ``on_epoch_end(epoch, val_metrics)`` is called after each epoch
    (1-based ``epoch``; ``val_metrics`` as returned by :func:`evaluate`); an exception it raises (e.g.
    Optuna's ``TrialPruned``) propagates. At the end the best weights are loaded back into ``model``.

    ``checkpoint``: a file that survives a kill. After every epoch the whole training state (weights,
    optimiser, schedule, best epoch, history, the random generators) is written there atomically; a later
    call with the same file continues after its last finished epoch (replaying ``on_epoch_end`` for the
    epochs already done) and ends with the same result as an uninterrupted run, or, when the training had
    finished, returns it without training. ``FitResult.resumed`` says which: ``None``, ``"from epoch k"`` or
    ``"finished"``. The caller keys the file by everything the training depends on.

    On a CPU with ``config.keep_freed_memory`` the process keeps freed memory (bounded) while it trains, and
    goes back to glibc's defaults when ``fit`` returns or raises: what runs next (test scoring, another
    notebook cell) hands freed memory back at once, as it would without this setting.

    Raises ``FloatingPointError`` if the validation loss is not finite (training diverged).
    """
    config = config or TrainConfig()
    started = time.perf_counter()
    if config.num_threads is not None:
        torch.set_num_threads(config.num_threads)
    device = choose_device(config.device)
    seed_everything(config.seed)
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = make_scheduler(optimizer, config.warmup_steps, config.epochs * len(train_loader), config.decay)

    rows: list[dict[str, float]] = []
    best_loss, best_epoch, best_state, best_metrics = math.inf, 0, None, {}
    epochs_without_gain, stopped_early, finished, resumed, earlier_seconds = 0, False, False, None, 0.0
    if checkpoint is not None and Path(checkpoint).exists():
        saved = torch.load(checkpoint, map_location=device, weights_only=True)
        rows, best_loss, best_epoch = saved["rows"], saved["best_loss"], saved["best_epoch"]
        best_state, best_metrics = saved["best_state"], saved["best_metrics"]
        epochs_without_gain, stopped_early = saved["epochs_without_gain"], saved["stopped_early"]
        finished, earlier_seconds = saved["finished"], saved["seconds"]
        resumed = "finished" if finished else f"from epoch {len(rows) + 1}"
        if not finished:
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            _set_rng_state(saved["rng"])
            sampler = getattr(train_loader, "batch_sampler", None)
            if hasattr(sampler, "epoch"):
                sampler.epoch = len(rows)  # each epoch's batch order comes from (seed, epoch)
        if on_epoch_end is not None:  # e.g. an Optuna trial retried after its process died
            for row in rows:
                on_epoch_end(int(row["epoch"]), {k[4:]: row[k] for k in row if k.startswith("val_")})

    def state(done: bool) -> dict[str, Any]:
        keep = {"rows": rows, "best_loss": best_loss, "best_epoch": best_epoch, "best_state": best_state,
                "best_metrics": best_metrics, "epochs_without_gain": epochs_without_gain,
                "stopped_early": stopped_early, "finished": done,
                "seconds": earlier_seconds + time.perf_counter() - started}
        if not done:  # what continuing needs; a finished training keeps only its result
            keep.update(model=model.state_dict(), optimizer=optimizer.state_dict(),
                        scheduler=scheduler.state_dict(), rng=_rng_state())
        return keep

    # Keeping freed memory starts here and ends in the finally below, whatever happens in between.
    after_step = step_hook(device, config.keep_freed_memory, config.freed_memory_limit_mib)
    try:
        for epoch in range(len(rows) + 1, config.epochs + 1 if not finished else 0):
            epoch_start = time.perf_counter()
            train = train_one_epoch(model, train_loader, optimizer, scheduler, classification_loss, device,
                                    config.grad_clip, config.progress, amp_dtype=config.amp_dtype,
                                    adversarial=config.adversarial,
                                    desc=f"epoch {epoch}/{config.epochs}", after_step=after_step)
            val = evaluate(model, val_loader, device, amp_dtype=config.amp_dtype, progress=config.progress,
                           desc=f"epoch {epoch}/{config.epochs} validation")
            if not math.isfinite(val["loss"]):
                raise FloatingPointError(
                    f"Validation loss is {val['loss']} at epoch {epoch}: training diverged. "
                    "Lower TrainConfig.lr or set grad_clip (e.g. 1.0).")
            rows.append({"epoch": epoch,
                         **{f"train_{k}": train[k] for k in ("loss", *METRIC_NAMES)},
                         **{f"val_{k}": val[k] for k in ("loss", *METRIC_NAMES)},
                         "seconds": time.perf_counter() - epoch_start,
                         "lr": optimizer.param_groups[0]["lr"]})
            if val["loss"] < best_loss:
                best_loss, best_epoch, best_state = val["loss"], epoch, _state_copy(model)
                best_metrics = {k: v for k, v in val.items() if not isinstance(v, np.ndarray)}
                epochs_without_gain = 0
            else:
                epochs_without_gain += 1
            stop = config.patience is not None and epochs_without_gain >= config.patience
            stopped_early = stop and epoch < config.epochs
            if checkpoint is not None:
                _save_checkpoint(Path(checkpoint), state(done=stop or epoch == config.epochs))
            if on_epoch_end is not None:
                on_epoch_end(epoch, val)
            if stop:
                break
    finally:  # scoring after training allocates in shapes the cap never sees: give the allocator back
        if after_step is not None:
            keep_freed_memory(False)

    model.load_state_dict(best_state)
    return FitResult(history=pd.DataFrame(rows, columns=HISTORY_COLUMNS), best_epoch=best_epoch,
                     best_val_loss=best_loss, best_val_metrics=best_metrics, epochs_run=len(rows),
                     stopped_early=stopped_early, seconds=earlier_seconds + time.perf_counter() - started,
                     resumed=resumed)
