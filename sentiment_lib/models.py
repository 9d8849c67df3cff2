"""The models compared in the notebooks: LSTM-family classifiers and a bag-of-embeddings baseline.

Every model maps a padded batch of token ids to logits::

    model(tokens, lengths) -> logits
        tokens:  LongTensor (B, T), padded with PAD (0) after each review's real tokens
        lengths: LongTensor (B,), number of real tokens per review, all >= 1 (on any device)
        logits:  Tensor (B,) when num_classes == 2 (one logit: positive vs negative, for
                 ``BCEWithLogitsLoss``), Tensor (B, C) when num_classes == C > 2 (for ``CrossEntropyLoss``)

All recurrent models are one class, :class:`RecurrentClassifier`, parameterised by cell type
(LSTM / GRU / vanilla RNN), direction, number of layers and *readout* (how the per-step outputs become
one vector per review): ``"last"`` (last real hidden state), ``"pool"`` (masked mean + max over time)
or ``"attention"`` (additive attention). The named classes (:class:`LSTMClassifier`, :class:`BiLSTM`,
...) are presets of it; :func:`build_model` builds any of them by name from a :class:`ModelConfig`.

Padding never enters the recurrence of a review's real steps: the model packs each batch with
``pack_padded_sequence``, so the LSTM runs each review for its own length. That is the readable reference
and the default; :data:`RECURRENCES` names the ways a model may run its recurrence, and
:mod:`sentiment_lib.runtime.fused_rnn` adds a faster one that computes the same function (tested equal in
outputs and gradients), chosen by the runtime, not here.

Every model calls its ``embedding`` layer exactly once per forward, on the (B, T) ids (output (B, T, E)):
adversarial training (:mod:`sentiment_lib.adversarial`) perturbs that output with a forward hook.

``read_padded_last_step=True`` reproduces a defect common in tutorials — it runs the recurrence over
the padding too and reads the state at position T-1 — so notebook 03 can show why a baseline built
that way scores near chance.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Callable, Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .layers import AdditiveAttention, check_batch, length_mask, masked_mean_max_pool, masked_softmax  # noqa: F401

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
READOUTS = ("last", "pool", "attention")


# --------------------------------------------------------------------------------------------
# Validation shared by every model
# --------------------------------------------------------------------------------------------


def _check_sizes(vocab_size: int, embed_dim: int, hidden_size: int, num_layers: int, dropout: float,
                 num_classes: int, pad_idx: int) -> None:
    """Raise ``ValueError`` naming the fix for any size that cannot make a working model."""
    if vocab_size < 3:
        raise ValueError(
            f"vocab_size is {vocab_size}: the vocabulary holds nothing beyond PAD and UNK. Build it from "
            "non-empty training texts (e.g. a lower min_freq in Vocab.build) and pass len(vocab)."
        )
    if embed_dim <= 0:
        raise ValueError(f"embed_dim must be a positive integer, got {embed_dim}: use e.g. embed_dim=100.")
    if hidden_size <= 0:
        raise ValueError(f"hidden_size must be a positive integer, got {hidden_size}: use e.g. hidden_size=128.")
    if num_layers < 1:
        raise ValueError(f"num_layers must be at least 1, got {num_layers}.")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}: use e.g. dropout=0.3 (0 disables it).")
    if num_classes < 2:
        raise ValueError(
            f"num_classes must be at least 2, got {num_classes}: use num_classes=2 for positive/negative."
        )
    if not 0 <= pad_idx < vocab_size:
        raise ValueError(f"pad_idx must index the vocabulary (0 <= pad_idx < {vocab_size}), got {pad_idx}.")


def _output_size(num_classes: int) -> int:
    """One logit for a binary task, one per class otherwise."""
    return 1 if num_classes == 2 else num_classes


def _squeeze_binary(logits: torch.Tensor) -> torch.Tensor:
    """(B, 1) -> (B,) for binary models; (B, C) unchanged."""
    return logits.squeeze(-1) if logits.size(-1) == 1 else logits


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


def packed_recurrence(model: "RecurrentClassifier", tokens: torch.Tensor, lengths: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The model's recurrence through ``pack_padded_sequence``: each review runs for its own length.

    Returns ``(outputs (B, T, D) (zeros at padding; empty for the "last" readout), last real state(s) (B, D),
    time_dim=1)``.
    """
    embedded = model.embedding(tokens)  # (B, T, E)
    # enforce_sorted=False: PyTorch sorts internally and returns h_n in the batch's own order.
    packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
    packed_outputs, hidden = model.rnn(packed)
    h_n = hidden[0] if model.cell == "lstm" else hidden  # (layers * directions, B, H)
    last = torch.cat([h_n[-2], h_n[-1]], dim=-1) if model.bidirectional else h_n[-1]
    if model.readout == "last":
        return embedded.new_empty(0), last, 1
    outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=tokens.size(1))
    return outputs, last, 1


# How a recurrent model may run its recurrence: name -> f(model, tokens, lengths) -> (outputs, last, time_dim).
RECURRENCES: dict[str, Callable[..., tuple[torch.Tensor, torch.Tensor, int]]] = {"packed": packed_recurrence}


def check_recurrence(name: str) -> str:
    """``name`` when it is a key of :data:`RECURRENCES`; else a ``ValueError`` naming the ones there are."""
    if name not in RECURRENCES:
        raise ValueError(f"recurrence must be one of {sorted(RECURRENCES)}, got {name!r}: 'packed' is the "
                         "reference; import sentiment_lib.runtime for the fused 'dense' one.")
    return name


class RecurrentClassifier(nn.Module):
    """Embedding -> RNN/GRU/LSTM (optionally bidirectional, stacked) -> readout -> dropout -> linear.

    Args:
        vocab_size: rows of the embedding table (``len(vocab)``, PAD and UNK included).
        embed_dim: embedding width E.
        hidden_size: recurrent state width H per direction.
        cell: ``"lstm"``, ``"gru"`` or ``"rnn"`` (tanh).
        num_layers: stacked recurrent layers; ``dropout`` is also applied between them when > 1.
        bidirectional: also read each review right-to-left; features are then 2H wide.
        readout: ``"last"`` — last real state (forward and, if bidirectional, backward concatenated);
            ``"pool"`` — :func:`masked_mean_max_pool` over the top layer's outputs;
            ``"attention"`` — :class:`AdditiveAttention` context vector over the top layer's outputs.
        dropout: probability in [0, 1) on the features before the output layer (and between layers).
        num_classes: 2 gives one logit (B,); C > 2 gives (B, C).
        pad_idx: padding id; its embedding row stays zero.
        read_padded_last_step: reproduce a common defect (``readout="last"`` only): run the recurrence
            over the padding too and read the output at position T-1.
        attention_size: width of the attention scoring layer (default: the feature width).
        recurrence: a key of :data:`RECURRENCES`: ``"packed"`` (default, the reference) or a faster way the
            runtime registered; see the module docstring.
    """

    def __init__(self, vocab_size: int, embed_dim: int = 100, hidden_size: int = 128, *, cell: str = "lstm",
                 num_layers: int = 1, bidirectional: bool = False, readout: str = "last",
                 dropout: float = 0.0, num_classes: int = 2, pad_idx: int = 0,
                 read_padded_last_step: bool = False, attention_size: int | None = None,
                 recurrence: str = "packed"):
        super().__init__()
        _check_sizes(vocab_size, embed_dim, hidden_size, num_layers, dropout, num_classes, pad_idx)
        check_recurrence(recurrence)
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}.")
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}.")
        if read_padded_last_step and readout != "last":
            raise ValueError(
                "read_padded_last_step only applies to readout='last' (the baseline); "
                f"this model reads with readout={readout!r}."
            )
        self.cell = cell
        self.readout = readout
        self.bidirectional = bidirectional
        self.num_classes = num_classes
        self.read_padded_last_step = read_padded_last_step
        self.recurrence = recurrence

        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_idx)
        self.rnn = CELLS[cell](embed_dim, hidden_size, num_layers=num_layers, batch_first=True,
                               bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0)
        state_size = hidden_size * (2 if bidirectional else 1)
        feature_size = 2 * state_size if readout == "pool" else state_size
        self.attention = (AdditiveAttention(state_size, attention_size or state_size)
                          if readout == "attention" else None)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(feature_size, _output_size(num_classes))

    def encode(self, tokens: torch.Tensor, lengths: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Feature vector per review before the output layer.

        Args: tokens (B, T) long, lengths (B,) long.

        Returns ``(features (B, F), attention weights (B, T) or None)``. Raises ``ValueError`` for an
        impossible batch (:func:`check_batch`).
        """
        check_batch(tokens, lengths, self.embedding.num_embeddings)
        if self.read_padded_last_step:  # padding runs through the recurrence: the defect notebook 03 shows
            outputs, _ = self.rnn(self.embedding(tokens))  # (B, T, D), every step read, padding included
            return outputs[:, -1], None
        outputs, last, time_dim = RECURRENCES[self.recurrence](self, tokens, lengths)
        return self.read_out(outputs, last, lengths, time_dim)

    def read_out(self, outputs: torch.Tensor, last: torch.Tensor, lengths: torch.Tensor, time_dim: int
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Features (B, F) from the top layer's ``outputs`` ((B, T, D) with ``time_dim=1``, (T, B, D) with
        0) and last real states ``last`` (B, D), by the model's readout; attention weights (B, T) or None."""
        if self.readout == "last":
            return last, None
        if self.readout == "pool":
            return masked_mean_max_pool(outputs, lengths, time_dim=time_dim), None
        return self.attention(outputs if time_dim == 1 else outputs.transpose(0, 1), last, lengths)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor, return_attention: bool = False):
        """Args: tokens (B, T) long, lengths (B,) long, all >= 1.

        Returns logits (B,) or (B, C); with ``return_attention=True`` (attention readout only)
        ``(logits, weights (B, T))``.
        """
        features, weights = self.encode(tokens, lengths)
        logits = _squeeze_binary(self.head(self.dropout(features)))
        if return_attention:
            if weights is None:
                raise ValueError(
                    f"This model reads with readout={self.readout!r} and has no attention weights; "
                    "use the 'attention_lstm' model for return_attention=True."
                )
            return logits, weights
        return logits


def _with_preset(options: dict[str, Any], **preset: Any) -> dict[str, Any]:
    """Merge a named model's fixed options into user options; a contradicting option is an error."""
    for key, value in preset.items():
        if key in options and options[key] is not None and options[key] != value:
            raise ValueError(f"This model always uses {key}={value!r}; drop {key}={options[key]!r} "
                             "or pick another model name.")
    merged = {key: value for key, value in options.items() if value is not None}
    merged.update(preset)
    return merged


class LSTMClassifier(RecurrentClassifier):
    """Baseline: one-direction LSTM, logits from the last real hidden state.

    ``read_padded_last_step=True`` gives the defective variant notebook 03 shows (see module docstring).
    """

    def __init__(self, vocab_size: int, **options: Any):
        super().__init__(vocab_size, **_with_preset(options, cell="lstm", readout="last"))


class BiLSTM(RecurrentClassifier):
    """Bidirectional LSTM: last real forward state and first-step backward state, concatenated (2H)."""

    def __init__(self, vocab_size: int, **options: Any):
        super().__init__(vocab_size, **_with_preset(options, cell="lstm", bidirectional=True, readout="last"))


class BiLSTMPool(RecurrentClassifier):
    """Bidirectional LSTM with masked mean+max pooling over time (4H features) and dropout."""

    def __init__(self, vocab_size: int, **options: Any):
        super().__init__(vocab_size, **_with_preset(options, cell="lstm", bidirectional=True, readout="pool"))


class AttentionLSTM(RecurrentClassifier):
    """LSTM with additive attention over its outputs; ``forward(..., return_attention=True)`` also gives
    the per-token weights (B, T) for heatmaps."""

    def __init__(self, vocab_size: int, **options: Any):
        super().__init__(vocab_size, **_with_preset(options, cell="lstm", readout="attention"))


def default_layers(name: str) -> int:
    """The depth of model ``name`` when :class:`ModelConfig` leaves ``num_layers`` as ``None``: 2 for
    ``stacked_lstm``, 1 for every other model."""
    return 2 if name == "stacked_lstm" else 1


class StackedLSTM(RecurrentClassifier):
    """LSTM with ``num_layers >= 2`` (default 2) and dropout between layers; last real state of the top."""

    def __init__(self, vocab_size: int, **options: Any):
        if options.get("num_layers") is None:
            options["num_layers"] = default_layers("stacked_lstm")
        if options["num_layers"] < 2:
            raise ValueError(f"stacked_lstm needs num_layers >= 2, got {options['num_layers']}: "
                             "set num_layers=2 or use the 'lstm' model for one layer.")
        super().__init__(vocab_size, **_with_preset(options, cell="lstm", readout="last"))


class GRUClassifier(RecurrentClassifier):
    """GRU with the last real hidden state, as the baseline LSTM."""

    def __init__(self, vocab_size: int, **options: Any):
        super().__init__(vocab_size, **_with_preset(options, cell="gru", readout="last"))


class RNNClassifier(RecurrentClassifier):
    """Vanilla (tanh) RNN with the last real hidden state, as the baseline LSTM."""

    def __init__(self, vocab_size: int, **options: Any):
        super().__init__(vocab_size, **_with_preset(options, cell="rnn", readout="last"))


class BagOfEmbeddings(nn.Module):
    """Feed-forward baseline: masked mean of the token embeddings -> MLP -> logits. Word order is ignored.

    Args:
        vocab_size, embed_dim, num_classes, pad_idx: as for :class:`RecurrentClassifier`.
        hidden_size: width of each hidden layer.
        num_layers: number of hidden (Linear + ReLU + Dropout) layers, >= 1.
        dropout: probability in [0, 1) after each hidden layer.
    """

    def __init__(self, vocab_size: int, embed_dim: int = 100, hidden_size: int = 128, *, num_layers: int = 1,
                 dropout: float = 0.0, num_classes: int = 2, pad_idx: int = 0):
        super().__init__()
        _check_sizes(vocab_size, embed_dim, hidden_size, num_layers, dropout, num_classes, pad_idx)
        self.num_classes = num_classes
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_idx)
        layers: list[nn.Module] = []
        width = embed_dim
        for _ in range(num_layers):
            layers += [nn.Linear(width, hidden_size), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden_size
        layers.append(nn.Linear(width, _output_size(num_classes)))
        self.mlp = nn.Sequential(*layers)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Args: tokens (B, T) long, lengths (B,) long (:func:`check_batch`). Returns logits (B,) or (B, C)."""
        check_batch(tokens, lengths, self.embedding.num_embeddings)
        embedded = self.embedding(tokens)  # (B, T, E)
        mask = length_mask(lengths, tokens.size(1), tokens.device).unsqueeze(-1)
        mean = (embedded * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
        return _squeeze_binary(self.mlp(mean))


# --------------------------------------------------------------------------------------------
# Configuration and registry
# --------------------------------------------------------------------------------------------

MODELS: dict[str, type[nn.Module]] = {
    "lstm": LSTMClassifier,
    "bilstm": BiLSTM,
    "bilstm_pool": BiLSTMPool,
    "attention_lstm": AttentionLSTM,
    "stacked_lstm": StackedLSTM,
    "gru": GRUClassifier,
    "rnn": RNNClassifier,
    "bag_of_embeddings": BagOfEmbeddings,
}


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model (stored in model bundles as a plain dict).

    ``num_layers`` and ``bidirectional`` left as ``None`` take the named model's default (``stacked_lstm``:
    2 layers; ``bilstm``/``bilstm_pool``: bidirectional; others: 1 layer, one direction). For
    ``bag_of_embeddings``, ``hidden_size``/``num_layers`` describe its MLP.
    """

    name: str
    vocab_size: int
    embed_dim: int = 100
    hidden_size: int = 128
    num_layers: int | None = None
    dropout: float = 0.0
    bidirectional: bool | None = None
    num_classes: int = 2
    pad_idx: int = 0
    read_padded_last_step: bool = False

    @property
    def layers(self) -> int:
        """The number of layers the built model has (``num_layers``, or the model's default)."""
        return self.num_layers or default_layers(self.name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"Unknown ModelConfig fields {unknown}; known fields are {sorted(known)}.")
        return cls(**values)


def build_model(config: ModelConfig) -> nn.Module:
    """Build the model named by ``config.name`` (one of :data:`MODELS`).

    Raises ``ValueError`` for an unknown name (listing the known ones) and for sizes that cannot work.
    """
    name = config.name.lower().replace("-", "_")
    if name not in MODELS:
        raise ValueError(f"Unknown model {config.name!r}. Known models: {', '.join(MODELS)}.")
    common = dict(embed_dim=config.embed_dim, hidden_size=config.hidden_size, dropout=config.dropout,
                  num_classes=config.num_classes, pad_idx=config.pad_idx)
    if MODELS[name] is BagOfEmbeddings:
        if config.bidirectional or config.read_padded_last_step:
            raise ValueError("bag_of_embeddings has no direction or last step: leave bidirectional and "
                             "read_padded_last_step unset.")
        return BagOfEmbeddings(config.vocab_size, num_layers=config.layers, **common)
    return MODELS[name](config.vocab_size, num_layers=config.num_layers, bidirectional=config.bidirectional,
                        read_padded_last_step=config.read_padded_last_step, **common)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars (parameters with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def check_model_names(names: Sequence[str]) -> list[str]:
    """``names`` as a list when each is a key of :data:`MODELS`; else a ``ValueError`` listing the known ones."""
    names = list(names)
    if not names:
        raise ValueError(f"Name at least one model: {', '.join(MODELS)}.")
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise ValueError(f"Unknown model(s) {unknown}. Known models: {', '.join(MODELS)}.")
    return names


def parameter_count(config: ModelConfig) -> int:
    """Trainable scalars of the model ``config`` builds, without building it for real (meta tensors: no
    memory, no draw from the random generators)."""
    with torch.device("meta"):
        return count_parameters(build_model(config))
