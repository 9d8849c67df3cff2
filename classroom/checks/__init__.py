"""The hidden tests of the exercises, one module per notebook: each ``check_*`` grades a student's function on
small fixed inputs against the library's implementation (or, where the library has none, against what torch
or Optuna compute), with tolerances. None of them trains a model or reads the data, so each runs in well under
a second.

The notebooks' hidden-test blocks are one line each (``checks.check_build_vocab(build_vocab)``); the logic
lives here, outside the student copies and outside the student edition of the library. A failure is a
:class:`Failed` with a plain sentence that says what is wrong without showing the inputs; the grader's
feedback shows only that sentence (``classroom.feedback``). A check with parts (``_common.partial``) prints
one line per part and returns the points earned, which nbgrader takes as the cell's score.
"""
# ruff: noqa: F401 (the hidden-test lines call checks.check_<name>: every check is re-exported here)
from ._common import LIBRARY_ANSWERS, Failed, library_answer, partial, sealed
from .baseline import (check_evaluate, check_last_real_state, check_mcnemar_test, check_precision_recall_f1,
                       check_train_step)
from .eda import CLEAN_CASES, CLEAN_PARTS, check_clean_review, check_train_test_overlap
from .improvements import check_attention_weights, check_log_count_ratio, check_masked_mean_max, check_perturb
from .prep import check_build_vocab, check_pad_batch, check_truncate
from .tuning import check_objective, check_suggest

__all__ = [name for name in dir() if name.startswith("check_")] + [
    "CLEAN_CASES", "CLEAN_PARTS", "Failed", "LIBRARY_ANSWERS", "library_answer", "partial", "sealed"]
