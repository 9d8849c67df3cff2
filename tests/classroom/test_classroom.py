"""The exercises, without nbgrader: every reference answer passes its visible and hidden tests, every
unanswered prompt and every typical wrong answer fails exactly its own exercise, and the notebooks carry
well-formed nbgrader metadata (≥ 2 exercises per notebook, ≥ 16 in all, points on every test). Checks with
parts give partial credit: a wrong answer there earns less than the cell's points, and says why per part."""
import ast
import contextlib
import io
import re
from collections import Counter

import nbformat
import numpy as np
import optuna
import pandas as pd
import pytest
import torch

from classroom import checks
from classroom.course import CODE_STUB, assignments, exercises, nbgrader_meta
from classroom.student import SOLUTION
from sentiment_lib import profiles, tuning

NOTEBOOKS = {name: nbformat.read(path, as_version=4) for name, path in assignments().items()}
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)


def exercise_cells(nb):
    """[(grade_id of the answer, answer source, test source)] in notebook order."""
    answers = {nbgrader_meta(c)["grade_id"]: c.source for c in nb.cells if nbgrader_meta(c).get("solution")}
    return [(m["grade_id"][: -len("-test")], answers[m["grade_id"][: -len("-test")]], c.source)
            for c in nb.cells for m in [nbgrader_meta(c)] if m.get("grade")]


ALL = [(name, *cells) for name, nb in NOTEBOOKS.items() for cells in exercise_cells(nb)]
POINTS = {e.name: e.points for nb in NOTEBOOKS.values() for e in exercises(nb)}


def run_cell(source, ns, name):
    """Run a cell as a kernel does and return the value of its last expression (what nbgrader reads as partial
    credit), ``None`` when it ends with a statement."""
    tree = ast.parse(source)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, name, "exec"), ns)
    return eval(compile(ast.Expression(last.value), name, "eval"), ns) if last else None


def graded(check, fn, points):
    """``(points earned, feedback)`` of a hidden check, as nbgrader scores the cell: an error is 0, a number
    (partial credit) is that many points, anything else full points."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            value = check(fn)
        except checks.Failed as failed:
            return 0.0, f"{out.getvalue()}{failed}"
    return (float(value) if isinstance(value, (int, float)) else points), out.getvalue()


def check_of(test):
    return getattr(checks, re.search(r"checks\.(check_\w+)\(", HIDDEN.search(test).group(1)).group(1))


def namespace():
    """What the notebooks' first cells put in scope that the exercise cells use."""
    return {"__name__": "__main__", "np": np, "pd": pd, "torch": torch, "optuna": optuna, "tuning": tuning,
            "params": profiles.resolve("smoke")}


def student_form(answer: str) -> str:
    """The answer cell as nbgrader hands it out (the solution replaced by the stub, indentation kept)."""
    def stub(match):
        indent = re.search(r"([ \t]*)### BEGIN SOLUTION", answer[: match.end()]).group(1)
        return "\n".join(indent + line for line in CODE_STUB.splitlines()).lstrip() + "\n"
    return SOLUTION.sub(stub, answer)


def test_every_notebook_has_enough_graded_exercises():
    counts = {name: len(exercises(nb)) for name, nb in NOTEBOOKS.items()}
    assert all(n >= 2 for n in counts.values()), counts
    assert sum(counts.values()) >= 16
    ids = [nbgrader_meta(c)["grade_id"] for nb in NOTEBOOKS.values() for c in nb.cells if nbgrader_meta(c)]
    assert len(ids) == len(set(ids)), "grade_ids must be unique across the course"
    for nb in NOTEBOOKS.values():
        for ex in exercises(nb):
            assert ex.points > 0 and ex.title.startswith("Exercise"), ex


@pytest.mark.parametrize("name,gid,answer,test", ALL, ids=[a[1] for a in ALL])
def test_each_test_has_a_visible_part_and_a_hidden_check(name, gid, answer, test):
    visible = HIDDEN.sub("", test)
    assert "assert" in visible, "a student must be able to run a visible test"
    hidden = HIDDEN.search(test).group(1)
    called = re.search(r"checks\.(check_\w+)\(", hidden).group(1)
    assert callable(getattr(checks, called)), called
    assert "### BEGIN SOLUTION" in answer and "### END SOLUTION" in answer


@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_reference_answers_pass_and_prompts_fail_every_test(name):
    """Run each notebook's exercise cells in order (tests depend on earlier cells, as in the notebook)."""
    ns, blank = namespace(), namespace()
    for gid, answer, test in exercise_cells(NOTEBOOKS[name]):
        exec(compile(answer, gid, "exec"), ns)
        score = run_cell(test, ns, f"{gid}-test")  # visible and hidden tests: must not raise
        assert score is None or score == POINTS[gid], (gid, score)  # partial credit: every part earned
        exec(compile(student_form(answer), gid, "exec"), blank)
        with pytest.raises(Exception) as err:  # the prompt as handed out raises NotImplementedError
            exec(compile(test, f"{gid}-test", "exec"), blank)
        assert isinstance(err.value, (NotImplementedError, checks.Failed)), err.value


# Typical wrong answers, as students write them, at least three per exercise: (exercise, answer, words its
# check's feedback must contain). Each must fail its own hidden check, and only that one, with feedback that
# says why; test_classroom_grading.py runs the first of some exercises through nbgrader.
WRONG_ANSWERS = [
    # 1.1 reviews in both splits
    ("eda-overlap", '''def train_test_overlap(frame):  # counts rows, not distinct texts, and unlabelled ones too
    train = set(frame.loc[frame["split"] == "train", "text"])
    return int(frame.loc[frame["split"] == "test", "text"].isin(train).sum())''', "count distinct texts"),
    ("eda-overlap", '''def train_test_overlap(frame):  # "labelled" read as positive: drops every label-0 review
    labelled = frame[frame["label"] > 0]
    train = set(labelled.loc[labelled["split"] == "train", "text"])
    return len(train & set(labelled.loc[labelled["split"] == "test", "text"]))''', "label 0 or 1"),
    ("eda-overlap", '''def train_test_overlap(frame):  # drops unlabelled reviews from the test side only
    train = set(frame.loc[frame["split"] == "train", "text"])
    test = set(frame.loc[(frame["split"] == "test") & (frame["label"] >= 0), "text"])
    return len(train & test)''', "labelled reviews only"),
    ("eda-overlap", '''def train_test_overlap(frame):  # distinct texts per row of test, not per text
    labelled = frame[frame["label"] != -1]
    train = set(labelled.loc[labelled["split"] == "train", "text"])
    return int(labelled.loc[labelled["split"] == "test", "text"].isin(train).sum())''', "count distinct texts"),
    # 1.2 clean the whole review
    ("eda-clean", '''import re
def clean_review(review):  # the tutorial's regex: only the first character
    return re.sub(r"^[^a-z0-9\\s]", "", review.lower())''', "punctuation"),
    ("eda-clean", '''import re
def clean_review(review):  # no HTML step: tags become the words "br" and "b", entities "amp"
    review = re.sub(r"[^a-z0-9'\\s]", " ", review.lower())
    return re.sub(r"(?<![a-z0-9])'|'(?![a-z0-9])", " ", review)''', "HTML"),
    ("eda-clean", '''import html
import re
def clean_review(review):  # \\w keeps accented letters (and underscores)
    review = re.sub(r"<[^>]*>", " ", html.unescape(review)).lower()
    review = re.sub(r"[^\\w'\\s]", " ", review)
    return re.sub(r"(?<!\\w)'|'(?!\\w)", " ", review)''', "a-z"),
    ("eda-clean", '''import html
import re
def clean_review(review):  # deletes what it removes: "10/10" becomes the word "1010"
    review = re.sub(r"<[^>]*>", " ", html.unescape(review)).lower()
    review = re.sub(r"[^a-z0-9'\\s]", "", review)
    return re.sub(r"(?<![a-z0-9])'|'(?![a-z0-9])", "", review)''', "by a space"),
    ("eda-clean", '''import html
import re
def clean_review(review):  # every apostrophe goes: "don't" becomes "don t"
    review = re.sub(r"<[^>]*>", " ", html.unescape(review)).lower()
    return re.sub(r"[^a-z0-9\\s]", " ", review)''', "apostrophe"),
    # 2.1 vocabulary
    ("prep-vocab", '''from collections import Counter
def build_vocab(token_lists, subsets, max_size=None, min_freq=1):  # counts every split
    counts = Counter(t for tokens in token_lists for t in tokens)
    kept = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
    return ["<pad>", "<unk>", *(kept if max_size is None else kept[: max_size - 2])]''', "training reviews only"),
    ("prep-vocab", '''from collections import Counter
def build_vocab(token_lists, subsets, max_size=None, min_freq=1):  # leaves out the test reviews, not validation
    counts = Counter(t for tokens, s in zip(token_lists, subsets) if s != "test" for t in tokens)
    kept = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
    return ["<pad>", "<unk>", *(kept if max_size is None else kept[: max_size - 2])]''', "training reviews only"),
    ("prep-vocab", '''from collections import Counter
def build_vocab(token_lists, subsets, max_size=None, min_freq=1):  # most_common: ties in order of appearance
    counts = Counter(t for tokens, s in zip(token_lists, subsets) if s == "train" for t in tokens)
    kept = [t for t, c in counts.most_common() if c >= min_freq]
    return ["<pad>", "<unk>", *(kept if max_size is None else kept[: max_size - 2])]''', "ties in alphabetical order"),
    ("prep-vocab", '''from collections import Counter
def build_vocab(token_lists, subsets, max_size=None, min_freq=1):  # max_size words, PAD and UNK on top
    counts = Counter(t for tokens, s in zip(token_lists, subsets) if s == "train" for t in tokens)
    kept = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
    return ["<pad>", "<unk>", *(kept if max_size is None else kept[:max_size])]''', "longer than max_size"),
    ("prep-vocab", '''from collections import Counter
def build_vocab(token_lists, subsets, max_size=None, min_freq=1):  # min_freq as a strict bound
    counts = Counter(t for tokens, s in zip(token_lists, subsets) if s == "train" for t in tokens)
    kept = sorted((t for t, c in counts.items() if c > min_freq), key=lambda t: (-counts[t], t))
    return ["<pad>", "<unk>", *(kept if max_size is None else kept[: max_size - 2])]''', "at least min_freq"),
    # 2.2 truncation
    ("prep-truncate", '''def truncate(ids, max_len, side="head"):  # head+tail split half and half
    if len(ids) <= max_len:
        return ids
    if side == "head":
        return ids[:max_len]
    if side == "tail":
        return ids[len(ids) - max_len:]
    return np.concatenate([ids[: max_len // 2], ids[len(ids) - (max_len - max_len // 2):]])''', "head+tail"),
    ("prep-truncate", '''def truncate(ids, max_len, side="head"):  # a quarter and three quarters, each rounded down
    if len(ids) <= max_len:
        return ids
    if side == "head":
        return ids[:max_len]
    if side == "tail":
        return ids[-max_len:]
    return np.concatenate([ids[: max_len // 4], ids[-(3 * max_len // 4):]])''', "head+tail"),
    ("prep-truncate", '''def truncate(ids, max_len, side="head"):  # a review that fits is cut too
    head = max_len // 4 if side == "head+tail" else (max_len if side == "head" else 0)
    return np.concatenate([ids[:head], ids[len(ids) - (max_len - head):]])''', "whole"),
    ("prep-truncate", '''def truncate(ids, max_len, side="head"):  # the quarter taken from the end, not the start
    if len(ids) <= max_len:
        return ids
    if side == "head":
        return ids[:max_len]
    if side == "tail":
        return ids[len(ids) - max_len:]
    return np.concatenate([ids[: max_len - max_len // 4], ids[len(ids) - max_len // 4:]])''', "head+tail"),
    ("prep-truncate", '''from sentiment_lib.text import truncate as library_truncate
def truncate(ids, max_len, side="head"):
    return library_truncate(ids, max_len, side)''', "sentiment_lib.text.truncate"),
    # 2.3 padding a batch
    ("prep-pad", '''def pad_batch(seqs):  # padding before the review
    width = max(len(s) for s in seqs)
    tokens = torch.tensor([[0] * (width - len(s)) + list(s) for s in seqs])
    return tokens, torch.tensor([len(s) for s in seqs])''', "each review first"),
    ("prep-pad", '''from torch.nn.utils.rnn import pad_sequence
def pad_batch(seqs):  # pad_sequence is time-major unless batch_first=True
    tokens = pad_sequence([torch.tensor(s) for s in seqs])
    return tokens, torch.tensor([len(s) for s in seqs])''', "time first"),
    ("prep-pad", '''def pad_batch(seqs):  # torch.zeros is a float tensor
    lengths = torch.tensor([len(s) for s in seqs])
    tokens = torch.zeros(len(seqs), int(lengths.max()))
    for row, seq in enumerate(seqs):
        tokens[row, : len(seq)] = torch.tensor(seq)
    return tokens, lengths''', "torch.long"),
    ("prep-pad", '''def pad_batch(seqs, width=8):  # a fixed width, as wide as the visible test's reviews
    tokens = torch.zeros(len(seqs), width, dtype=torch.long)
    for row, seq in enumerate(seqs):
        tokens[row, : len(seq)] = torch.tensor(seq)
    return tokens, torch.tensor([len(s) for s in seqs])''', "no more"),
    # 3.1 the last real state
    ("base-last", '''def last_real_state(outputs, lengths):  # the last padded step
    return outputs[:, -1]''', "last padded step"),
    ("base-last", '''def last_real_state(outputs, lengths):  # one index per review wanted, a (B, B, H) grid read
    return outputs[:, lengths - 1]''', "expected shape"),
    ("base-last", '''def last_real_state(outputs, lengths):  # lengths counts steps, the index is one less
    return outputs[torch.arange(outputs.size(0)), lengths]''', "lengths[b] - 1"),
    ("base-last", '''def last_real_state(outputs, lengths):  # sorts by length, as packing does, and never unsorts
    order = torch.argsort(lengths, descending=True)
    return outputs[order, lengths[order] - 1]''', "order"),
    # 3.2 a training step
    ("base-step", '''import torch.nn.functional as F
def train_step(model, batch, optimizer, grad_clip):  # gradients pile up: no zero_grad
    model.train()
    loss = F.binary_cross_entropy_with_logits(model(batch.tokens, batch.lengths), batch.labels)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss.item()''', "zero the gradients"),
    ("base-step", '''import torch.nn.functional as F
def train_step(model, batch, optimizer, grad_clip):  # clips after the step: too late
    model.train()
    optimizer.zero_grad()
    loss = F.binary_cross_entropy_with_logits(model(batch.tokens, batch.lengths), batch.labels)
    loss.backward()
    optimizer.step()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    return loss.item()''', "clip the gradient norm"),
    ("base-step", '''import torch.nn.functional as F
def train_step(model, batch, optimizer, grad_clip):  # clips each gradient value, not the norm
    model.train()
    optimizer.zero_grad()
    loss = F.binary_cross_entropy_with_logits(model(batch.tokens, batch.lengths), batch.labels)
    loss.backward()
    torch.nn.utils.clip_grad_value_(model.parameters(), grad_clip)
    optimizer.step()
    return loss.item()''', "clip the gradient norm"),
    ("base-step", '''import torch.nn.functional as F
def train_step(model, batch, optimizer, grad_clip):  # the loss summed over the batch
    model.train()
    optimizer.zero_grad()
    loss = F.binary_cross_entropy_with_logits(model(batch.tokens, batch.lengths), batch.labels, reduction="sum")
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss.item()''', "the loss differs"),
    # 3.3 evaluation without side effects
    ("base-evaluate", '''import torch.nn.functional as F
def evaluate(model, loader):  # the training loop copied: it steps an optimizer
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    total, correct, n = 0.0, 0, 0
    for batch in loader:
        optimizer.zero_grad()
        logits = model(batch.tokens, batch.lengths)
        loss = F.binary_cross_entropy_with_logits(logits, batch.labels)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(batch.labels)
        correct += int(((logits >= 0).float() == batch.labels).sum())
        n += len(batch.labels)
    return {"loss": total / n, "accuracy": correct / n}''', "gradients"),
    ("base-evaluate", '''import torch
import torch.nn.functional as F
def evaluate(model, loader):  # the mean of the per-batch means: wrong when batches differ in size
    model.eval()
    losses, accuracies = [], []
    with torch.no_grad():
        for batch in loader:
            logits = model(batch.tokens, batch.lengths)
            losses.append(F.binary_cross_entropy_with_logits(logits, batch.labels).item())
            accuracies.append(((logits >= 0).float() == batch.labels).float().mean().item())
    return {"loss": sum(losses) / len(losses), "accuracy": sum(accuracies) / len(accuracies)}''',
     "not an average of per-batch accuracies"),
    ("base-evaluate", '''import torch.nn.functional as F
def evaluate(model, loader):  # no model.eval(): dropout stays on
    total, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for batch in loader:
            logits = model(batch.tokens, batch.lengths)
            total += F.binary_cross_entropy_with_logits(logits, batch.labels, reduction="sum").item()
            correct += int(((logits >= 0).float() == batch.labels).sum())
            n += len(batch.labels)
    return {"loss": total / n, "accuracy": correct / n}''', "model.eval()"),
    ("base-evaluate", '''import torch.nn.functional as F
def evaluate(model, loader):  # the logits compared with 0.5, as if they were probabilities
    model.eval()
    total, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for batch in loader:
            logits = model(batch.tokens, batch.lengths)
            total += F.binary_cross_entropy_with_logits(logits, batch.labels, reduction="sum").item()
            correct += int(((logits >= 0.5).float() == batch.labels).sum())
            n += len(batch.labels)
    return {"loss": total / n, "accuracy": correct / n}''', "probability is at least 0.5"),
    # 3.4 precision, recall, F1
    ("base-prf", '''def precision_recall_f1(cm):  # precision and recall swapped
    (tn, fp), (fn, tp) = cm
    precision, recall = tp / (tp + fn), tp / (tp + fp)
    return precision, recall, 2 * precision * recall / (precision + recall)''', "precision differs"),
    ("base-prf", '''def precision_recall_f1(cm):  # the matrix read positive class first, as some figures draw it
    (tp, fn), (fp, tn) = cm
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return precision, recall, 2 * precision * recall / (precision + recall) if precision + recall else 0.0''',
     "rows are the true class"),
    ("base-prf", '''def precision_recall_f1(cm):  # F1 as the arithmetic mean
    (tn, fp), (fn, tp) = cm
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return precision, recall, (precision + recall) / 2''', "f1 differs"),
    ("base-prf", '''def precision_recall_f1(cm):  # guards precision and recall, not F1
    (tn, fp), (fn, tp) = cm
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return precision, recall, 2 * precision * recall / (precision + recall)''', "return 0 there"),
    # 3.5 McNemar's paired test (partial credit: counts, p-value)
    ("base-mcnemar", '''from scipy import stats
def mcnemar_test(correct_a, correct_b):  # counts the reviews both get right, not the discordant ones
    a_only, b_only = int((correct_a & correct_b).sum()), int((~correct_a & ~correct_b).sum())
    return a_only, b_only, 1.0 if a_only + b_only == 0 else stats.binomtest(a_only, a_only + b_only).pvalue''',
     "count only the discordant reviews"),
    ("base-mcnemar", '''from scipy import stats
def mcnemar_test(correct_a, correct_b):  # a one-sided test: is A better?
    a_only, b_only = int((correct_a & ~correct_b).sum()), int((~correct_a & correct_b).sum())
    if a_only + b_only == 0:
        return a_only, b_only, 1.0
    return a_only, b_only, stats.binomtest(a_only, a_only + b_only, alternative="greater").pvalue''', "two-sided"),
    ("base-mcnemar", '''from scipy import stats
def mcnemar_test(correct_a, correct_b):  # the chi-square approximation, wrong for few discordant reviews
    a_only, b_only = int((correct_a & ~correct_b).sum()), int((~correct_a & correct_b).sum())
    if a_only + b_only == 0:
        return a_only, b_only, 1.0
    return a_only, b_only, stats.chi2.sf((a_only - b_only) ** 2 / (a_only + b_only), 1)''', "not a chi-square"),
    ("base-mcnemar", '''from scipy import stats
def mcnemar_test(correct_a, correct_b):  # the binomial test over every review, not the discordant ones
    a_only, b_only = int((correct_a & ~correct_b).sum()), int((~correct_a & correct_b).sum())
    return a_only, b_only, stats.binomtest(a_only, len(correct_a)).pvalue''', "a_only + b_only trials"),
    ("base-mcnemar", '''from scipy import stats
def mcnemar_test(correct_a, correct_b):  # no case for two models that agree on every review
    a_only, b_only = int((correct_a & ~correct_b).sum()), int((~correct_a & correct_b).sum())
    return a_only, b_only, stats.binomtest(a_only, a_only + b_only).pvalue''', "1.0 when no review is discordant"),
    # 4.1 masked mean and max pooling
    ("impr-pool", '''def masked_mean_max(outputs, lengths):  # ignores the mask
    return torch.cat([outputs.mean(dim=1), outputs.max(dim=1).values], dim=-1)''', "padded steps"),
    ("impr-pool", '''def masked_mean_max(outputs, lengths):  # padding zeroed: a max of negative states becomes 0
    mask = (torch.arange(outputs.size(1))[None, :] < lengths[:, None]).unsqueeze(-1)
    masked = outputs * mask
    return torch.cat([masked.sum(dim=1) / lengths[:, None], masked.max(dim=1).values], dim=-1)''', "-inf"),
    ("impr-pool", '''def masked_mean_max(outputs, lengths):  # the mean divides by the padded width
    mask = (torch.arange(outputs.size(1))[None, :] < lengths[:, None]).unsqueeze(-1)
    mean = outputs.masked_fill(~mask, 0.0).mean(dim=1)
    return torch.cat([mean, outputs.masked_fill(~mask, float("-inf")).max(dim=1).values], dim=-1)''',
     "divide by its length"),
    ("impr-pool", '''def masked_mean_max(outputs, lengths):  # <= keeps the first padded step
    mask = (torch.arange(outputs.size(1))[None, :] <= lengths[:, None]).unsqueeze(-1)
    mean = outputs.masked_fill(~mask, 0.0).sum(dim=1) / lengths[:, None]
    return torch.cat([mean, outputs.masked_fill(~mask, float("-inf")).max(dim=1).values], dim=-1)''',
     "padded steps"),
    ("impr-pool", '''import sentiment_lib.models
def masked_mean_max(outputs, lengths):
    return sentiment_lib.models.masked_mean_max_pool(outputs, lengths)''', "the library's own answer"),
    # 4.2 the adversarial perturbation (partial credit: direction, size, detached)
    ("impr-perturb", '''def perturb(embedded, grad, mask, epsilon):  # one norm for the whole batch, not one per review
    weights = mask.unsqueeze(-1).float()
    g, e = grad.detach() * weights, embedded.detach() * weights
    rms = (e.pow(2).sum(dim=(1, 2)) / weights.sum(dim=(1, 2))).sqrt()
    return epsilon * rms[:, None, None] * g / g.norm()''', "not over the batch"),
    ("impr-perturb", '''def perturb(embedded, grad, mask, epsilon):  # the scale keeps the embeddings' graph
    weights = mask.unsqueeze(-1).float()
    g, e = grad * weights, embedded * weights
    rms = (e.pow(2).sum(dim=(1, 2)) / weights.sum(dim=(1, 2))).sqrt()
    return (epsilon * rms / g.pow(2).sum(dim=(1, 2)).sqrt())[:, None, None] * g''', ".detach()"),
    ("impr-perturb", '''def perturb(embedded, grad, mask, epsilon):  # the sign of the gradient (FGSM), not the gradient
    weights = mask.unsqueeze(-1).float()
    g, e = grad.detach().sign() * weights, embedded.detach() * weights
    rms = (e.pow(2).sum(dim=(1, 2)) / weights.sum(dim=(1, 2))).sqrt()
    return (epsilon * rms / g.pow(2).sum(dim=(1, 2)).sqrt())[:, None, None] * g''', "not its sign"),
    ("impr-perturb", '''def perturb(embedded, grad, mask, epsilon):  # ε times the unit gradient: no RMS word-vector scale
    g = grad.detach() * mask.unsqueeze(-1).float()
    return epsilon * g / g.pow(2).sum(dim=(1, 2)).sqrt()[:, None, None]''', "RMS word-vector norm"),
    # 4.3 NBSVM's log-count ratio
    ("impr-nbratio", '''def log_count_ratio(features, labels, alpha=1.0):  # no smoothing: a one-class feature is infinite
    p, q = features[labels == 1].sum(axis=0), features[labels == 0].sum(axis=0)
    return np.log(p / p.sum()) - np.log(q / q.sum())''', "smoothing"),
    ("impr-nbratio", '''def log_count_ratio(features, labels, alpha=1.0):  # the counts not normalised per class
    p, q = alpha + features[labels == 1].sum(axis=0), alpha + features[labels == 0].sum(axis=0)
    return np.log(p / q)''', "divide each class's smoothed counts by their sum"),
    ("impr-nbratio", '''def log_count_ratio(features, labels, alpha=1.0):  # negative reviews on top
    p, q = alpha + features[labels == 1].sum(axis=0), alpha + features[labels == 0].sum(axis=0)
    return np.log(q / q.sum()) - np.log(p / p.sum())''', "inverted"),
    ("impr-nbratio", '''def log_count_ratio(features, labels, alpha=1.0):  # divides by the number of reviews per class
    p, q = alpha + features[labels == 1].sum(axis=0), alpha + features[labels == 0].sum(axis=0)
    return np.log(p / (labels == 1).sum()) - np.log(q / (labels == 0).sum())''', "not by the number of reviews"),
    ("impr-nbratio", '''def log_count_ratio(features, labels, alpha=1.0):  # alpha fixed at 1, whatever is asked
    p, q = 1 + features[labels == 1].sum(axis=0), 1 + features[labels == 0].sum(axis=0)
    return np.log(p / p.sum()) - np.log(q / q.sum())''', "With alpha=0.5"),
    # 4.4 attention weights
    ("impr-attention", '''def attention_weights(scores, lengths):  # softmax over every step, padding included
    return torch.softmax(scores, dim=1)''', "weight to padding"),
    ("impr-attention", '''def attention_weights(scores, lengths):  # padding zeroed after the softmax, not renormalised
    mask = torch.arange(scores.size(1))[None, :] < lengths[:, None]
    return torch.softmax(scores, dim=1) * mask''', "sum to 1"),
    ("impr-attention", '''def attention_weights(scores, lengths):  # a score of 0 on padding still gets weight
    mask = torch.arange(scores.size(1))[None, :] < lengths[:, None]
    return torch.softmax(scores * mask, dim=1)''', "weight to padding"),
    ("impr-attention", '''def attention_weights(scores, lengths):  # the softmax by hand overflows for large scores
    mask = torch.arange(scores.size(1))[None, :] < lengths[:, None]
    e = torch.exp(scores) * mask
    return e / e.sum(dim=1, keepdim=True)''', "exp overflows"),
    ("impr-attention", '''from sentiment_lib import models
def attention_weights(scores, lengths):  # hands the exercise to the library
    return models.masked_softmax(scores, lengths)''', "masked_softmax, the library's own answer"),
    # 5.1 a search space
    ("tune-suggest", '''def suggest(trial, space):  # ranges never on a log scale
    values = {}
    for name, spec in space.items():
        if "choices" in spec:
            values[name] = trial.suggest_categorical(name, spec["choices"])
        elif isinstance(spec["low"], int) and isinstance(spec["high"], int):
            values[name] = trial.suggest_int(name, spec["low"], spec["high"])
        else:
            values[name] = trial.suggest_float(name, spec["low"], spec["high"])
    return values''', "(log)"),
    ("tune-suggest", '''def suggest(trial, space):  # every range a float range
    values = {}
    for name, spec in space.items():
        if "choices" in spec:
            values[name] = trial.suggest_categorical(name, spec["choices"])
        else:
            values[name] = trial.suggest_float(name, spec["low"], spec["high"], log=spec.get("log", False))
    return values''', "IntDistribution"),
    ("tune-suggest", '''def suggest(trial, space):  # log scale for float ranges only
    values = {}
    for name, spec in space.items():
        if "choices" in spec:
            values[name] = trial.suggest_categorical(name, spec["choices"])
        elif isinstance(spec["low"], int) and isinstance(spec["high"], int):
            values[name] = trial.suggest_int(name, spec["low"], spec["high"])
        else:
            values[name] = trial.suggest_float(name, spec["low"], spec["high"], log=spec.get("log", False))
    return values''', "the space asks for IntDistribution(log)"),
    ("tune-suggest", '''def suggest(trial, space):  # an int range whenever the low end is an int
    values = {}
    for name, spec in space.items():
        if "choices" in spec:
            values[name] = trial.suggest_categorical(name, spec["choices"])
        elif isinstance(spec["low"], int):
            values[name] = trial.suggest_int(name, spec["low"], int(spec["high"]), log=spec.get("log", False))
        else:
            values[name] = trial.suggest_float(name, spec["low"], spec["high"], log=spec.get("log", False))
    return values''', "both ends"),
    # 5.2 an objective that can be pruned
    ("tune-objective", '''def objective(trial, space, train):  # reports nothing, never prunes
    config = tuning.space.search_space(trial, params, space)
    return train(config, lambda epoch, value: None)''', "TrialPruned"),
    ("tune-objective", '''def objective(trial, space, train):  # reports, but never asks the pruner
    config = tuning.space.search_space(trial, params, space)
    return train(config, lambda epoch, value: trial.report(value, epoch))''', "TrialPruned"),
    ("tune-objective", '''def objective(trial, space, train):  # asks the pruner before reporting the epoch
    config = tuning.space.search_space(trial, params, space)
    def report(epoch, value):
        if trial.should_prune():
            raise optuna.TrialPruned()
        trial.report(value, epoch)
    return train(config, report)''', "stop training at once"),
    ("tune-objective", '''def objective(trial, space, train):  # returns the last epoch's loss, not the best one
    config = tuning.space.search_space(trial, params, space)
    losses = []
    def report(epoch, value):
        losses.append(value)
        trial.report(value, epoch)
        if trial.should_prune():
            raise optuna.TrialPruned()
    train(config, report)
    return losses[-1]''', "what train returns"),
    ("tune-objective", '''def objective(trial, space, train):  # every range suggested as a float
    config = {name: trial.suggest_categorical(name, spec["choices"]) if "choices" in spec
              else trial.suggest_float(name, spec["low"], spec["high"]) for name, spec in space.items()}
    def report(epoch, value):
        trial.report(value, epoch)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return train(config, report)''', "as suggest"),
]
WRONG = {gid: answer for gid, answer, _ in reversed(WRONG_ANSWERS)}  # the first wrong answer of each exercise


def test_every_exercise_has_at_least_three_typical_wrong_answers():
    counts = Counter(gid for gid, _, _ in WRONG_ANSWERS)
    assert set(counts) == {gid for _, gid, _, _ in ALL}
    assert min(counts.values()) >= 3, counts
    assert len({answer for _, answer, _ in WRONG_ANSWERS}) == len(WRONG_ANSWERS), "a wrong answer is listed twice"


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # numpy's 0 / 0 in a wrong answer
@pytest.mark.parametrize("gid, answer, feedback", WRONG_ANSWERS,
                         ids=[f"{g}-{i}" for i, (g, _, _) in enumerate(WRONG_ANSWERS)])
def test_a_typical_wrong_answer_fails_only_its_own_check_with_feedback_that_says_why(gid, answer, feedback):
    """The notebook's exercise cells run in order with the wrong answer in place of the reference: every other
    exercise still passes its tests, and this one's hidden check fails with a diagnosis, not a crash."""
    name = next(a[0] for a in ALL if a[1] == gid)
    ns, failed = namespace(), []
    for cell_gid, reference, test in exercise_cells(NOTEBOOKS[name]):
        exec(compile(answer if cell_gid == gid else reference, cell_gid, "exec"), ns)
        try:
            score = run_cell(test, ns, f"{cell_gid}-test")
        except Exception:  # noqa: BLE001 - a visible assert, a hidden check or a crash: the cell fails
            score = 0.0
        if score is not None and score < POINTS[cell_gid]:
            failed.append(cell_gid)
        if cell_gid == gid:
            fn = ns[re.findall(r"^def (\w+)\(", reference, re.M)[-1]]
            points, message = graded(check_of(test), fn, POINTS[gid])
            assert points < POINTS[gid], f"the hidden check gives {points} of {POINTS[gid]} points"
            assert feedback in message, message
            assert "not written yet" not in message
    assert failed == [gid]


def test_parts_of_a_partial_credit_check_add_up_to_the_cells_points():
    """A partial-credit check (it returns its points) shows one line per part; the reference earns them all."""
    ns = namespace()
    for name, gid, answer, test in ALL:
        exec(compile(answer, gid, "exec"), ns)
        fn = ns[re.findall(r"^def (\w+)\(", answer, re.M)[-1]]
        points, message = graded(check_of(test), fn, POINTS[gid])
        assert points == POINTS[gid], f"{gid}: its check's parts give {points} points, the test cell {POINTS[gid]}: " \
                                      "make the parts' points in classroom/checks add up to the cell's points"
        if message:
            assert message.count("✓") == len(message.splitlines()), message


@pytest.mark.parametrize("reach", [
    "import importlib\ndef clean_review(review):\n    return getattr(importlib.import_module('sentiment_lib.text'), 'clean_' + 'text')(review)",
    "from sentiment_lib import text as t\ndef clean_review(review, _f=t.clean_text):\n    return _f(review)",
    "import sentiment_lib.text as t\nsaved = {'f': t.clean_text}\ndef clean_review(review):\n    try:\n        return saved['f'](review)\n    except Exception:\n        return review.lower()",
])
def test_an_answer_that_reaches_the_library_answer_indirectly_scores_zero(reach):
    """getattr, importlib, a default argument, a dict, a caught refusal: while the answer runs, the library's
    own answer refuses to run, and the library works again afterwards."""
    from sentiment_lib import text

    ns = namespace()
    exec(reach, ns)
    points, message = graded(checks.check_clean_review, ns["clean_review"], 2)
    assert points == 0 and "refuses to run while your answer is graded" in message, message
    assert text.clean_text("A <b>B</b>!").split() == ["a", "b"]


def test_the_library_function_itself_is_not_an_answer():
    from sentiment_lib import text

    with pytest.raises(checks.Failed, match="sentiment_lib's own function"):
        checks.check_clean_review(text.clean_text)


def test_an_archive_of_submissions_is_refused_with_how_to_unpack_it(tmp_path):
    from classroom.course import ClassroomError
    from classroom.grade import submissions

    archive = tmp_path / "week3.zip"
    archive.write_bytes(b"PK\x03\x04")
    with pytest.raises(ClassroomError, match=r"is an archive: unpack it first \(e.g. `unzip week3.zip"):
        submissions(archive)
