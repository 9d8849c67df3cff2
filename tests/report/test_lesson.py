"""The code shown on the pages is the library's own source."""
import inspect

import pytest

from sentiment_lib import lesson, models, train


def test_the_source_shown_is_the_function_s_own_and_runs():
    shown = lesson.source(models.packed_recurrence)
    assert shown.startswith("def packed_recurrence(") and "pack_padded_sequence" in shown
    namespace = {}
    exec(compile("from __future__ import annotations\nimport torch\nfrom torch.nn.utils.rnn import *\n" + shown,
                 "shown", "exec"), namespace)  # what the page shows is valid, complete Python
    assert inspect.signature(namespace["packed_recurrence"]) == inspect.signature(models.packed_recurrence)


def test_methods_are_dedented_and_several_objects_are_shown_in_order():
    shown = lesson.source(models.RecurrentClassifier.forward, train.classification_loss)
    assert shown.startswith("def forward(self") and "\n\ndef classification_loss(" in shown
    assert lesson.code(train.classification_loss).data.startswith("```python\ndef classification_loss(")


def test_nothing_to_show_names_the_fix():
    with pytest.raises(ValueError, match="source"):
        lesson.source()
