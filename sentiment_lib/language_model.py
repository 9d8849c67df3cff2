"""Learning from the unlabelled reviews: an LSTM language model pre-trained on the training reviews plus the
unlabelled ones (never validation or test text), whose embedding and LSTM then start a classifier (Dai & Le
2015, "LM-LSTM"; Howard & Ruder 2018).

The model reads a stream of token ids (the reviews one after another, ``PAD`` between them) and predicts each
next token: embedding (V, E) → LSTM (E → H) → an adaptive softmax (Grave et al. 2017) over the vocabulary,
whose ids are sorted by frequency: a head for the most frequent words and two smaller tail clusters, so most
tokens cost a product with a few thousand rows instead of V — several times faster than a full softmax tied to
the embedding (docs/measurements.md); the cluster projections cannot share the embedding, so the weights are
not tied. The embedding is sparse (``SparseAdam``): a step touches only the rows it read.

- :func:`token_stream` / :func:`pretrain` train it with truncated back-propagation through time, keeping a
  held-out slice of the unlabelled text for the perplexity curve;
- :func:`pretrain_for_run` is what notebook 02 calls: the corpus of :func:`~sentiment_lib.embeddings.
  pretrain_corpus`, the embedding started from the run's word2vec vectors, the result cached by corpus and
  settings;
- a backward model (``pretrain(..., backward=True)``: the same text read right to left, each previous token
  predicted) on the forward model's embedding, kept fixed, is stored beside it (:func:`with_backward`);
- :func:`start_from_language_model` copies the weights into a classifier (one LSTM layer of the same sizes; a
  bidirectional one takes its right-to-left half from the backward model); :func:`sample` (and
  :func:`~sentiment_lib.embeddings.nearest_words` on its embedding) shows what it learned.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .text import PAD, Vocab

BPTT = 64          # tokens per truncated back-propagation window
BATCH = 32         # parallel streams
LR = 2e-3
CLIP = 0.25
HELD_OUT = 0.02    # share of the stream (its end: unlabelled text) kept for the perplexity curve
POINTS = 8         # perplexity measurements per epoch
# AdamW's peak rate when a classifier fine-tunes from the language model (04's ladder): chosen on `quick`
# validation loss (docs/provenance.md, "Constants chosen on validation").
FINE_TUNE_LR = 2e-3
VERSION = 2        # bump when the architecture or the training changes (invalidates cached models)


def cutoffs(vocab_size: int) -> list[int]:
    """Adaptive-softmax cluster boundaries for a frequency-sorted vocabulary: 2,000 / 10,000 words (at most a
    tenth / a half of the vocabulary)."""
    first = max(2, min(2000, vocab_size // 10))
    second = max(first + 1, min(10000, vocab_size // 2))
    return [first, second] if second < vocab_size - 1 else [first]


class LanguageModel(nn.Module):
    """Next-token LSTM: embedding (V, E) → LSTM (E → H) → adaptive softmax.

    Args: vocab_size V, embed_dim E, hidden_size H, dropout on the embeddings and the LSTM outputs.
    ``forward(tokens (B, T), state)`` → ``(outputs (B, T, H), state)``; :meth:`loss` → mean negative
    log-likelihood of the next tokens; :meth:`log_probs` → (N, V).
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, dropout: float = 0.1):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD, sparse=True)
        self.rnn = nn.LSTM(embed_dim, hidden_size, batch_first=True)
        self.output = nn.AdaptiveLogSoftmaxWithLoss(hidden_size, vocab_size, cutoffs(vocab_size), div_value=4.0)
        self.dropout = nn.Dropout(dropout)

    def forward(self, tokens: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):
        outputs, state = self.rnn(self.dropout(self.embedding(tokens)), state)
        return self.dropout(outputs), state

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.output(outputs.reshape(-1, outputs.size(-1)), targets.reshape(-1)).loss

    def log_probs(self, outputs: torch.Tensor) -> torch.Tensor:
        return self.output.log_prob(outputs.reshape(-1, outputs.size(-1)).float())


@dataclass
class LanguageModelReport:
    """What pre-training did: sizes, tokens, time, and the perplexity curve (``curve``: one dict per point with
    ``tokens`` seen, ``train_perplexity`` since the last point and ``heldout_perplexity``)."""

    vocab_size: int
    embed_dim: int
    hidden_size: int
    epochs: int
    train_tokens: int
    heldout_tokens: int
    seconds: float = 0.0
    tokens_per_second: float = 0.0
    precision: str = "float32"
    curve: list[dict[str, float]] = field(default_factory=list)
    cached: bool = False
    backward: "LanguageModelReport | None" = None  # the backward model's (LM_BACKWARD), if one was trained
    direction: str = "forward"  # "backward": it read each review right to left

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> dict[str, Any]:
        """What ``metrics.json`` records: the report without its curve, with the last held-out perplexity (and
        the backward model's the same way)."""
        return ({k: v for k, v in self.as_dict().items() if k not in ("curve", "backward")}
                | {"heldout_perplexity": self.curve[-1]["heldout_perplexity"] if self.curve else float("nan"),
                   "backward": self.backward.summary() if self.backward else None})

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "LanguageModelReport":
        """The report :meth:`as_dict` gave (its backward report too); not :meth:`summary`'s, which drops the
        curve."""
        backward = values.get("backward")
        return cls(**{**values, "backward": cls.from_dict(backward) if backward else None})


def token_stream(encoded: Sequence[np.ndarray]) -> np.ndarray:
    """The reviews' ids one after another with ``PAD`` after each: shape (Σ (len + 1),), int64."""
    if not encoded:
        raise ValueError("No text to pre-train the language model on: give at least one encoded review.")
    return np.concatenate([np.append(np.asarray(ids, dtype=np.int64), PAD) for ids in encoded])


def _batches(stream: np.ndarray, batch: int) -> torch.Tensor:
    """``stream`` cut into ``batch`` parallel rows: (batch, len // batch)."""
    width = len(stream) // batch
    if width < 2:
        raise ValueError(f"The language model's corpus has {len(stream)} tokens, too few for {batch} streams; "
                         "pre-train on more text (PRETRAIN_REVIEWS) or set LM_EPOCHS=0.")
    return torch.from_numpy(stream[: width * batch].reshape(batch, width))


def _detach(state):
    return tuple(s.detach() for s in state)


def _windows(rows: torch.Tensor, bptt: int = BPTT):
    """Truncated-BPTT windows of ``rows`` (B, W): ``(inputs (B, t), next tokens (B, t))``, t ≤ ``bptt``."""
    for start in range(0, rows.size(1) - 1, bptt):
        y = rows[:, start + 1:start + 1 + bptt]
        yield rows[:, start:start + y.size(1)], y


@torch.no_grad()
def perplexity(model: LanguageModel, rows: torch.Tensor, amp_dtype: str | None = None, bptt: int = BPTT) -> float:
    """exp(mean next-token cross-entropy) of ``model`` over ``rows`` (B, W)."""
    was = model.training
    model.eval()
    total, count, state = 0.0, 0, None
    for x, y in _windows(rows, bptt):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp_dtype == "bfloat16"):
            outputs, state = model(x, state)
            total += model.loss(outputs, y).item() * y.numel()
        count += y.numel()
    model.train(was)
    return math.exp(total / max(count, 1))


def pretrain(encoded: Sequence[np.ndarray], vocab_size: int, embed_dim: int, hidden_size: int, epochs: int,
             seed: int, vectors: np.ndarray | None = None, amp_dtype: str | None = None,
             progress: bool = False, backward: bool = False,
             train_embedding: bool = True) -> tuple[dict[str, torch.Tensor], LanguageModelReport]:
    """Train a :class:`LanguageModel` on ``encoded`` (reviews' ids; the last :data:`HELD_OUT` of the stream is
    held out for perplexity) for ``epochs`` passes; the embedding starts from ``vectors`` (V, E) when given.
    ``backward``: read each review right to left (the model predicts each previous token); ``train_embedding``
    False keeps the embedding at ``vectors`` (a backward model that shares a forward model's embedding).
    Returns the weights (CPU) and a :class:`LanguageModelReport`."""
    if epochs < 1:
        raise ValueError(f"LM_EPOCHS must be >= 1 to pre-train, got {epochs}.")
    if not train_embedding and vectors is None:
        raise ValueError("train_embedding=False keeps the embedding where it starts: give the vectors to keep.")
    torch.manual_seed(seed)
    stream = token_stream([np.asarray(ids)[::-1] for ids in encoded] if backward else encoded)
    cut = int(len(stream) * (1 - HELD_OUT))
    train_rows, held_rows = _batches(stream[:cut], BATCH), _batches(stream[cut:], BATCH)
    model = LanguageModel(vocab_size, embed_dim, hidden_size)
    if vectors is not None:
        with torch.no_grad():
            model.embedding.weight.copy_(torch.as_tensor(vectors, dtype=torch.float32))
            model.embedding.weight[PAD].zero_()
    dense = [p for name, p in model.named_parameters() if not name.startswith("embedding.")]
    optimizers = [torch.optim.Adam(dense, lr=LR)]
    if train_embedding:
        optimizers.append(torch.optim.SparseAdam(list(model.embedding.parameters()), lr=LR))
    else:
        model.embedding.weight.requires_grad_(False)
    windows = list(_windows(train_rows))
    every = max(1, len(windows) // POINTS)
    report = LanguageModelReport(vocab_size, embed_dim, hidden_size, epochs, int(train_rows.numel()),
                                 int(held_rows.numel()), precision=amp_dtype or "float32",
                                 direction="backward" if backward else "forward")
    report.curve.append({"tokens": 0, "train_perplexity": float("nan"),
                         "heldout_perplexity": perplexity(model, held_rows, amp_dtype)})
    start_time, seen = time.perf_counter(), 0
    for epoch in range(epochs):
        state, since_loss, since_tokens = None, 0.0, 0
        bar = tqdm(windows, desc=f"language model, epoch {epoch + 1}", disable=not progress, leave=False)
        for step, (x, y) in enumerate(bar, 1):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp_dtype == "bfloat16"):
                outputs, state = model(x, state)
                loss = model.loss(outputs, y)
            for optimizer in optimizers:
                optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(dense, CLIP)
            for optimizer in optimizers:
                optimizer.step()
            state = _detach(state)
            since_loss += loss.item() * y.numel()
            since_tokens += y.numel()
            seen += y.numel()
            if step % every == 0 or step == len(windows):
                report.curve.append({"tokens": seen, "train_perplexity": math.exp(since_loss / since_tokens),
                                     "heldout_perplexity": perplexity(model, held_rows, amp_dtype)})
                since_loss, since_tokens = 0.0, 0
                bar.set_postfix(heldout_ppl=f"{report.curve[-1]['heldout_perplexity']:.0f}")
    report.seconds = time.perf_counter() - start_time
    report.tokens_per_second = seen / report.seconds if report.seconds else 0.0
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}, report


def pretrain_for_run(frame, unlabelled, vocab: Vocab, params, vectors: np.ndarray | None, cache_dir=None,
                     progress: bool = False) -> tuple[dict[str, torch.Tensor] | None, LanguageModelReport | None]:
    """Notebook 02's language model: ``(None, None)`` when ``params.lm_epochs`` is 0; else :func:`pretrain` on
    the word-vector corpus (the training subset plus ``PRETRAIN_REVIEWS`` unlabelled reviews; never validation
    or test text), ``embed_dim`` the run's, ``hidden_size=params.lm_hidden``, the embedding started from the
    run's word2vec ``vectors``. With ``params.lm_backward`` a backward model too, on the same text read right to
    left and on the forward model's embedding (kept fixed): the weights then hold both (:func:`with_backward`)
    and ``report.backward`` its own report. Each model is cached in ``cache_dir`` by corpus, vocabulary, vectors
    and settings."""
    from .config import choose_device, choose_precision
    from .embeddings import corpus_key, pretrain_corpus
    from .text import tokenize_many

    if params.lm_epochs == 0:
        return None, None
    texts = pretrain_corpus(frame, unlabelled, params.pretrain_reviews, params.seed)
    amp = choose_precision(params.precision, choose_device("cpu"))
    key = corpus_key([vocab.fingerprint(), params.embed_dim, params.lm_hidden, params.lm_epochs, params.seed,
                      params.remove_stopwords, amp, BPTT, BATCH, LR, VERSION], texts,
                     b"" if vectors is None else np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
    encoded: list[np.ndarray] = []

    def corpus() -> list[np.ndarray]:  # tokenised only when a model must be trained
        if not encoded:
            tokens = tokenize_many(texts, params.remove_stopwords, cache_dir=cache_dir, progress=progress)
            encoded.extend(vocab.encode(t) for t in tokens if t)
        return encoded

    state, report = _cached(cache_dir, f"language-model-{key}.pt", lambda: pretrain(
        corpus(), len(vocab), params.embed_dim, params.lm_hidden, params.lm_epochs, params.seed, vectors, amp,
        progress))
    if not params.lm_backward:
        return state, report
    embedding = state["embedding.weight"].numpy()  # the backward model reads it: part of its key
    backward_key = corpus_key([key, "backward"], [], np.ascontiguousarray(embedding, dtype=np.float32).tobytes())
    backward, report.backward = _cached(cache_dir, f"language-model-{backward_key}.pt", lambda: pretrain(
        corpus(), len(vocab), params.embed_dim, params.lm_hidden, params.lm_epochs, params.seed,
        embedding, amp, progress, backward=True, train_embedding=False))
    return with_backward(state, backward), report


def _cached(cache_dir, name: str, train) -> tuple[dict[str, torch.Tensor], LanguageModelReport]:
    """The weights and report of ``cache_dir/name`` when it exists (``report.cached``); else ``train()``'s,
    saved there (no cache without ``cache_dir``)."""
    from .files import atomic_path

    cached = Path(cache_dir) / name if cache_dir is not None else None
    if cached is not None and cached.exists():
        saved = torch.load(cached, map_location="cpu", weights_only=True)
        return saved["state"], replace(LanguageModelReport.from_dict(json.loads(saved["report"])), cached=True)
    state, report = train()
    if cached is not None:
        with atomic_path(cached) as tmp:
            torch.save({"state": state, "report": json.dumps(report.as_dict())}, tmp)
    return state, report


def sizes(state: dict[str, torch.Tensor]) -> tuple[int, int, int]:
    """``(vocab_size, embed_dim, hidden_size)`` of a language model's weights."""
    vocab_size, embed_dim = state["embedding.weight"].shape
    return int(vocab_size), int(embed_dim), int(state["rnn.weight_hh_l0"].shape[1])


BACKWARD = "backward."  # prefix of a backward model's weights kept beside the forward model's (with_backward)


def with_backward(state: dict[str, torch.Tensor], backward: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """One language model's weights holding a forward model ``state`` and a ``backward`` one (trained with
    :func:`pretrain` ``backward=True`` on the forward model's embedding, kept fixed): the forward keys as they
    are, the backward model's LSTM and softmax under :data:`BACKWARD`. A bidirectional classifier starts from it."""
    if sizes(backward) != sizes(state):
        raise ValueError(f"The backward language model's sizes (vocabulary, embedding, hidden) {sizes(backward)} "
                         f"differ from the forward model's {sizes(state)}: pre-train it with the forward model's.")
    if not torch.equal(state["embedding.weight"], backward["embedding.weight"]):
        raise ValueError("The backward language model must read the forward model's embedding: pre-train it with "
                         "vectors=the forward embedding and train_embedding=False.")
    return {**state, **{BACKWARD + k: v for k, v in backward.items() if not k.startswith("embedding.")}}


def has_backward(state: dict[str, torch.Tensor] | None) -> bool:
    """Whether the language model's weights ``state`` hold a backward model (:func:`with_backward`)."""
    return state is not None and f"{BACKWARD}rnn.weight_ih_l0" in state


def forward_part(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The forward model's weights of ``state`` (without a :data:`BACKWARD` part)."""
    return {k: v for k, v in state.items() if not k.startswith(BACKWARD)}


def load(state: dict[str, torch.Tensor]) -> LanguageModel:
    """A :class:`LanguageModel` (eval mode) holding the forward model of ``state``."""
    model = LanguageModel(*sizes(state))
    model.load_state_dict(forward_part(state))
    return model.eval()


def start_from_language_model(model: nn.Module, state: dict[str, torch.Tensor] | None) -> None:
    """Copy the language model's embedding and LSTM weights into classifier ``model`` (a
    :class:`~sentiment_lib.models.RecurrentClassifier` with one LSTM layer of the same sizes; a bidirectional
    one takes its right-to-left weights from the backward model of :func:`with_backward`); ``ValueError`` naming
    the fix otherwise."""
    if state is None:
        raise ValueError("This run directory has no language model (02 ran with LM_EPOCHS=0): rerun "
                         "notebooks/02_preprocessing.ipynb with LM_EPOCHS >= 1, or train without the LM start.")
    vocab_size, embed_dim, hidden = sizes(state)
    rnn = getattr(model, "rnn", None)
    if not isinstance(rnn, nn.LSTM) or rnn.num_layers != 1:
        raise ValueError("Only a one-layer LSTM classifier (lstm, attention_lstm) can start from the language "
                         "model.")
    if rnn.bidirectional and not has_backward(state):
        raise ValueError("A bidirectional classifier starts its right-to-left LSTM from a backward language model, "
                         "and this one reads left to right only: pre-train a backward one (with_backward), or "
                         "train one direction (bidirectional=False).")
    if (model.embedding.num_embeddings, model.embedding.embedding_dim, rnn.hidden_size) != (vocab_size, embed_dim,
                                                                                          hidden):
        raise ValueError(f"The classifier (vocabulary {model.embedding.num_embeddings}, embedding "
                         f"{model.embedding.embedding_dim}, hidden {rnn.hidden_size}) does not match the language "
                         f"model ({vocab_size}, {embed_dim}, {hidden}): build it with HIDDEN_SIZE={hidden} and the "
                         "run's EMBED_DIM.")
    with torch.no_grad():
        model.embedding.weight.copy_(state["embedding.weight"])
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(rnn, name).copy_(state[f"rnn.{name}"])
            if rnn.bidirectional:
                getattr(rnn, f"{name}_reverse").copy_(state[f"{BACKWARD}rnn.{name}"])


@torch.no_grad()
def sample(state: dict[str, torch.Tensor], vocab: Vocab, prompt: Sequence[str], length: int = 20,
           temperature: float = 0.8, seed: int = 0) -> str:
    """A continuation of ``prompt`` (tokens), sampled from the language model: the prompt and ``length`` more
    tokens as text (``<unk>`` kept; the review boundary shown as ``|``)."""
    model = load(state)
    generator = torch.Generator().manual_seed(seed)
    ids = torch.as_tensor(vocab.encode(list(prompt)), dtype=torch.long)[None, :]
    outputs, hidden = model(ids)
    out = list(prompt)
    for _ in range(length):
        probs = torch.softmax(model.log_probs(outputs[:, -1:])[0] / temperature, dim=-1)
        token = int(torch.multinomial(probs, 1, generator=generator))
        out.append("|" if token == PAD else vocab.itos[token])
        outputs, hidden = model(torch.tensor([[token]]), hidden)
    return " ".join(out)
