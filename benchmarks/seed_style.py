"""The seed-style reference the speed benchmark measures against: a widely shared tutorial's BiLSTM loop.

That tutorial padded every review to 400 tokens and ran its bidirectional LSTM over the padded tensor as
is, so the backward direction started on the padding (its states are contaminated by it). This is not
part of the product (the package's models never read padding); it lives here so that ``make bench`` can
reproduce what the project's loop is compared with.
"""
from __future__ import annotations

import torch

from sentiment_lib.runtime.fused_rnn import run_over_padding
from sentiment_lib.models import BiLSTMPool, check_batch, masked_mean_max_pool


class PaddedBiLSTMPool(BiLSTMPool):
    """:class:`~sentiment_lib.models.BiLSTMPool` with the recurrence run over the whole padded tensor
    (both directions read every step; the pooling still masks the padded steps, as the tutorial did)."""

    def encode(self, tokens: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, None]:
        check_batch(tokens, lengths, self.embedding.num_embeddings)
        outputs, _ = run_over_padding(self.rnn, self.embedding(tokens.t()))  # (T, B, 2H)
        return masked_mean_max_pool(outputs, lengths.to(outputs.device), time_dim=0), None
