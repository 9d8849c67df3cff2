"""One training loop for every model: an epoch, an evaluation, and ``fit`` with the best epoch kept and
early stopping.

Loaders yield batches with ``tokens`` (B, T) long, ``lengths`` (B,) long, ``labels`` (B,) (float 0/1 for
binary, long class index for multi-class), ``index`` (B,) long — each review's row in its split — and a
``.to(device)`` method (see :mod:`sentiment_lib.batching`). Length-bucketed loaders reorder reviews;
:func:`evaluate` and :func:`predict_proba` put results back in the split's original order by ``index``.

Unlike the widely shared tutorial notebook this study started from, evaluation never calls ``backward()`` or
``optimizer.step()``: it runs under ``torch.no_grad()`` in eval mode.

This module is plain PyTorch. What makes training fast or resumable on a given machine — the fused
recurrence, keeping freed memory, per-epoch checkpoints, worker processes — lives in
:mod:`sentiment_lib.runtime` and joins :func:`fit` through :class:`Callback` objects; without any, ``fit`` trains
the same model, more slowly.
"""
from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from . import adversarial as adv
from .config import choose_device, seed_everything
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
        vat: ``epsilon`` of virtual adversarial training on the reviews of ``fit``'s ``unlabelled`` loader
            (:func:`~sentiment_lib.adversarial.virtual_adversarial_loss`, same units; one unlabelled batch per
            training step); 0 turns it off.
        entropy: weight of entropy minimisation on the same unlabelled batches
            (:func:`~sentiment_lib.adversarial.unlabelled_loss`); 0 turns it off.
        layer_decay: discriminative learning rates (Howard & Ruder 2018): the model's output side (readout and
            head) trains at ``lr`` and each layer nearer the input at the rate above it over ``layer_decay`` (for
            a recurrent classifier: the recurrence at ``lr / layer_decay``, the embedding at
            ``lr / layer_decay**2``; :func:`parameter_groups`); 1 gives every weight ``lr``.
        average: weight averaging: validation scores, and the training keeps, an exponential moving average of
            the weights over about this many epochs (decay per step ``1 - 1 / (average × steps per epoch)``,
            :class:`torch.optim.swa_utils.AveragedModel`) instead of the weights themselves; 0 turns it off.
        also_raw: with ``average`` > 0, validate the weights themselves too and keep their best epoch, with their
            own early stopping (``FitResult.raw``): averaging changes only what is validated and kept, never a
            step, so one training gives both the averaged network and the one a training without averaging
            gives (the same weights to the bit); ``fit`` trains until both have stopped.
        num_threads: ``torch.set_num_threads`` for the process; ``None`` leaves torch's default (one per
            core: the fastest on an otherwise idle machine; when other processes keep the cores busy, or
            several trainings run side by side, give each 1 thread: waiting for a descheduled thread at
            every time step makes 2 threads many times slower than 1).
        progress: show a per-epoch progress bar over batches (``tqdm.auto``, cleared when done).
    """

    epochs: int = 5
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    warmup_steps: int = 0
    decay: str = "constant"
    patience: int | None = 2
    seed: int = 0
    device: str = "auto"
    amp_dtype: str | None = None
    adversarial: float = 0.0
    vat: float = 0.0
    entropy: float = 0.0
    layer_decay: float = 1.0
    average: float = 0.0
    also_raw: bool = False
    num_threads: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}.")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}: use e.g. lr=1e-3.")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}.")
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
        if not self.vat >= 0:
            raise ValueError(f"vat (epsilon) must be >= 0, got {self.vat}: 0 turns it off; the quick profile "
                             "uses 0.2.")
        if not self.entropy >= 0:
            raise ValueError(f"entropy (weight) must be >= 0, got {self.entropy}: 0 turns it off, "
                             f"{adv.ENTROPY_WEIGHT} is the ladder's weight.")
        if not self.layer_decay >= 1:
            raise ValueError(f"layer_decay must be >= 1, got {self.layer_decay}: 1 gives every layer the same rate, "
                             "Howard & Ruder's 2.6 divides it by 2.6 per layer towards the input.")
        if not self.average >= 0:
            raise ValueError(f"average (epochs) must be >= 0, got {self.average}: 0 turns weight averaging off, "
                             "1 averages over about the last epoch.")
        if self.also_raw and not self.average > 0:
            raise ValueError("also_raw keeps the weights beside their moving average: set average > 0 (e.g. 1.0) "
                             "or also_raw=False.")
        if self.amp_dtype not in AMP_DTYPES:
            raise ValueError(f"amp_dtype must be one of {AMP_DTYPES}, got {self.amp_dtype!r}.")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"num_threads must be at least 1 or None, got {self.num_threads}.")


@dataclass
class FitResult:
    """What :func:`fit` returns; the model itself holds the best weights afterwards.

    Attributes:
        history: one row per epoch run, columns :data:`HISTORY_COLUMNS` (``seconds``: wall time of the
            epoch including validation; ``lr``: learning rate after the epoch's last step — the output side's,
            with ``TrainConfig.layer_decay``).
        best_epoch: 1-based epoch with the lowest validation loss (its weights are in the model).
        best_val_loss: that loss (mean per review).
        best_val_metrics: validation metrics at ``best_epoch`` (no arrays).
        epochs_run: epochs actually trained (fewer than ``TrainConfig.epochs`` after early stopping).
        stopped_early: whether early stopping ended training.
        seconds: wall time of ``fit`` up to this network's last validation, before that epoch's checkpoint is
            written (over every process, when it resumed a checkpoint).
        resumed: ``None`` (trained from the start), ``"from epoch k"`` or ``"finished"`` (see :func:`fit`).
        raw: with ``TrainConfig.also_raw``, the result of the weights themselves (their own history, best epoch
            and early stop; ``seconds``: the training's time when they stopped) and ``raw_state`` their kept
            weights; ``None`` otherwise.
    """

    history: pd.DataFrame
    best_epoch: int
    best_val_loss: float
    best_val_metrics: dict[str, float] = field(default_factory=dict)
    epochs_run: int = 0
    stopped_early: bool = False
    seconds: float = 0.0
    resumed: str | None = None
    raw: "FitResult | None" = None
    raw_state: dict[str, torch.Tensor] | None = field(default=None, repr=False)


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


# Module attributes of a model from its input upwards, for discriminative learning rates: each is one layer deeper
# than the next; every other parameter (readout, head) is the output side.
INPUT_LAYERS = ("embedding", "rnn")


def parameter_groups(model: nn.Module, lr: float, layer_decay: float = 1.0) -> list[dict[str, Any]]:
    """AdamW's parameter groups with discriminative rates: the output side at ``lr`` and each of
    :data:`INPUT_LAYERS` the model has, counted from the top, at ``lr / layer_decay ** depth`` (for a recurrent
    classifier: the recurrence at ``lr / layer_decay``, the embedding at ``lr / layer_decay ** 2``). One group
    with every parameter when ``layer_decay`` is 1. The scheduler scales each group's rate by the same factor.
    ``ValueError`` when ``layer_decay`` > 1 and the model has none of those layers."""
    if layer_decay == 1:
        return [{"params": list(model.parameters()), "lr": lr}]
    layers = [getattr(model, name) for name in INPUT_LAYERS if isinstance(getattr(model, name, None), nn.Module)]
    if not layers:
        raise ValueError(f"layer_decay={layer_decay} needs a model with an {' or '.join(INPUT_LAYERS)} module; "
                         f"{type(model).__name__} has neither: train it with layer_decay=1.")
    inner = {id(p) for layer in layers for p in layer.parameters()}
    groups = [{"params": [p for p in model.parameters() if id(p) not in inner], "lr": lr}]
    for depth, layer in enumerate(reversed(layers), start=1):
        groups.append({"params": list(layer.parameters()), "lr": lr / layer_decay ** depth})
    return [group for group in groups if group["params"]]


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


class Callback:
    """Something that joins :func:`fit` from the side; every hook does nothing unless overridden.

    ``fit`` calls ``on_fit_start(state)`` once before the first epoch (a checkpoint may restore an
    interrupted training into ``state`` there), ``after_step()`` after every optimiser step,
    ``after_eval_batch()`` after every validation batch, ``on_epoch_end(state, val)`` after each epoch
    (``val``: what :func:`evaluate` returned for the kept network — with ``TrainConfig.also_raw``, for the raw
    weights once the kept network has stopped; an exception raised here, e.g. Optuna's ``TrialPruned``, ends
    the training) and ``on_fit_end(state)`` when ``fit`` returns or raises.
    """

    def on_fit_start(self, state: "FitState") -> None:
        pass

    def after_step(self) -> None:
        pass

    def after_eval_batch(self) -> None:
        pass

    def on_epoch_end(self, state: "FitState", val: dict[str, Any]) -> None:
        pass

    def on_fit_end(self, state: "FitState") -> None:
        pass


@dataclass
class Track:
    """One network's best epoch on validation, with its own early stopping: ``fit`` keeps one for the network it
    validates (the weights, or their moving average) and, with ``TrainConfig.also_raw``, one for the weights
    themselves.

    ``best_*``: the epoch with the lowest validation loss so far, its weights and metrics; ``epochs_without_gain``:
    epochs since then; ``stopped_at``: the epoch after which this network changes no more (its patience ran out,
    or the last epoch; 0 while it trains) and ``stopped_early`` whether patience ended it; ``seconds``: the
    training's seconds at that point; ``val_rows``: its validation columns (``val_loss``, ``val_accuracy``, …)
    per epoch until then.
    """

    best_loss: float = math.inf
    best_epoch: int = 0
    best_state: dict[str, torch.Tensor] | None = None
    best_metrics: dict[str, float] = field(default_factory=dict)
    epochs_without_gain: int = 0
    stopped_at: int = 0
    stopped_early: bool = False
    seconds: float = 0.0
    val_rows: list[dict[str, float]] = field(default_factory=list)

    def update(self, network: nn.Module, epoch: int, val: dict[str, Any], config: TrainConfig,
               seconds: float) -> None:
        """Record epoch ``epoch``'s validation ``val`` of ``network``; keep its weights when the loss is the lowest
        so far; stop after ``config.patience`` epochs without a lower one, or at ``config.epochs``."""
        self.val_rows.append({f"val_{k}": val[k] for k in ("loss", *METRIC_NAMES)})
        if val["loss"] < self.best_loss:
            self.best_loss, self.best_epoch = val["loss"], epoch
            self.best_state = {k: v.detach().clone() for k, v in network.state_dict().items()}
            self.best_metrics = {k: v for k, v in val.items() if not isinstance(v, np.ndarray)}
            self.epochs_without_gain = 0
        else:
            self.epochs_without_gain += 1
        patience_ran_out = config.patience is not None and self.epochs_without_gain >= config.patience
        if patience_ran_out or epoch == config.epochs:
            self.stopped_at, self.stopped_early, self.seconds = epoch, patience_ran_out and epoch < config.epochs, seconds

    def result(self, rows: list[dict[str, float]], resumed: str | None) -> FitResult:
        """This network's :class:`FitResult`: the training's ``rows`` until it stopped, with its validation columns."""
        history = pd.DataFrame([{**row, **val} for row, val in zip(rows, self.val_rows)], columns=HISTORY_COLUMNS)
        return FitResult(history=history, best_epoch=self.best_epoch, best_val_loss=self.best_loss,
                         best_val_metrics=self.best_metrics, epochs_run=len(self.val_rows),
                         stopped_early=self.stopped_early, seconds=self.seconds, resumed=resumed)


@dataclass
class FitState:
    """Everything :func:`fit` knows about a training in progress (what a checkpoint saves and restores).

    ``average``: the moving average of the weights (``TrainConfig.average`` > 0; ``None`` otherwise), the
    network that is validated and kept; ``rows``: one dict per finished epoch (columns :data:`HISTORY_COLUMNS`;
    the validation columns are ``track``'s, NaN after it stopped); ``track``: the kept network's best epoch and
    early stopping; ``raw``: the weights' own (``TrainConfig.also_raw``; ``None`` otherwise); ``finished``: the
    training ended (every track stopped); ``earlier_seconds``: time spent by earlier processes on this training;
    ``resumed``: ``None``, ``"from epoch k"`` or ``"finished"``.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    train_loader: Iterable
    average: torch.optim.swa_utils.AveragedModel | None = None
    rows: list[dict[str, float]] = field(default_factory=list)
    track: Track = field(default_factory=Track)
    raw: Track | None = None
    finished: bool = False
    earlier_seconds: float = 0.0
    resumed: str | None = None
    started: float = field(default_factory=time.perf_counter)

    def seconds(self) -> float:
        return self.earlier_seconds + time.perf_counter() - self.started

    def scored(self) -> nn.Module:
        """The network validation scores and the training keeps: the weights' moving average, or the model."""
        return self.model if self.average is None else self.average.module

    def tracks(self) -> list[tuple[Track, nn.Module]]:
        """Each track still training, with the network it validates (the kept network's first)."""
        both = [(self.track, self.scored())] + ([(self.raw, self.model)] if self.raw is not None else [])
        return [(track, network) for track, network in both if not track.stopped_at]


def _call_each(callbacks: Sequence[Callback], hook: str) -> Callable[[], None] | None:
    """One callable running ``hook`` of every callback that overrides it (``None`` when none does)."""
    chosen = [getattr(c, hook) for c in callbacks if getattr(type(c), hook) is not getattr(Callback, hook)]
    if not chosen:
        return None

    def run_all() -> None:
        for run in chosen:
            run()

    return run_all


def train_one_epoch(model: nn.Module, loader: Iterable, optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
                    device: torch.device | str = "cpu", grad_clip: float | None = None, progress: bool = True,
                    *, amp_dtype: str | None = None, desc: str = "train",
                    after_step: Callable[[], None] | None = None, adversarial: float = 0.0,
                    vat: float = 0.0, entropy: float = 0.0, unlabelled: Iterator | None = None) -> dict[str, float]:
    """One pass over ``loader`` in train mode, one optimizer (and scheduler) step per batch;
    ``after_step()`` is called after each. ``adversarial`` > 0 adds the loss on adversarially perturbed
    embeddings to each step (:mod:`sentiment_lib.adversarial`; twice the work). ``vat`` > 0 adds virtual
    adversarial training on the next batch of ``unlabelled`` (an iterator of batches whose labels are not read),
    ``entropy`` > 0 entropy minimisation on it (:func:`~sentiment_lib.adversarial.unlabelled_loss`).

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
            logits, loss = adv.adversarial_step(model, batch, classification_loss, adversarial,
                                                   lambda: _autocast(device, amp_dtype))
        else:
            with _autocast(device, amp_dtype):
                logits = model(batch.tokens, batch.lengths)
            loss = classification_loss(logits.float(), batch.labels)
            loss.backward()
        if vat > 0 or entropy > 0:
            reviews = next(unlabelled).to(device)
            adv.unlabelled_loss(model, reviews.tokens, reviews.lengths, vat, entropy,
                                autocast=lambda: _autocast(device, amp_dtype)).backward()
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


def _averaging(average: torch.optim.swa_utils.AveragedModel, model: nn.Module,
               then: Callable[[], None] | None) -> Callable[[], None]:
    """An ``after_step`` that updates the moving average of ``model``'s weights, then runs ``then``."""
    def step() -> None:
        average.update_parameters(model)
        if then is not None:
            then()
    return step


def _stream(loader: Iterable, epoch: int) -> Iterator:
    """Endless batches of ``loader`` for one epoch: its seeded order for ``epoch`` (a batch sampler with an
    ``epoch`` counter, as :mod:`sentiment_lib.batching` builds, is set to it, so a resumed training reads the
    same batches), cycling through later orders when the epoch needs more batches than it holds."""
    sampler = getattr(loader, "batch_sampler", None)
    if sampler is not None and hasattr(sampler, "epoch"):
        sampler.epoch = (epoch - 1) * 1000  # a block of orders per epoch: cycling never repeats another epoch's
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError("The unlabelled loader yielded no batches: give virtual adversarial training "
                             "at least one review.")


@torch.no_grad()
def _infer(model: nn.Module, loader: Iterable, device: torch.device, amp_dtype: str | None, progress: bool,
           desc: str, after_batch: Callable[[], None] | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (N,) or (N, C) as float32 and labels (N,), on the CPU, in the split's original order."""
    was_training = model.training
    model.eval()
    logits, labels, index = [], [], []
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
             amp_dtype: str | None = None, progress: bool = False, desc: str = "evaluate",
             after_batch: Callable[[], None] | None = None) -> dict[str, Any]:
    """Score ``model`` on ``loader`` without changing it (``torch.no_grad()``, eval mode, no optimizer).

    Returns a dict with ``loss`` (mean per review), the metrics of :func:`score` (``accuracy``,
    ``precision``, ``recall``, ``f1``, and ``roc_auc`` for binary tasks), and the arrays ``prob``
    ((N,) probability of class 1, or (N, C)) and ``labels`` (N,), in the split's original order. The
    model's train/eval mode is restored afterwards. ``after_batch()`` runs after each batch.
    """
    logits, labels = _infer(model, loader, torch.device(device), amp_dtype, progress, desc, after_batch)
    prob = probabilities(logits).numpy()
    labels_np = labels.numpy()
    return {"loss": classification_loss(logits, labels).item(), **score(labels_np, prob),
            "prob": prob, "labels": labels_np}


def predict_proba(model: nn.Module, loader: Iterable, device: torch.device | str = "cpu", *,
                  amp_dtype: str | None = None, progress: bool = False,
                  after_batch: Callable[[], None] | None = None) -> np.ndarray:
    """Probabilities in the split's original order: (N,) of class 1 (binary) or (N, C) (multi-class)."""
    logits, _ = _infer(model, loader, torch.device(device), amp_dtype, progress, "predict", after_batch)
    return probabilities(logits).numpy()


def moving_average(model: nn.Module, epochs: float, steps_per_epoch: int) -> torch.optim.swa_utils.AveragedModel:
    """An exponential moving average of ``model``'s weights (and buffers) over about ``epochs`` epochs of
    ``steps_per_epoch`` steps: decay ``1 - 1 / (epochs × steps_per_epoch)`` per ``update_parameters(model)``
    (the first update copies the weights)."""
    decay = 1.0 - 1.0 / max(1.0, epochs * steps_per_epoch)
    return torch.optim.swa_utils.AveragedModel(
        model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(decay), use_buffers=True)


def fit(model: nn.Module, train_loader: Iterable, val_loader: Iterable, config: TrainConfig | None = None,
        callbacks: Sequence[Callback] = (), unlabelled: Iterable | None = None) -> FitResult:
    """Train ``model`` with AdamW and keep the weights of the epoch with the lowest validation loss.

    Seeds everything with ``config.seed`` first, so the same seed, model initialisation and loaders give
    the same history. The loss is BCE-with-logits for binary models (logits (B,)) and cross-entropy for
    multi-class ones (logits (B, C)). Early stopping: after ``config.patience`` epochs without a lower
    validation loss. At the end the best weights are loaded back into ``model``. ``callbacks`` join the
    loop at the points :class:`Callback` names (in the order given). ``unlabelled``: a loader of reviews
    without labels for virtual adversarial training and entropy minimisation (``config.vat`` or
    ``config.entropy`` > 0); each epoch reads it from its start, in that epoch's seeded order, one batch per
    training step (cycling when it is shorter). With ``config.average`` > 0 the moving average of the weights
    is what validation scores, early stopping watches and the model holds at the end; with ``config.also_raw``
    the weights themselves are validated and kept too (``FitResult.raw``, ``FitResult.raw_state``).

    Raises ``FloatingPointError`` if the validation loss is not finite (training diverged).
    """
    config = config or TrainConfig()
    reads_unlabelled = config.vat > 0 or config.entropy > 0
    if reads_unlabelled and unlabelled is None:
        raise ValueError("TrainConfig.vat > 0 or entropy > 0 needs reviews without labels: pass "
                         "fit(..., unlabelled=loader).")
    if config.num_threads is not None:
        torch.set_num_threads(config.num_threads)
    device = choose_device(config.device)
    seed_everything(config.seed)
    model.to(device)
    optimizer = torch.optim.AdamW(parameter_groups(model, config.lr, config.layer_decay), lr=config.lr,
                                  weight_decay=config.weight_decay)
    scheduler = make_scheduler(optimizer, config.warmup_steps, config.epochs * len(train_loader), config.decay)
    average = moving_average(model, config.average, len(train_loader)) if config.average > 0 else None
    state = FitState(model, optimizer, scheduler, train_loader, average=average,
                     raw=Track() if config.also_raw else None)
    after_step, after_eval_batch = _call_each(callbacks, "after_step"), _call_each(callbacks, "after_eval_batch")
    if average is not None:
        after_step = _averaging(average, model, after_step)
    try:
        for callback in callbacks:
            callback.on_fit_start(state)
        restored = len(state.rows)  # epochs a checkpoint restored (0: none)
        for epoch in range(len(state.rows) + 1, config.epochs + 1 if not state.finished else 0):
            epoch_start = time.perf_counter()
            train = train_one_epoch(model, train_loader, optimizer, scheduler, device, config.grad_clip,
                                    config.progress, amp_dtype=config.amp_dtype, adversarial=config.adversarial,
                                    desc=f"epoch {epoch}/{config.epochs}", after_step=after_step,
                                    vat=config.vat, entropy=config.entropy,
                                    unlabelled=_stream(unlabelled, epoch) if reads_unlabelled else None)
            scored = [(track, network, _validate(network, val_loader, device, config, epoch, after_eval_batch,
                                                 first=i == 0))
                      for i, (track, network) in enumerate(state.tracks())]
            kept = {f"val_{k}": scored[0][2][k] if scored[0][0] is state.track else math.nan
                    for k in ("loss", *METRIC_NAMES)}
            state.rows.append({"epoch": epoch, **{f"train_{k}": train[k] for k in ("loss", *METRIC_NAMES)}, **kept,
                               "seconds": time.perf_counter() - epoch_start,
                               "lr": optimizer.param_groups[0]["lr"]})
            for track, network, val in scored:
                track.update(network, epoch, val, config, state.seconds())
            state.finished = not state.tracks()
            for callback in callbacks:
                callback.on_epoch_end(state, scored[0][2])
            if state.finished:
                break
    finally:
        for callback in callbacks:
            callback.on_fit_end(state)
    model.load_state_dict(state.track.best_state)
    result = state.track.result(state.rows, _resumed(state.track, state.resumed, restored))
    if state.raw is not None:
        result.raw = state.raw.result(state.rows, _resumed(state.raw, state.resumed, restored))
        result.raw_state = state.raw.best_state
    return result


def _resumed(track: Track, resumed: str | None, restored: int) -> str | None:
    """How ``track``'s network came back from a checkpoint: ``"finished"`` when it had stopped within the
    ``restored`` epochs (even if the other network trained on), else the training's ``resumed``."""
    return "finished" if resumed is not None and 0 < track.stopped_at <= restored else resumed


def _validate(network: nn.Module, val_loader: Iterable, device: torch.device, config: TrainConfig, epoch: int,
              after_batch: Callable[[], None] | None, first: bool = True) -> dict[str, Any]:
    """:func:`evaluate` of ``network`` after epoch ``epoch``; ``FloatingPointError`` when the loss is not finite.
    A validation after the ``first`` of an epoch leaves the CPU random generator as it found it (a ``DataLoader``
    draws its iterator's seed from it; validation draws nothing from a GPU's), so validating a second network
    changes none of the training's draws."""
    with nullcontext() if first else torch.random.fork_rng(devices=[]):
        val = evaluate(network, val_loader, device, amp_dtype=config.amp_dtype, progress=config.progress,
                       desc=f"epoch {epoch}/{config.epochs} validation", after_batch=after_batch)
    if not math.isfinite(val["loss"]):
        raise FloatingPointError(f"Validation loss is {val['loss']} at epoch {epoch}: training diverged. "
                                 "Lower TrainConfig.lr or set grad_clip (e.g. 1.0).")
    return val
