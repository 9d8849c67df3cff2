"""The hidden tests of the exercises: each ``check_*`` grades a student's function on small fixed inputs
against the library's implementation (or, where the library has none, against what torch or Optuna
compute), with tolerances. None of them trains a model or reads the data, so each runs in well under a
second.

The notebooks' hidden-test blocks are one line each (``check_vocab(build_vocab)``); the logic lives here,
outside the student copies, and a failure is a :class:`Failed` with a plain sentence that says what is wrong
without showing the inputs. The grader's feedback shows only that sentence (``classroom.feedback``).
"""
from __future__ import annotations

import copy
import re
import types
from typing import Any, Callable, Sequence

import numpy as np
import optuna
import pandas as pd
import torch
from torch import nn

from sentiment_lib import eda, metrics, models, text, train
from sentiment_lib.batching import Collate, EncodedSplit, make_loader
from sentiment_lib.tuning import space as tuning_space


class Failed(AssertionError):
    """A hidden test failed; the message says what is wrong and how to look for it."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise Failed(message)


# The library's own implementation of each exercise: an answer that calls it has not done the exercise.
LIBRARY_ANSWERS = {
    "clean_review": ("text", "clean_text"), "truncate": ("text", "truncate"),
    "masked_mean_max": ("layers", "masked_mean_max_pool"), "attention_weights": ("layers", "masked_softmax"),
    "evaluate": ("train", "evaluate"), "train_step": ("train", "train_one_epoch"),
    "suggest": ("tuning.space", "search_space"),
}


def _delegates(fn: types.FunctionType, module: str, attribute: str) -> bool:
    """Whether ``fn`` calls ``sentiment_lib.<module>.<attribute>``: the function imported by name, or reached
    through the package or any of its modules that hold it (``layers.masked_softmax``, ``models.masked_softmax``,
    ``sentiment_lib.models.masked_softmax``)."""
    import importlib
    import inspect

    target_module = importlib.import_module(f"sentiment_lib.{module}")
    target = getattr(target_module, attribute)
    try:
        seen = inspect.getclosurevars(fn)
    except (TypeError, ValueError):
        return False
    values = {**seen.globals, **seen.nonlocals}
    if any(value is target for value in values.values()):
        return True
    names = set(fn.__code__.co_names) | {n for c in fn.__code__.co_consts if isinstance(c, types.CodeType)
                                         for n in c.co_names}
    modules = [v for v in values.values() if isinstance(v, types.ModuleType)
               and (v.__name__ == "sentiment_lib" or getattr(v, attribute, None) is target)]
    return attribute in names and bool(modules)


def _own(fn: Any, name: str) -> None:
    """The answer must be a function written in the notebook, not the library's function handed back, and must
    not hand the work to the library's own implementation of the exercise (:data:`LIBRARY_ANSWERS`)."""
    _require(isinstance(fn, types.FunctionType), f"{name} must be a function you define with def.")
    _require(not (fn.__module__ or "").startswith("sentiment_lib"),
             f"{name} is sentiment_lib's own function: write your implementation in the cell.")
    if name in LIBRARY_ANSWERS:
        module, attribute = LIBRARY_ANSWERS[name]
        _require(not _delegates(fn, module, attribute),
                 f"{name} calls sentiment_lib.{module}.{attribute}, the library's own answer to this exercise: "
                 "write the computation yourself (this scores 0).")


def _call(fn: Callable, name: str, *args: Any) -> Any:
    """Call the student's function; an exception becomes a failure that names it (not our inputs)."""
    try:
        return fn(*args)
    except NotImplementedError:
        raise Failed(f"{name} is not written yet (it raises NotImplementedError).") from None
    except Failed:
        raise
    except Exception as err:  # noqa: BLE001 - any error in student code is a failed test
        raise Failed(f"{name} raised {type(err).__name__}: {str(err)[:160]}") from None


def _shaped(got: Any, expected: torch.Tensor, message: str) -> None:
    _require(isinstance(got, torch.Tensor), f"{message}: expected a torch.Tensor, got {type(got).__name__}.")
    _require(tuple(got.shape) == tuple(expected.shape),
             f"{message}: expected shape {tuple(expected.shape)}, got {tuple(got.shape)}.")


def _close(got: Any, expected: torch.Tensor, message: str, atol: float = 1e-5) -> None:
    _shaped(got, expected, message)
    _require(torch.allclose(got.detach().float(), expected.detach().float(), atol=atol, rtol=1e-4),
             f"{message}: the values differ from the expected ones.")


# --------------------------------------------------------------------------------------------
# 01 — exploring the data
# --------------------------------------------------------------------------------------------

CLEAN_CASES = [
    "A <b>great</b> film!<br /><br />Go see it.",
    "!!!Terrible, terrible... 1/10 -- avoid.",
    "I don't think 'quoted' words, or the dogs' bone, keep their quote marks.",
    "Caf&eacute; &amp; bar: 10/10 (really) #best",
    "Mixed CASE, tabs\tand\nnew lines; ok?",
    "''It's'' -- an 'odd' one...",
]


def _clean_review_mistake(case: str, got: str, expected: str) -> str:
    """What a wrong cleaning of ``case`` (``got``, where the rules give ``expected``) most likely does wrong."""
    words, right = got.split(), set(expected.split())
    markup = {w.lower() for pair in re.findall(r"<\s*/?\s*(\w+)|&(\w+);", case) for w in pair if w}
    if any(c in got for c in ".,;:!?()#-/"):
        return ("clean_review leaves punctuation inside the text: replace every character that is not a letter, a "
                "digit, an apostrophe or white space, everywhere, not only at the start.")
    if "<" in got or "&" in got or any(w in markup and w not in right for w in words):
        return ("clean_review leaves HTML in the text (tags, or entities such as &amp;): unescape entities with "
                "html.unescape and replace tags with a space before removing other characters.")
    if any(c.isupper() for c in got):
        return "clean_review leaves upper-case letters: lower-case the review."
    if re.search(r"[^a-z0-9'\s]", got):
        return ("clean_review keeps characters other than a-z, 0-9 and apostrophes (accented letters, underscores: "
                "\\w matches more than a-z and 0-9): name the characters to keep, [^a-z0-9'\\s].")
    if "".join(words) == "".join(expected.split()):
        return ("clean_review joins words that a removed character separated: replace each removed character by a "
                "space, not by nothing.")
    if any(w.startswith("'") or w.endswith("'") for w in words):
        return "clean_review keeps apostrophes that are quote marks (not inside a word): replace those by a space."
    if "'" in expected and "'" not in got:
        return "clean_review removes the apostrophe inside words such as don't: keep it, remove only quote marks."
    return ("clean_review gives different words from the rules on some reviews "
            "(check upper case, entities and apostrophes that are quote marks).")


def check_clean_review(fn: Callable[[str], str]) -> None:
    _own(fn, "clean_review")
    for case in CLEAN_CASES:
        got = _call(fn, "clean_review", case)
        _require(isinstance(got, str), f"clean_review must return a str, got {type(got).__name__}.")
        expected = " ".join(text.clean_text(case).split())
        _require(" ".join(got.split()) == expected, _clean_review_mistake(case, got, expected))


def overlap_frame() -> pd.DataFrame:
    rows = [
        ("train", 1, "a fine film"), ("train", 0, "a dull film"), ("train", 0, "a dull film"),
        ("train", 1, "seen twice"), ("test", 1, "seen twice"), ("test", 1, "seen twice"),
        ("test", 0, "a dull film"), ("test", 1, "only in test"),
        ("train", -1, "only in test"),  # unlabelled: not part of the labelled overlap
        ("test", 0, "unlabelled copy"), ("train", -1, "unlabelled copy"),
    ]
    return pd.DataFrame(rows, columns=["split", "label", "text"])


def check_train_test_overlap(fn: Callable[[pd.DataFrame], int]) -> None:
    _own(fn, "train_test_overlap")
    frame = overlap_frame()
    expected = eda.duplicates(frame)["train_test_overlap"]
    got = _call(fn, "train_test_overlap", frame.copy())
    _require(isinstance(got, (int, np.integer)), f"train_test_overlap must return an int, got {type(got).__name__}.")
    if int(got) != expected:
        raise Failed(f"train_test_overlap counts {int(got)} texts where the rules give {expected}: count distinct "
                     "texts, labelled reviews only (label 0 or 1), that occur in both train and test.")
    _require(int(_call(fn, "train_test_overlap", frame[frame["split"] == "train"].copy())) == 0,
             "train_test_overlap must be 0 when there is no test review.")


# --------------------------------------------------------------------------------------------
# 02 — preparing the reviews
# --------------------------------------------------------------------------------------------

VOCAB_TOKENS = [
    ["good", "film", "good", "plot"], ["bad", "film", "dull"], ["film", "plot", "zany", "acting"],
    ["leak", "leak", "leak", "leak"], ["good", "acting"], ["acting", "bad", "spoiler", "spoiler"],
]
VOCAB_SUBSETS = ["train", "train", "train", "test", "train", "val"]


def check_build_vocab(fn: Callable[..., list]) -> None:
    _own(fn, "build_vocab")
    train_tokens = [t for t, s in zip(VOCAB_TOKENS, VOCAB_SUBSETS) if s == "train"]
    unseen = {w for t in VOCAB_TOKENS for w in t} - {w for t in train_tokens for w in t}  # "leak", "spoiler"
    for max_size, min_freq in [(None, 1), (None, 2), (5, 1), (3, 1)]:
        got = _call(fn, "build_vocab", [list(t) for t in VOCAB_TOKENS], list(VOCAB_SUBSETS), max_size, min_freq)
        expected = text.Vocab.build(train_tokens, max_size=max_size, min_freq=min_freq).itos
        _require(isinstance(got, (list, tuple)), f"build_vocab must return a list of tokens, got {type(got).__name__}.")
        got = list(got)
        _require(got[:2] == [text.PAD_TOKEN, text.UNK_TOKEN],
                 f"The vocabulary must start with {text.PAD_TOKEN!r} (id 0) and {text.UNK_TOKEN!r} (id 1).")
        _require(not unseen & set(got),
                 "The vocabulary holds a word that occurs only in validation or test reviews: count training reviews only.")
        _require(len(got) <= (max_size or len(got)), "The vocabulary is longer than max_size (PAD and UNK count).")
        _require(got == expected, f"With max_size={max_size}, min_freq={min_freq} the tokens or their order differ: most "
                                  "frequent first, ties in alphabetical order, at least min_freq occurrences.")


def check_truncate(fn: Callable[..., Any]) -> None:
    _own(fn, "truncate")
    for n in range(0, 14):
        ids = np.arange(1, n + 1, dtype=np.int32)
        for max_len in (1, 2, 4, 7, 8):
            for side in ("head", "tail", "head+tail"):
                got = _call(fn, "truncate", ids.copy(), max_len, side)
                expected = text.truncate(ids, max_len, side)
                if not np.array_equal(np.asarray(got), expected):
                    _require(n > max_len, f"truncate must return a review that fits (no longer than max_len) whole, "
                                          f"whatever the side: side={side!r} changed a review of {n} tokens.")
                    raise Failed(f"truncate(..., max_len={max_len}, side={side!r}) keeps the wrong tokens for a "
                                 f"review of {n} tokens.")


def check_pad_batch(fn: Callable[[Sequence[Sequence[int]]], tuple]) -> None:
    _own(fn, "pad_batch")
    cases = [[[5, 6, 7], [8], [9, 10]], [[3, 4]], [[2] * 4, [7, 7, 7, 7, 7, 7], [11]]]
    for seqs in cases:
        split = EncodedSplit([np.asarray(s, dtype=np.int32) for s in seqs], np.zeros(len(seqs)))
        expected = Collate(split, max_len=10_000)(list(range(len(seqs))))
        got = _call(fn, "pad_batch", [list(s) for s in seqs])
        _require(isinstance(got, tuple) and len(got) == 2, "pad_batch must return (tokens, lengths).")
        tokens, lengths = got
        _require(isinstance(tokens, torch.Tensor) and tokens.dtype == torch.long,
                 "tokens must be a torch.long tensor (embedding layers want integer ids).")
        _require(isinstance(lengths, torch.Tensor) and lengths.dtype == torch.long, "lengths must be a torch.long tensor.")
        _require(torch.equal(lengths, expected.lengths), "lengths must hold each review's number of real tokens.")
        time_first = tokens.dim() == 2 and not torch.equal(tokens, expected.tokens) and \
            torch.equal(tokens.t(), expected.tokens)
        _require(not time_first, "tokens are (longest review, batch), time first: put the batch first "
                                 "(pad_sequence(..., batch_first=True), or one row per review).")
        _require(tuple(tokens.shape) == tuple(expected.tokens.shape),
                 "tokens must be (batch, longest review) : pad to the longest review of the batch, no more.")
        _require(torch.equal(tokens, expected.tokens),
                 f"tokens differ: each review first, then PAD={text.PAD} up to the longest review.")


# --------------------------------------------------------------------------------------------
# 03 — the baseline
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# 04 — improvements
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# 05 — Optuna
# --------------------------------------------------------------------------------------------

SPACES = [
    {"model": {"choices": ["lstm", "gru", "bilstm_pool"]}, "num_layers": {"low": 1, "high": 3, "log": False},
     "dropout": {"low": 0.0, "high": 0.5, "log": False}, "lr": {"low": 1e-4, "high": 1e-2, "log": True},
     "hidden_size": {"choices": [16, 32, 64]}},
    {"batch_size": {"choices": [32, 64]}, "embed_dim": {"low": 8, "high": 128, "log": True},
     "weight_decay": {"low": 1e-6, "high": 1e-3, "log": True},
     "label_smoothing": {"low": 0, "high": 0.2, "log": False}},  # an int low end, a float high end: a float range
]
SPACE_RULES = ("categorical for choices, an int range when both ends are ints, else a float range, on a log scale "
               "when log is true")


def _distribution(d: optuna.distributions.BaseDistribution) -> str:
    return f"{type(d).__name__}{'(log)' if getattr(d, 'log', False) else ''}"


def _asked(sampler_seed: int):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=sampler_seed))
    return study.ask()


def check_suggest(fn: Callable[[optuna.Trial, dict], dict]) -> None:
    _own(fn, "suggest")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for k, spec in enumerate(SPACES):
        theirs, ours = _asked(k), _asked(k)
        got = _call(fn, "suggest", theirs, copy.deepcopy(spec))
        expected = tuning_space.search_space(ours, None, spec)  # type: ignore[arg-type]
        _require(isinstance(got, dict), f"suggest must return a dict {{name: value}}, got {type(got).__name__}.")
        _require(set(theirs.distributions) == set(spec), "suggest must suggest every dimension of the space, once.")
        # the values depend on the order of the suggestions (any order is right): compare with the trial's own
        for name in spec:
            a, b = theirs.distributions[name], ours.distributions[name]
            if a != b:
                raise Failed(f"{name!r} is suggested as {_distribution(a)}; the space asks for {_distribution(b)} over "
                             f"the same range ({SPACE_RULES}).")
        _require(got == theirs.params, "suggest must return the suggested values, keyed by dimension name.")
        fixed = dict(expected)
        _require(_call(fn, "suggest", optuna.trial.FixedTrial(fixed), copy.deepcopy(spec)) == fixed,
                 "suggest does not return the trial's values (checked with optuna.trial.FixedTrial).")


class _PruneFromStep(optuna.pruners.BasePruner):
    def __init__(self, step: int):
        self.step = step

    def prune(self, study, trial) -> bool:
        return trial.last_step is not None and trial.last_step >= self.step


def _fake_training(log: list):
    """A training of four epochs whose validation loss is best at the third (the last is not the best)."""
    def train(config: dict, report: Callable[[int, float], None]) -> float:
        losses = [curve / config["num_layers"] + config["lr"] for curve in (1.0, 0.6, 0.5, 0.7)]
        for epoch, loss in enumerate(losses):
            log.append(epoch)
            report(epoch, loss)
        return min(losses)
    return train


def check_objective(fn: Callable[..., float]) -> None:
    _own(fn, "objective")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = {"num_layers": {"low": 1, "high": 3, "log": False}, "lr": {"low": 1e-4, "high": 1e-2, "log": True}}
    fixed = {"num_layers": 2, "lr": 0.001}
    log: list = []
    value = _call(fn, "objective", optuna.trial.FixedTrial(fixed), spec, _fake_training(log))
    expected = _fake_training([])(fixed, lambda e, v: None)
    _require(isinstance(value, (float, int)) and abs(float(value) - expected) < 1e-12,
             "objective must return what train returns for the trial's configuration (checked with a FixedTrial).")
    _require(log == [0, 1, 2, 3], "objective must let train run every epoch when nothing prunes it.")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), pruner=_PruneFromStep(1))
    log.clear()
    trial = study.ask()
    try:
        fn(trial, spec, _fake_training(log))
    except optuna.TrialPruned:
        pass
    except NotImplementedError:
        raise Failed("objective is not written yet (it raises NotImplementedError).") from None
    except Exception as err:  # noqa: BLE001
        raise Failed(f"objective raised {type(err).__name__}: {err}") from None
    else:
        raise Failed("objective must raise optuna.TrialPruned when trial.should_prune() says so after a report.")
    reference = _asked(0)
    tuning_space.search_space(reference, None, spec)  # type: ignore[arg-type]
    _require(trial.distributions == reference.distributions,
             f"objective must suggest the configuration from the space as suggest does ({SPACE_RULES}).")
    _require(sorted(study.trials[0].intermediate_values) == [0, 1],
             "objective must report each epoch's validation loss with trial.report(value, epoch) and stop at the "
             "first epoch the pruner prunes.")
    _require(log == [0, 1], "A pruned trial must stop training at once (raise inside report).")
