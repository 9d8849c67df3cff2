"""Adversarial training on the word embeddings (Miyato, Dai & Goodfellow 2017, "AT").

Each training step adds a second loss: the same reviews, with every word vector pushed a little in the
direction that raises the loss most. With ``e`` the (B, T, E) output of the model's embedding layer and ``g``
the gradient of the clean loss with respect to it,

    r_i = epsilon * scale_i * g_i / ||g_i||,    scale_i = sqrt(mean over review i's real tokens of ||e_t||^2)

per review ``i`` (norms over its real tokens and all E channels; padding gets no perturbation), and the step
minimises ``loss(e) + loss(e + r)``. The size is relative: ``epsilon`` is the perturbation's L2 norm over
the whole review in units of that review's typical word-vector length, so it means the same whatever the
embedding's scale — the role that normalising the embeddings to zero mean and unit variance plays in the
paper (there, epsilon = 5 on 256-dimensional unit-variance vectors is 5 / sqrt(256) ≈ 0.3 of a word vector;
:data:`DEFAULT_EPSILON`, chosen on validation, is of that order). The perturbation is a constant (no gradient flows through ``r``), as
in the paper; it costs a second forward and backward pass per step, about twice the training time.

The models call their ``embedding`` module exactly once per forward, on the (B, T) ids
(:mod:`sentiment_lib.models`), so a forward hook on it sees the whole batch in its own layout: that is all this
module relies on.

**Virtual adversarial training** (VAT, same paper) needs no label, so it can learn from the unlabelled reviews.
Its loss is how far the model's prediction moves when the word vectors are pushed in the direction that moves
it most: ``KL(p(· | e) ‖ p(· | e + r_v))`` with ``p(· | e)`` held fixed. That direction is found by one power
iteration: push the embeddings a tiny random step ``d`` (:data:`VAT_XI` in the same relative units), take the
gradient of the KL divergence with respect to ``d``, and scale it like ``r`` above
(:func:`virtual_adversarial_loss`). It costs a forward pass without gradients and two forward and backward
passes per unlabelled batch.

**Entropy minimisation** (:func:`entropy`, :func:`unlabelled_loss`) adds the mean entropy of the predictions on
the same unlabelled batch to the loss: the classifier is pushed to be confident on reviews it has no label for,
which moves its decision boundary into regions with few reviews. Sachan, Zaheer & Salakhutdinov (2019) train
with cross-entropy, AT, VAT and this term together.
"""
from __future__ import annotations

from contextlib import contextmanager, nullcontext
from typing import Callable, ContextManager, Iterator

import torch
from torch import nn

# Perturbation norm per review, in word-vector lengths. Chosen on the validation loss of 04's language-model-start
# row on the quick run, test not read (docs/provenance.md, "Constants chosen on validation").
DEFAULT_EPSILON = 0.25
# Size of VAT's random first step, in the same units: small enough that the KL divergence is locally quadratic.
VAT_XI = 0.01
# Weight of entropy minimisation's term on the unlabelled reviews: 0.1 against Sachan, Zaheer & Salakhutdinov's
# (2019) 1.0, chosen on the validation loss of 04's EntMin rung on the quick run, test not read (docs/provenance.md).
ENTROPY_WEIGHT = 0.1


def perturbation(embedded: torch.Tensor, grad: torch.Tensor, mask: torch.Tensor, epsilon: float) -> torch.Tensor:
    """The adversarial perturbation (B, T, E) for embeddings ``embedded`` (B, T, E) with loss gradient ``grad``
    (B, T, E) and real-token ``mask`` (B, T) bool: ``epsilon`` × the review's RMS word-vector norm along the
    normalised gradient, zero at padding. Detached (a constant for the second pass)."""
    if epsilon < 0:
        raise ValueError(f"epsilon must be >= 0, got {epsilon}: e.g. {DEFAULT_EPSILON}.")
    if grad is None:
        raise ValueError("The embedding output has no gradient (a frozen embedding?): adversarial training needs "
                         "a trainable embedding layer; train with adversarial=0 otherwise.")
    weights = mask.unsqueeze(-1).float()  # (B, T, 1)
    g = grad.detach().float() * weights
    e = embedded.detach().float() * weights
    tokens = weights.sum(dim=(1, 2)).clamp_min(1.0)  # (B,) real tokens per review
    scale = (e.pow(2).sum(dim=(1, 2)) / tokens).sqrt()  # (B,) RMS word-vector norm
    g_norm = g.pow(2).sum(dim=(1, 2)).sqrt().clamp_min(1e-12)  # (B,)
    return (epsilon * (scale / g_norm))[:, None, None] * g


@contextmanager
def captured(embedding: nn.Embedding) -> Iterator[dict[str, torch.Tensor]]:
    """While active, the embedding's output keeps its gradient: ``found["embedded"]`` (B, T, E) and its
    ids ``found["ids"]`` (B, T) after a forward; ``ValueError`` if the model calls the layer more than once."""
    found: dict[str, torch.Tensor] = {}

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if "embedded" in found:
            raise ValueError("The model calls its embedding layer more than once per forward; adversarial "
                             "training needs one call on the (B, T) ids (see sentiment_lib.adversarial).")
        if output.requires_grad:
            output.retain_grad()
        found.update(embedded=output, ids=inputs[0])

    handle = embedding.register_forward_hook(hook)
    try:
        yield found
    finally:
        handle.remove()


@contextmanager
def perturbed(embedding: nn.Embedding, r: torch.Tensor) -> Iterator[None]:
    """While active, the embedding's output (B, T, E) is returned as ``output + r``."""
    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
        if output.shape != r.shape:
            raise ValueError(f"The perturbation {tuple(r.shape)} does not match the embedding output "
                             f"{tuple(output.shape)}.")
        return output + r.to(output.dtype)

    handle = embedding.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def embedding_of(model: nn.Module) -> nn.Embedding:
    """The model's word embedding layer (``model.embedding``); ``ValueError`` naming the fix otherwise."""
    layer = getattr(model, "embedding", None)
    if not isinstance(layer, nn.Embedding):
        raise ValueError(f"{type(model).__name__} has no `embedding` nn.Embedding layer to perturb: adversarial "
                         "training needs one: train this model with adversarial=0 (TrainConfig, "
                         "experiment.Configuration).")
    return layer


def adversarial_step(model: nn.Module, batch, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                     epsilon: float, autocast: Callable[[], ContextManager] = nullcontext
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """The backward passes of one adversarial training step: the clean loss, then the loss on embeddings
    perturbed along its gradient (:func:`perturbation`); gradients accumulate in the parameters.

    ``batch`` has ``tokens`` (B, T), ``lengths`` (B,) and ``labels`` (B,); ``autocast()`` gives the context
    each forward runs in. Returns the clean logits and the clean loss.
    """
    embedding = embedding_of(model)
    with captured(embedding) as found, autocast():
        logits = model(batch.tokens, batch.lengths)
    loss = loss_fn(logits.float(), batch.labels)
    loss.backward()
    embedded = found["embedded"]
    r = perturbation(embedded, embedded.grad, _real_tokens(embedded, batch.lengths), epsilon)
    with perturbed(embedding, r), autocast():
        adversarial_logits = model(batch.tokens, batch.lengths)
    loss_fn(adversarial_logits.float(), batch.labels).backward()
    return logits, loss


def _kl_from_logits(clean: torch.Tensor, moved: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of KL(p_clean ‖ p_moved) for logits (B,) (binary: sigmoid) or (B, C) (softmax);
    ``clean`` is held fixed (no gradient flows into it)."""
    clean = clean.detach().float()
    moved = moved.float()
    if clean.dim() == 1:
        p = torch.sigmoid(clean)
        log_p, log_not_p = nn.functional.logsigmoid(clean), nn.functional.logsigmoid(-clean)
        log_q, log_not_q = nn.functional.logsigmoid(moved), nn.functional.logsigmoid(-moved)
        return (p * (log_p - log_q) + (1 - p) * (log_not_p - log_not_q)).mean()
    log_p, log_q = torch.log_softmax(clean, dim=-1), torch.log_softmax(moved, dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1).mean()


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of the prediction's entropy (nats) for logits (B,) (binary: sigmoid) or (B, C)
    (softmax): what entropy minimisation lowers on reviews without labels (Grandvalet & Bengio 2005)."""
    logits = logits.float()
    if logits.dim() == 1:
        p = torch.sigmoid(logits)
        return -(p * nn.functional.logsigmoid(logits) + (1 - p) * nn.functional.logsigmoid(-logits)).mean()
    log_p = torch.log_softmax(logits, dim=-1)
    return -(log_p.exp() * log_p).sum(dim=-1).mean()


def _real_tokens(embedded: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The (B, T) bool mask of real tokens for embeddings (B, T, E) of reviews of ``lengths`` (B,)."""
    positions = torch.arange(embedded.size(1), device=embedded.device)
    return positions[None, :] < lengths.to(embedded.device)[:, None]


def _vat_from(model: nn.Module, embedding: nn.Embedding, tokens: torch.Tensor, lengths: torch.Tensor,
              clean: torch.Tensor, embedded: torch.Tensor, epsilon: float, xi: float,
              autocast: Callable[[], ContextManager]) -> torch.Tensor:
    """VAT's loss given the clean logits (B,) or (B, C) and the clean embeddings (B, T, E), both held fixed."""
    mask = _real_tokens(embedded, lengths)
    start = perturbation(embedded, torch.randn_like(embedded, dtype=torch.float32), mask, xi).requires_grad_()
    with perturbed(embedding, start), autocast():
        nearby = model(tokens, lengths)
    (direction,) = torch.autograd.grad(_kl_from_logits(clean, nearby), start)
    r = perturbation(embedded, direction, mask, epsilon)
    with perturbed(embedding, r), autocast():
        moved = model(tokens, lengths)
    return _kl_from_logits(clean, moved)


def _check_vat(epsilon: float, xi: float) -> None:
    if epsilon <= 0 or xi <= 0:
        raise ValueError(f"VAT needs epsilon > 0 and xi > 0, got epsilon={epsilon}, xi={xi}: e.g. "
                         f"epsilon={DEFAULT_EPSILON}, xi={VAT_XI}.")


def virtual_adversarial_loss(model: nn.Module, tokens: torch.Tensor, lengths: torch.Tensor, epsilon: float,
                             xi: float = VAT_XI, autocast: Callable[[], ContextManager] = nullcontext
                             ) -> torch.Tensor:
    """VAT's loss on a batch of reviews without labels: tokens (B, T), lengths (B,); a scalar tensor whose
    gradient reaches the model's parameters (call ``.backward()``).

    The model's prediction on the clean embeddings is the fixed target; one power iteration from a random
    direction of size ``xi`` finds the perturbation that moves it most; the loss is the KL divergence between
    the clean prediction and the prediction on embeddings pushed by ``epsilon`` along it (sizes relative to the
    review's RMS word-vector norm, as in :func:`perturbation`; zero on padding).
    """
    _check_vat(epsilon, xi)
    embedding = embedding_of(model)
    with torch.no_grad(), captured(embedding) as found, autocast():
        clean = model(tokens, lengths)
    return _vat_from(model, embedding, tokens, lengths, clean, found["embedded"].detach(), epsilon, xi, autocast)


def unlabelled_loss(model: nn.Module, tokens: torch.Tensor, lengths: torch.Tensor, vat: float = 0.0,
                    entropy_weight: float = 0.0, xi: float = VAT_XI,
                    autocast: Callable[[], ContextManager] = nullcontext) -> torch.Tensor:
    """What a batch of reviews without labels (tokens (B, T), lengths (B,)) adds to a training step: VAT's loss
    (:func:`virtual_adversarial_loss`, when ``vat`` > 0) plus ``entropy_weight`` × the mean :func:`entropy` of
    the clean predictions (entropy minimisation, when > 0: it pushes the decision boundary away from the
    unlabelled reviews). With entropy minimisation the clean forward keeps its gradient (one more backward
    through it) and VAT reuses its prediction as the fixed target. A scalar tensor; ``ValueError`` when both
    are 0 or one is negative."""
    if vat < 0 or entropy_weight < 0 or (vat == 0 and entropy_weight == 0):
        raise ValueError(f"unlabelled_loss needs vat > 0 or entropy_weight > 0 (neither negative), got vat={vat}, "
                         f"entropy_weight={entropy_weight}: e.g. vat=0.1, entropy_weight={ENTROPY_WEIGHT}.")
    if entropy_weight == 0:
        return virtual_adversarial_loss(model, tokens, lengths, vat, xi, autocast)
    embedding = embedding_of(model)
    with captured(embedding) as found, autocast():
        clean = model(tokens, lengths)
    loss = entropy_weight * entropy(clean)
    if vat > 0:
        _check_vat(vat, xi)
        loss = loss + _vat_from(model, embedding, tokens, lengths, clean.detach(), found["embedded"].detach(),
                                vat, xi, autocast)
    return loss
