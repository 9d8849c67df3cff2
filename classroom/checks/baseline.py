"""Hidden checks of notebook 03 (the baseline)."""
from __future__ import annotations

import copy
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from sentiment_lib import metrics, models, train, uncertainty
from sentiment_lib.batching import EncodedSplit, make_loader

from ._common import Failed, _call, _close, _own, _require, _shaped, partial



def _padded_lstm_batch(seed: int = 0, lengths: Sequence[int] = (5, 2, 7, 1), extra: int = 0):
    """An LSTM and a padded batch for it; ``extra`` padded steps after the longest review (a fixed width)."""
    g = torch.Generator().manual_seed(seed)
    lstm = nn.LSTM(3, 4, batch_first=True)
    with torch.no_grad():
        for p in lstm.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    lengths = torch.tensor(lengths)
    x = torch.randn(len(lengths), int(lengths.max()) + extra, 3, generator=g)
    x[torch.arange(x.size(1))[None, :] >= lengths[:, None]] = 0.0  # padding, as an embedding of PAD gives
    return lstm, x, lengths


def _same_rows_reordered(got: torch.Tensor, expected: torch.Tensor) -> bool:
    """Whether ``got`` holds the rows of ``expected`` (same shape) in another order."""
    if torch.allclose(got, expected):
        return False
    matches = [[j for j in range(len(expected)) if torch.allclose(row, expected[j])] for row in got]
    return all(matches) and len({m[0] for m in matches}) == len(expected)


def check_last_real_state(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    _own(fn, "last_real_state")
    # the first batch is padded past its longest review (a fixed width): reading step lengths[b] runs into padding
    for seed, lengths, extra in [(4, (2, 5, 1, 3), 2), (0, (5, 2, 7, 1), 0), (1, (3, 3), 0), (2, (1, 6, 6, 2, 4), 0)]:
        lstm, x, lens = _padded_lstm_batch(seed, lengths, extra)
        with torch.no_grad():
            outputs, _ = lstm(x)  # (B, T, H): padding runs through the recurrence here
            packed = nn.utils.rnn.pack_padded_sequence(x, lens, batch_first=True, enforce_sorted=False)
            _, (h_n, _) = lstm(packed)  # what packing reads: the state at each review's last real token
        got = _call(fn, "last_real_state", outputs.clone(), lens.clone())
        _shaped(got, h_n[-1], "last_real_state")
        got, rows = got.detach().float(), torch.arange(len(lens))
        for wrong, message in [
            (outputs[:, -1], "last_real_state reads the last padded step: read step lengths[b] - 1 of each review."),
            (outputs[rows, lens.clamp(max=outputs.size(1) - 1)],
             "last_real_state reads step lengths[b], one past the last real token: read step lengths[b] - 1."),
        ]:
            _require(not (torch.allclose(got, wrong) and not torch.allclose(wrong, h_n[-1])), message)
        _require(not _same_rows_reordered(got, h_n[-1]),
                 "last_real_state returns the right states in another order: keep the batch's order (undo any "
                 "sorting by length).")
        _close(got, h_n[-1], "last_real_state")


def _tiny_classifier(seed: int, dropout: float = 0.5) -> nn.Module:
    torch.manual_seed(seed)
    return models.LSTMClassifier(20, embed_dim=6, hidden_size=5, dropout=dropout)


def _tiny_loader(seed: int = 0, n: int = 24, batch_size: int = 8):
    g = np.random.default_rng(seed)
    ids = [g.integers(2, 20, size=int(k)).astype(np.int32) for k in g.integers(1, 9, size=n)]
    split = EncodedSplit(ids, g.integers(0, 2, size=n))
    return make_loader(split, batch_size, max_len=16, shuffle=False)


class _Probe(nn.Module):
    """Wraps a model and records, at every forward, whether gradients were on and the model in train mode."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner, self.calls = inner, []

    def forward(self, tokens, lengths):
        self.calls.append((torch.is_grad_enabled(), self.inner.training))
        return self.inner(tokens, lengths)


def check_evaluate(fn: Callable[..., dict]) -> None:
    _own(fn, "evaluate")
    # 17 reviews in batches of 8, 8 and 1: averaging per-batch means gives the last review the weight of eight
    model, loader = _tiny_classifier(0), _tiny_loader(0, n=17)
    expected = train.evaluate(model, loader)
    before = copy.deepcopy(model.state_dict())
    probe = _Probe(model)
    probe.train()
    got = _call(fn, "evaluate", probe, loader)
    _require(probe.calls, "evaluate never called the model.")
    _require(not any(grad for grad, _ in probe.calls),
             "evaluate computes gradients: run the loop under torch.no_grad() (or torch.inference_mode()).")
    _require(not any(training for _, training in probe.calls),
             "evaluate runs the model in train mode (dropout on): call model.eval() first.")
    _require(all(torch.equal(before[k], v) for k, v in model.state_dict().items()),
             "evaluate changed the model's weights: evaluation must not step an optimizer.")
    _require(all(p.grad is None for p in model.parameters()), "evaluate left gradients on the weights.")
    _require(isinstance(got, dict) and {"loss", "accuracy"} <= set(got),
             "evaluate must return a dict with 'loss' and 'accuracy'.")
    _require(abs(float(got["accuracy"]) - expected["accuracy"]) < 1e-6,
             "evaluate's accuracy differs: the share of all the loader's reviews predicted right (positive when the "
             "probability is at least 0.5), not an average of per-batch accuracies.")
    _require(abs(float(got["loss"]) - expected["loss"]) < 1e-4,
             "evaluate's loss differs: the mean binary cross-entropy per review, over the whole loader "
             "(weight each batch by its size).")


def check_train_step(fn: Callable[..., float]) -> None:
    _own(fn, "train_step")
    loader = _tiny_loader(1, n=16)
    batches = list(loader)
    theirs, ours = _tiny_classifier(3, dropout=0.0), _tiny_classifier(3, dropout=0.0)
    opt_theirs = torch.optim.Adam(theirs.parameters(), lr=0.05)
    opt_ours = torch.optim.Adam(ours.parameters(), lr=0.05)
    for step, batch in enumerate(batches):
        theirs.eval()  # the step itself must switch to train mode
        loss = _call(fn, "train_step", theirs, batch, opt_theirs, 0.1)
        expected = train.train_one_epoch(ours, [batch], opt_ours, None, grad_clip=0.1, progress=False)["loss"]
        _require(isinstance(loss, float), f"train_step must return the loss as a float (loss.item()), got "
                                          f"{type(loss).__name__}.")
        _require(abs(loss - expected) < 1e-4, f"Step {step + 1}: the loss differs (binary cross-entropy with logits, "
                                              "computed before the optimizer step).")
        _require(theirs.training, "train_step must put the model in train mode (model.train()).")
        for (name, a), b in zip(theirs.named_parameters(), ours.parameters()):
            if not torch.allclose(a, b, atol=1e-5, rtol=1e-4):
                raise Failed(f"After step {step + 1} the weights differ ({name}): zero the gradients first, then "
                             "backward, clip the gradient norm to grad_clip, then step.")


def check_precision_recall_f1(fn: Callable[[np.ndarray], tuple]) -> None:
    _own(fn, "precision_recall_f1")
    for cm in ([[50, 10], [5, 35]], [[7, 0], [3, 0]], [[0, 4], [0, 6]], [[12, 3], [9, 1]]):
        cm = np.asarray(cm)
        (tn, fp), (fn_, tp) = cm
        y_true = np.repeat([0, 0, 1, 1], [tn, fp, fn_, tp])
        y_pred = np.repeat([0, 1, 0, 1], [tn, fp, fn_, tp])
        expected = metrics.binary_metrics(y_true, y_pred.astype(float))
        got = _call(fn, "precision_recall_f1", cm.copy())
        _require(isinstance(got, tuple) and len(got) == 3, "precision_recall_f1 must return (precision, recall, f1).")
        for name, value in zip(("precision", "recall", "f1"), got):
            _require(np.isfinite(float(value)), f"{name} is not a number for a matrix without predicted or true "
                                                "positives: return 0 there.")
            _require(abs(float(value) - expected[name]) < 1e-9,
                     f"{name} differs (rows are the true class, columns the predicted one; positive is 1).")



def _paired_cases():
    """Pairs of (N,) bool "review classified right" arrays: random ones of several sizes, a small one where the
    chi-square approximation is far from the exact test, one-sided ones, and one with no discordant review."""
    g = np.random.default_rng(7)
    cases = [(g.random(n) < 0.8, g.random(n) < 0.7) for n in (40, 13, 200)]
    a = np.array([True] * 7 + [False] * 1 + [True] * 5 + [False] * 2)
    b = np.array([False] * 7 + [True] * 1 + [True] * 5 + [False] * 2)  # 7 only A, 1 only B
    cases += [(a, b), (b, a), (a, a.copy())]
    return cases


def check_mcnemar_test(fn: Callable[[np.ndarray, np.ndarray], tuple]) -> float:
    _own(fn, "mcnemar_test")
    *cases, (same, copy_) = _paired_cases()  # the last pair has no discordant review: the p-value part asks for 1.0
    expected = [uncertainty.mcnemar(a, b) for a, b in cases]
    answers = [_call(fn, "mcnemar_test", a.copy(), b.copy()) for a, b in cases]
    for got in answers:
        _require(isinstance(got, tuple) and len(got) == 3, "mcnemar_test must return (a_only, b_only, p_value).")

    def counts() -> None:
        for got, test in zip(answers, expected):
            if (got[0], got[1]) == (test.b_only, test.a_only) != (test.a_only, test.b_only):
                raise Failed("a_only and b_only are swapped: a_only counts the reviews model A gets right and B wrong.")
            _require((got[0], got[1]) == (test.a_only, test.b_only),
                     "count only the discordant reviews: a_only = right by A and wrong by B, b_only = the reverse "
                     "(reviews both get right or both get wrong do not count).")

    def p_value() -> None:
        for got, test in zip(answers, expected):
            _require(abs(float(got[2]) - test.p_value) <= 1e-9 + 1e-6 * test.p_value,
                     "the p-value differs: McNemar's exact test is a two-sided binomial test of a_only successes in "
                     "a_only + b_only trials with probability 1/2 (scipy.stats.binomtest), not a chi-square "
                     "approximation.")
        agree = "return p = 1.0 when no review is discordant (the two models cannot be told apart)."
        try:
            got = _call(fn, "mcnemar_test", same.copy(), copy_.copy())
        except Failed as failed:
            raise Failed(f"{failed} {agree}") from None
        _require(isinstance(got, tuple) and len(got) == 3 and float(got[2]) == 1.0, agree)

    return partial("mcnemar_test", [("the discordant counts", 1.0, counts), ("the exact p-value", 1.0, p_value)])
