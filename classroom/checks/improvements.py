"""Hidden checks of notebook 04 (improvements)."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from sentiment_lib import adversarial, linear, models

from ._common import Failed, _call, _close, _own, _require, _shaped, partial



def _states(seed: int, lengths: Sequence[int], hidden: int = 3, negative: bool = False):
    """Random states (B, T, H) padded two steps past the longest review, the lengths and the padding mask;
    ``negative``: every state below 0 (as tanh outputs can be), so a padding of 0 would win a max."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(lengths)
    outputs = torch.randn(len(lengths), int(lengths.max()) + 2, hidden, generator=g)
    if negative:
        outputs = -outputs.abs() - 0.1
    return outputs, lengths, torch.arange(outputs.size(1))[None, :] >= lengths[:, None]


def check_masked_mean_max(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    _own(fn, "masked_mean_max")
    for seed, lengths, negative in [(0, (4, 1, 3), False), (1, (2, 2), False), (2, (5, 3, 1, 2), False),
                                    (3, (3, 1, 2), True)]:
        outputs, lens, pad = _states(seed, lengths, negative=negative)
        expected = models.masked_mean_max_pool(outputs, lens)
        answers = []
        for fill in (0.0, 1e6, -1e6):
            noisy = outputs.clone()
            noisy[pad] = fill
            answers.append(_call(fn, "masked_mean_max", noisy, lens.clone()))
        if all(isinstance(a, torch.Tensor) and a.shape == expected.shape for a in answers) and \
                not all(torch.allclose(a.float(), answers[0].float(), atol=1e-4) for a in answers[1:]):
            raise Failed("masked_mean_max changes when the padded steps change: the mean and the max must "
                         "use real steps only (divide by the length, keep padding out of the max).")
        got, hidden = answers[0], outputs.size(-1)
        _shaped(got, expected, "masked_mean_max ([mean over real steps, max over real steps], concatenated)")
        _require(torch.allclose(got[:, :hidden].float(), expected[:, :hidden], atol=1e-4),
                 "masked_mean_max's first half, the mean, differs: sum each review's real steps and divide by its "
                 "length (not by the padded width).")
        _require(torch.allclose(got[:, hidden:].float(), expected[:, hidden:], atol=1e-4),
                 "masked_mean_max's second half, the max, differs: take it over real steps only, padding filled with "
                 "-inf (not 0: every real state can be negative).")


def check_attention_weights(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    _own(fn, "attention_weights")
    # the last case's scores are near 100: exp overflows float32 (above 88) unless each row's max is subtracted
    for seed, lengths, offset in [(0, (4, 1, 3), 0.0), (3, (2, 6, 6), 0.0), (5, (3, 1, 5), 100.0)]:
        g = torch.Generator().manual_seed(seed)
        lens = torch.tensor(lengths)
        scores = torch.randn(len(lens), int(lens.max()) + 1, generator=g) * 3 + offset
        pad = torch.arange(scores.size(1))[None, :] >= lens[:, None]
        scores[pad] = 50.0  # large scores on padding must still get no weight
        got = _call(fn, "attention_weights", scores.clone(), lens.clone())
        _require(isinstance(got, torch.Tensor) and got.shape == scores.shape,
                 f"attention_weights must return a tensor of the scores' shape {tuple(scores.shape)}.")
        _require(bool(torch.isfinite(got).all()),
                 "attention_weights gives NaN or inf for large scores: exp overflows. Subtract each review's largest "
                 "real score before exp, or use torch.softmax with -inf on padding.")
        _require(bool((got[pad] == 0).all()), "attention_weights gives weight to padding: it must be exactly 0 there.")
        _require(torch.allclose(got.sum(dim=1), torch.ones(len(lens)), atol=1e-5),
                 "Each review's weights must sum to 1.")
        _close(got, models.masked_softmax(scores, lens), "attention_weights")



def _embedded_batch(seed: int, lengths: Sequence[int], dim: int = 4):
    """Embeddings (B, T, E) whose reviews differ in scale, a gradient (B, T, E), both non-zero on padding, and
    the real-token mask (B, T)."""
    g = torch.Generator().manual_seed(seed)
    lens = torch.tensor(lengths)
    width = int(lens.max()) + 1
    scales = torch.tensor([0.5, 3.0, 1.0, 8.0][: len(lens)])[:, None, None]
    embedded = torch.randn(len(lens), width, dim, generator=g) * scales
    grad = torch.randn(len(lens), width, dim, generator=g) * scales.flip(0)
    return embedded, grad, torch.arange(width)[None, :] < lens[:, None]


def check_perturb(fn: Callable[..., torch.Tensor]) -> float:
    _own(fn, "perturb")
    cases = [(0, (4, 1, 3), 0.5), (1, (2, 5), 1.0), (2, (3, 3, 1, 2), 0.02)]
    runs = []
    for seed, lengths, epsilon in cases:
        embedded, grad, mask = _embedded_batch(seed, lengths)
        expected = adversarial.perturbation(embedded, grad, mask, epsilon)
        leaf = embedded.clone().requires_grad_(True)  # a gradient could flow back into the embeddings
        got = _call(fn, "perturb", leaf, grad.clone(), mask.clone(), epsilon)
        _shaped(got, expected, "perturb (B, T, E)")
        runs.append((got, expected, mask))

    def direction() -> None:
        for got, expected, mask in runs:
            got = got.detach().float()
            _require(bool((got[~mask] == 0).all()), "direction: the perturbation must be 0 on padding (multiply the "
                                                     "gradient by the mask before normalising it).")
            unit = got / got.flatten(1).norm(dim=1).clamp_min(1e-12)[:, None, None]
            want = expected / expected.flatten(1).norm(dim=1).clamp_min(1e-12)[:, None, None]
            _require(torch.allclose(unit, want, atol=1e-5),
                     "direction: each review's perturbation must point along its gradient (the gradient itself, not "
                     "its sign), normalised over the review's real tokens.")

    def size() -> None:
        for got, expected, _ in runs:
            _require(torch.allclose(got.detach().float().flatten(1).norm(dim=1), expected.flatten(1).norm(dim=1),
                                    rtol=1e-4, atol=1e-6),
                     "size: each review's perturbation must have norm ε × that review's RMS word-vector norm (the "
                     "root of the mean squared norm of its real word vectors), the gradient normalised per review, "
                     "not over the batch.")

    def constant() -> None:
        _require(not any(got.requires_grad for got, _, _ in runs),
                 "no gradient may flow through the perturbation: detach the embeddings and the gradient "
                 "(.detach()) before computing it; the second pass treats it as a constant.")

    return partial("perturb", [("the direction", 1.0, direction), ("the size", 0.5, size),
                               ("a constant (detached)", 0.5, constant)])


def _count_cases():
    """Binary features (N, F), labels (N,), alpha: classes of unequal sizes and counts, features seen in one
    class only."""
    g = np.random.default_rng(3)
    cases = []
    for n, f, alpha in [(9, 5, 1.0), (14, 7, 0.5), (6, 4, 2.0)]:
        features = (g.random((n, f)) < 0.45).astype(np.float32)
        labels = np.array([1] * (n // 3) + [0] * (n - n // 3))
        features[labels == 0, 0] = 0.0  # feature 0: positive reviews only
        features[labels == 1, 1] = 0.0  # feature 1: negative reviews only
        features[labels == 1, 2] = 1.0
        cases.append((features, labels, alpha))
    return cases


def check_log_count_ratio(fn: Callable[..., np.ndarray]) -> None:
    _own(fn, "log_count_ratio")
    for features, labels, alpha in _count_cases():
        expected = linear.nb_ratio(features, labels, alpha)
        got = _call(fn, "log_count_ratio", features.copy(), labels.copy(), alpha)
        got = np.asarray(got, dtype=float)
        _require(got.shape == expected.shape, f"log_count_ratio must return one ratio per feature, shape "
                                              f"{expected.shape}, got {got.shape}.")
        _require(bool(np.isfinite(got).all()), "The ratio is infinite for a feature seen in one class only: add alpha "
                                               "to both classes' counts before the logs (smoothing).")
        if np.allclose(got, -expected):
            raise Failed("The ratio is inverted: positive reviews (label 1) on top, log(p̂ / q̂).")
        shift = got - expected
        if np.allclose(shift, shift[0]) and not np.allclose(shift, 0):
            raise Failed("Every feature's ratio is off by the same amount: divide each class's smoothed counts by "
                         "their sum (‖p + α‖₁, ‖q + α‖₁), not by the number of reviews or nothing.")
        _require(np.allclose(got, expected, atol=1e-6), f"With alpha={alpha} the ratio differs: add alpha to every "
                                                       "feature's count in each class, then normalise and take the log.")
