"""The exercises, without nbgrader: every reference answer passes its visible and hidden tests, every
unanswered prompt and every typical wrong answer fails exactly its own exercise, and the notebooks carry
well-formed nbgrader metadata (≥ 2 exercises per notebook, ≥ 12 in all, points on every test)."""
import re

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
    assert sum(counts.values()) >= 12
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
        exec(compile(test, f"{gid}-test", "exec"), ns)  # visible and hidden tests: must not raise
        exec(compile(student_form(answer), gid, "exec"), blank)
        with pytest.raises(Exception) as err:  # the prompt as handed out raises NotImplementedError
            exec(compile(test, f"{gid}-test", "exec"), blank)
        assert isinstance(err.value, (NotImplementedError, checks.Failed)), err.value


# Typical wrong answers, one per exercise: each must fail its own hidden check (test_classroom_grading.py runs
# some of them through nbgrader).
WRONG = {
    "eda-overlap": '''def train_test_overlap(frame):  # counts rows, not distinct texts, and unlabelled ones too
    train = set(frame.loc[frame["split"] == "train", "text"])
    return int(frame.loc[frame["split"] == "test", "text"].isin(train).sum())''',
    "eda-clean": '''import re
def clean_review(review):  # the tutorial's regex: only the first character
    return re.sub(r"^[^a-z0-9\\s]", "", review.lower())''',
    "prep-vocab": '''from collections import Counter
def build_vocab(token_lists, subsets, max_size=None, min_freq=1):  # counts every split
    counts = Counter(t for tokens in token_lists for t in tokens)
    kept = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
    return ["<pad>", "<unk>", *(kept if max_size is None else kept[: max_size - 2])]''',
    "prep-truncate": '''def truncate(ids, max_len, side="head"):  # head+tail split half and half
    if len(ids) <= max_len:
        return ids
    if side == "head":
        return ids[:max_len]
    if side == "tail":
        return ids[len(ids) - max_len:]
    return np.concatenate([ids[: max_len // 2], ids[len(ids) - (max_len - max_len // 2):]])''',
    "prep-pad": '''def pad_batch(seqs):  # padding before the review
    width = max(len(s) for s in seqs)
    tokens = torch.tensor([[0] * (width - len(s)) + list(s) for s in seqs])
    return tokens, torch.tensor([len(s) for s in seqs])''',
    "base-last": '''def last_real_state(outputs, lengths):  # the last padded step
    return outputs[:, -1]''',
    "base-step": '''import torch.nn.functional as F
def train_step(model, batch, optimizer, grad_clip):  # gradients pile up: no zero_grad
    model.train()
    loss = F.binary_cross_entropy_with_logits(model(batch.tokens, batch.lengths), batch.labels)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss.item()''',
    "base-evaluate": '''import torch.nn.functional as F
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
    return {"loss": total / n, "accuracy": correct / n}''',
    "base-prf": '''def precision_recall_f1(cm):  # precision and recall swapped
    (tn, fp), (fn, tp) = cm
    precision, recall = tp / (tp + fn), tp / (tp + fp)
    return precision, recall, 2 * precision * recall / (precision + recall)''',
    "impr-pool": '''def masked_mean_max(outputs, lengths):  # ignores the mask
    return torch.cat([outputs.mean(dim=1), outputs.max(dim=1).values], dim=-1)''',
    "impr-attention": '''def attention_weights(scores, lengths):  # softmax over every step, padding included
    return torch.softmax(scores, dim=1)''',
    "tune-suggest": '''def suggest(trial, space):  # ranges never on a log scale
    values = {}
    for name, spec in space.items():
        if "choices" in spec:
            values[name] = trial.suggest_categorical(name, spec["choices"])
        elif isinstance(spec["low"], int) and isinstance(spec["high"], int):
            values[name] = trial.suggest_int(name, spec["low"], spec["high"])
        else:
            values[name] = trial.suggest_float(name, spec["low"], spec["high"])
    return values''',
    "tune-objective": '''def objective(trial, space, train):  # reports nothing, never prunes
    config = tuning.space.search_space(trial, params, space)
    return train(config, lambda epoch, value: None)''',
}


def test_every_exercise_has_a_typical_wrong_answer():
    assert set(WRONG) == {gid for _, gid, _, _ in ALL}


@pytest.mark.parametrize("gid", sorted(WRONG))
def test_a_typical_wrong_answer_fails_its_hidden_check(gid):
    name, _, answer, test = next(a for a in ALL if a[1] == gid)
    hidden = HIDDEN.search(test).group(1)
    check = getattr(checks, re.search(r"checks\.(check_\w+)\(", hidden).group(1))
    fn_name = re.findall(r"^def (\w+)\(", answer, re.M)[-1]
    ns = namespace()
    exec(compile(WRONG[gid], gid, "exec"), ns)
    with pytest.raises(checks.Failed) as err:
        check(ns[fn_name])
    assert "not written yet" not in str(err.value)  # a real diagnosis, not the stub's message


# More typical wrong answers, as students write them, each with the words its check's feedback must contain.
MORE_WRONG = [
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
    return {"loss": sum(losses) / len(losses), "accuracy": sum(accuracies) / len(accuracies)}''', "differs"),
    ("impr-attention", '''from sentiment_lib import models
def attention_weights(scores, lengths):  # hands the exercise to the library
    return models.masked_softmax(scores, lengths)''', "sentiment_lib.models.masked_softmax"),
    ("prep-truncate", '''from sentiment_lib.text import truncate as library_truncate
def truncate(ids, max_len, side="head"):
    return library_truncate(ids, max_len, side)''', "sentiment_lib.text.truncate"),
    ("impr-pool", '''import sentiment_lib.models
def masked_mean_max(outputs, lengths):
    return sentiment_lib.models.masked_mean_max_pool(outputs, lengths)''', "the library's own answer"),
]


@pytest.mark.parametrize("gid, answer, feedback", MORE_WRONG, ids=[f"{g}-{i}" for i, (g, _, _) in enumerate(MORE_WRONG)])
def test_more_typical_wrong_answers_fail_with_feedback_that_says_why(gid, answer, feedback):
    _, _, reference, test = next(a for a in ALL if a[1] == gid)
    hidden = HIDDEN.search(test).group(1)
    check = getattr(checks, re.search(r"checks\.(check_\w+)\(", hidden).group(1))
    ns = namespace()
    exec(compile(answer, gid, "exec"), ns)
    with pytest.raises(checks.Failed, match=re.escape(feedback)):
        check(ns[re.findall(r"^def (\w+)\(", reference, re.M)[-1]])


def test_the_library_function_itself_is_not_an_answer():
    from sentiment_lib import text

    with pytest.raises(checks.Failed, match="sentiment_lib's own function"):
        checks.check_clean_review(text.clean_text)


def test_checks_name_the_problem_for_a_padding_that_leaks_into_pooling():
    ns = namespace()
    exec(compile(WRONG["impr-pool"], "pool", "exec"), ns)
    with pytest.raises(checks.Failed, match="padded steps"):
        checks.check_masked_mean_max(ns["masked_mean_max"])


def test_an_archive_of_submissions_is_refused_with_how_to_unpack_it(tmp_path):
    from classroom.course import ClassroomError
    from classroom.grade import submissions

    archive = tmp_path / "week3.zip"
    archive.write_bytes(b"PK\x03\x04")
    with pytest.raises(ClassroomError, match=r"is an archive: unpack it first \(e.g. `unzip week3.zip"):
        submissions(archive)
