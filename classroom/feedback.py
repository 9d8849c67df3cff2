"""Feedback without the hidden tests: the preprocessor nbgrader's ``generate_feedback`` runs (see
``classroom.course``) to shorten every error to its last line.

nbgrader's ``ClearHiddenTests`` removes the hidden block from a cell's source, but the traceback of a failing
hidden line would still print it (jupyter/nbgrader#917). The hidden checks (``classroom.checks``) raise a plain
sentence, so ``ename: evalue`` is all a student needs; the traceback lines are dropped.
"""
from __future__ import annotations

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool


class ShortTracebacks(Preprocessor):
    """Replace each error output's traceback by ``ename: evalue``."""

    enabled = Bool(True).tag(config=True)  # nbconvert's preprocessors are off unless enabled

    def preprocess_cell(self, cell, resources, index):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                output["traceback"] = [f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"]
        return cell, resources
