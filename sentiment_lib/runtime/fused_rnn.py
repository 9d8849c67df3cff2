"""The fast length-aware recurrence: one fused kernel call per layer and direction, padding never read.

:class:`sentiment_lib.models.RecurrentClassifier` reads a padded batch in one of two ways that give the same
function (tested equal in outputs and gradients): ``pack_padded_sequence`` (the readable reference, in
``models``), or :func:`dense_recurrence` here, registered as the recurrence ``"dense"`` when this module is
imported and chosen for a model by :func:`use_fused_recurrence` (the runtime's default). On a CPU, packing runs the cell step by step on
shrinking batches with no fused kernel; the dense way runs the cell over the whole time-major (T, B) tensor
in one call (oneDNN on CPU, cuDNN on GPU; the input projection for all steps in one matrix product):

- padding comes *after* each review's real tokens, so the forward direction reaches every real step before
  any padding; its outputs at padded steps are ignored by every readout;
- the backward direction reads a copy of each review reversed *within its own length*
  (:func:`reversal_index`), so it also starts on a real token.

The kernels are torch's own (``torch.lstm``, ``torch.gru``, ``torch.rnn_tanh``: what ``nn.LSTM.forward``
calls), given the module's weights, so the parameters are those of the ``nn.LSTM``/``nn.GRU``/``nn.RNN``.
"""
from __future__ import annotations

import functools

import torch
from torch import nn

from ..models import RECURRENCES, RecurrentClassifier, packed_recurrence


@functools.lru_cache(maxsize=None)
def cpu_has_bf16_rnn() -> bool:
    """Whether this CPU runs oneDNN's recurrent kernels in bfloat16 (native bf16 instructions)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # private API: assume not, float32 is always correct
        return False


def reversal_index(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """(T, B) step index that reverses each sequence's first ``lengths[b]`` steps and leaves its
    padding in place: ``L-1-t`` for ``t < L``, ``t`` after. Applying it twice is the identity."""
    t = torch.arange(steps, device=lengths.device)[:, None]
    last = lengths[None, :] - 1
    return torch.where(t <= last, last - t, t)


def gather_steps(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x`` (T, B, F) re-ordered along time by ``index`` (T, B)."""
    return x.gather(0, index.unsqueeze(-1).expand_as(x))


def run_cell(rnn: nn.RNNBase, x: torch.Tensor, weights: list[torch.Tensor], num_layers: int,
             bidirectional: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``rnn``'s recurrence on a time-major (T, B, E) input with the given weights (the call
    ``nn.LSTM/GRU/RNN.forward`` makes, zero initial state). Returns ``(outputs (T, B, D), h_n)``."""
    if x.device.type == "cpu" and torch.is_autocast_enabled("cpu") and not cpu_has_bf16_rnn():
        # The fused CPU kernel (oneDNN) has no bfloat16 LSTM without native bf16 instructions
        # (AVX512-BF16/AMX) and fails; there the recurrence runs in float32 instead.
        with torch.autocast("cpu", enabled=False):
            return run_cell(rnn, x.float(), weights, num_layers, bidirectional)
    dirs = 2 if bidirectional else 1
    h0 = x.new_zeros(num_layers * dirs, x.size(1), rnn.hidden_size)
    dropout = rnn.dropout if num_layers > 1 else 0.0
    if rnn.mode == "LSTM":
        outputs, h_n, _ = torch.lstm(x, (h0, h0), weights, True, num_layers, dropout, rnn.training,
                                     bidirectional, False)
        return outputs, h_n
    run = torch.gru if rnn.mode == "GRU" else torch.rnn_tanh
    return run(x, h0, weights, True, num_layers, dropout, rnn.training, bidirectional, False)


def run_over_padding(rnn: nn.RNNBase, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole stack of ``rnn`` over a time-major (T, B, E) input *as is*, padding included (both
    directions read every step): what a model that ignores lengths computes. Returns ``(outputs, h_n)``."""
    return run_cell(rnn, x, rnn._flat_weights, rnn.num_layers, rnn.bidirectional)


def dense_recurrence(rnn: nn.RNNBase, embedding: nn.Embedding, tokens: torch.Tensor, lengths: torch.Tensor,
                     backward_in_reading_order: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-layer outputs **time-major** (T, B, D) (arbitrary at padded steps) and last real state(s) (B, D).

    Args:
        rnn: the model's ``nn.LSTM``/``nn.GRU``/``nn.RNN`` (``batch_first`` is ignored: time-major inside).
        embedding: the model's embedding layer.
        tokens: (B, T) ids, padding after each review's real tokens; lengths: (B,), all >= 1.
        backward_in_reading_order: leave the backward half of the outputs in its own reading order (step t
            holds position L-1-t). Mean and max over the real steps, channel by channel, do not depend on
            the order, so a pooling readout need not pay for putting them back.

    Time-major is the layout the fused kernels use, so nothing is transposed in or out of them.
    """
    # One embedding call on the (B, T) ids, whatever the path (sentiment_lib.adversarial hooks it).
    x_forward = embedding(tokens).transpose(0, 1)  # (T, B, E)
    lengths = lengths.to(tokens.device)
    batch = torch.arange(tokens.size(0), device=tokens.device)
    if not rnn.bidirectional:  # trailing padding only touches outputs at padded steps (ignored by readouts)
        outputs, _ = run_over_padding(rnn, x_forward)
        return outputs, outputs[lengths - 1, batch]
    index = reversal_index(lengths, tokens.size(1))  # (T, B): its own inverse
    x_backward = gather_steps(x_forward, index)
    for layer in range(rnn.num_layers):
        if layer > 0:  # next layer's input: both directions' outputs, aligned by position
            x_forward = torch.cat([forward, gather_steps(backward, index)], dim=-1)
            if rnn.dropout > 0:  # as nn.LSTM: dropout between layers only
                x_forward = nn.functional.dropout(x_forward, rnn.dropout, rnn.training)
            x_backward = gather_steps(x_forward, index)
        names = [f"{kind}_l{layer}" for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        forward, _ = run_cell(rnn, x_forward, [getattr(rnn, n) for n in names], 1, False)
        backward, _ = run_cell(rnn, x_backward, [getattr(rnn, f"{n}_reverse") for n in names], 1, False)
    # Each direction's final state is its output at step L-1 of its own reading order.
    last = torch.cat([forward[lengths - 1, batch], backward[lengths - 1, batch]], dim=-1)
    if not backward_in_reading_order:
        backward = gather_steps(backward, index)
    return torch.cat([forward, backward], dim=-1), last


def fused_recurrence(model: RecurrentClassifier, tokens: torch.Tensor, lengths: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The recurrence ``"dense"`` of :data:`sentiment_lib.models.RECURRENCES`: ``(outputs (T, B, D), last (B, D),
    time_dim=0)``. On a GPU a bidirectional model packs: cuDNN runs packed sequences natively (and wants its
    weights flattened, which one direction's weights are not)."""
    if model.bidirectional and tokens.is_cuda:
        return packed_recurrence(model, tokens, lengths)
    outputs, last = dense_recurrence(model.rnn, model.embedding, tokens, lengths,
                                     backward_in_reading_order=model.readout == "pool")
    return outputs, last, 0


RECURRENCES["dense"] = fused_recurrence


def use_fused_recurrence(model: nn.Module) -> nn.Module:
    """Switch every recurrent classifier inside ``model`` to :func:`fused_recurrence` (same weights, same
    function, faster); returns ``model``."""
    for module in model.modules():
        if isinstance(module, RecurrentClassifier):
            module.recurrence = "dense"
    return model
