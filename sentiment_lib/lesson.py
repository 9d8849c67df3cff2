"""Show the library's real code on a page where the code is the lesson (the models' forward pass, the training
step, the masking, the adversarial step, the language model's objective): the source of the functions
themselves, never a copy that could drift from what ran."""
from __future__ import annotations

import inspect
import textwrap
from typing import Any


def source(*objects: Any) -> str:
    """The source code of ``objects`` (functions, methods or classes), each dedented, separated by a blank line."""
    if not objects:
        raise ValueError("Name at least one function or class whose code to show, e.g. source(models.packed_recurrence).")
    return "\n\n".join(textwrap.dedent(inspect.getsource(obj)).rstrip() for obj in objects)


def code(*objects: Any):
    """``IPython.display.Markdown`` of :func:`source` as a highlighted Python block (what a notebook cell shows)."""
    from IPython.display import Markdown

    return Markdown(f"```python\n{source(*objects)}\n```")
