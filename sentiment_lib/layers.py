"""The models' building blocks that know about padding: which steps are real, pooling and a softmax over the
real steps only, additive attention, and the check that a batch is one the models can read.

Every function takes ``lengths`` (B,): the number of real tokens of each review, padding after them.
"""
from __future__ import annotations

import torch
from torch import nn


def length_mask(lengths: torch.Tensor, max_len: int, device: torch.device | None = None) -> torch.Tensor:
    """Boolean mask (B, max_len): True at real positions ``t < lengths[b]``, False on padding."""
    lengths = lengths.to(device if device is not None else lengths.device)
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def check_batch(tokens: torch.Tensor, lengths: torch.Tensor, vocab_size: int) -> None:
    """Refuse a batch the models cannot read correctly, naming the fix (a model would otherwise return
    made-up logits for a length of 0, or fail deep in torch for an id outside the vocabulary).

    Args: tokens (B, T) integer ids in ``[0, vocab_size)``; lengths (B,) with ``1 <= lengths[b] <= T``.
    """
    if tokens.dim() != 2 or lengths.dim() != 1 or lengths.numel() != tokens.size(0):
        raise ValueError(f"Expected tokens (B, T) and lengths (B,), got {tuple(tokens.shape)} and "
                         f"{tuple(lengths.shape)}; batch reviews with sentiment_lib.batching.make_loader.")
    if tokens.dtype.is_floating_point or lengths.dtype.is_floating_point:
        raise ValueError("tokens and lengths must be integer tensors (torch.long); encode reviews with a Vocab.")
    if tokens.numel() == 0:
        raise ValueError("The batch is empty; give at least one review with at least one token.")
    if int(lengths.min()) < 1 or int(lengths.max()) > tokens.size(1):
        raise ValueError(f"lengths must be between 1 and T={tokens.size(1)}, got {int(lengths.min())}.."
                         f"{int(lengths.max())}; drop reviews with no token (a length of 0 has nothing to read).")
    if int(tokens.min()) < 0 or int(tokens.max()) >= vocab_size:
        raise ValueError(f"Token ids must be in [0, {vocab_size}), got {int(tokens.min())}..{int(tokens.max())}: "
                         "the ids come from another vocabulary; encode with the vocabulary the model was built for.")


def masked_mean_max_pool(outputs: torch.Tensor, lengths: torch.Tensor, time_dim: int = 1) -> torch.Tensor:
    """Mean and max of per-step outputs over each sequence's real steps only.

    Args:
        outputs: (B, T, H) per-step features (or (T, B, H) with ``time_dim=0``); values at padded steps
            are ignored whatever they are.
        lengths: (B,) number of real steps per sequence, all >= 1.
        time_dim: 1 for batch-first ``outputs`` (default), 0 for time-major.

    Returns:
        (B, 2H): ``[mean over real steps, max over real steps]`` concatenated on the last axis.
    """
    if time_dim not in (0, 1):
        raise ValueError(f"time_dim must be 0 (T, B, H) or 1 (B, T, H), got {time_dim}.")
    mask = length_mask(lengths, outputs.size(time_dim), outputs.device)  # (B, T)
    mask = (mask.t() if time_dim == 0 else mask).unsqueeze(-1)
    counts = mask.sum(dim=time_dim).clamp(min=1).to(outputs.dtype)  # (B, 1); clamp only guards length 0
    mean = outputs.masked_fill(~mask, 0.0).sum(dim=time_dim) / counts
    # max(dim).values back-propagates through its indices (a scatter); amax's backward compares the
    # whole tensor with the result, which costs more on CPU.
    maximum = outputs.masked_fill(~mask, float("-inf")).max(dim=time_dim).values
    return torch.cat([mean, maximum], dim=-1)


def masked_softmax(scores: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Softmax of ``scores`` (B, T) over each row's real steps ``t < lengths[b]`` (lengths (B,), all >= 1).

    Returns weights (B, T) that sum to 1 over the real steps and are exactly 0 on padding, whatever the
    scores there are."""
    mask = length_mask(lengths, scores.size(1), scores.device)
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)


class AdditiveAttention(nn.Module):
    """Bahdanau (additive) attention: ``score_t = v · tanh(W_h h_t + W_q q)``, softmax over real steps.

    The query ``q`` is the encoder's last real hidden state, so the model asks "which steps matter,
    given what I read overall?".
    """

    def __init__(self, feature_size: int, attention_size: int):
        super().__init__()
        self.keys = nn.Linear(feature_size, attention_size, bias=False)
        self.query = nn.Linear(feature_size, attention_size)
        self.score = nn.Linear(attention_size, 1, bias=False)

    def forward(self, outputs: torch.Tensor, query: torch.Tensor, lengths: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: outputs (B, T, D), query (B, D), lengths (B,).

        Returns ``(context (B, D), weights (B, T))``; weights sum to 1 over real steps and are exactly 0
        on padding.
        """
        scores = self.score(torch.tanh(self.keys(outputs) + self.query(query).unsqueeze(1))).squeeze(-1)
        weights = masked_softmax(scores, lengths)
        context = torch.bmm(weights.unsqueeze(1), outputs).squeeze(1)
        return context, weights
