"""An nbgrader course in a throwaway folder, made from the five reference notebooks.

nbgrader wants a course directory (``source/<assignment>/<notebook>.ipynb``, ``submitted/<student>/…``, a
SQLite gradebook) and runs as a command-line program. :class:`Course` builds one in a temporary folder, writes
its ``nbgrader_config.py`` and runs nbgrader commands there, so that neither making student copies nor
grading leaves anything in the checkout. Each notebook is its own assignment, named after it
(``03_baseline``); an exercise is a graded test cell whose ``grade_id`` ends in ``-test``.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from sentiment_lib import chain

# How nbgrader turns a solution into the student's prompt (kept in this form so tests can look for it).
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
TEST_SUFFIX = "-test"


class ClassroomError(RuntimeError):
    """A classroom command cannot go on; the message names the fix."""


def assignments() -> dict[str, Path]:
    """``{assignment name: reference notebook}`` for the five notebooks of the chain."""
    return {path.stem: path for path in chain.chain()}


@dataclass(frozen=True)
class Exercise:
    """One graded exercise: the test cell's ``grade_id`` (``<exercise>-test``), its points and its title."""

    grade_id: str
    points: float
    title: str

    @property
    def name(self) -> str:
        return exercise_name(self.grade_id)


def nbgrader_meta(cell: Any) -> dict[str, Any]:
    return dict(cell.get("metadata", {}).get("nbgrader", {}))


def exercises(notebook: Path | nbformat.NotebookNode) -> list[Exercise]:
    """The graded test cells of a notebook, in order, each with the title of the prompt above it."""
    nb = nbformat.read(notebook, as_version=4) if isinstance(notebook, Path) else notebook
    found, title = [], ""
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        if cell.cell_type == "markdown" and meta.get("locked") and cell.source.startswith("**Exercise"):
            title = cell.source.split("**")[1]
        if meta.get("grade") and cell.cell_type == "code":
            found.append(Exercise(meta["grade_id"], float(meta.get("points", 0)), title))
    return found


def graded_ids(nb: nbformat.NotebookNode) -> list[str]:
    """``grade_id`` of every nbgrader cell of ``nb`` (prompts, solutions, tests), in order."""
    return [m["grade_id"] for m in map(nbgrader_meta, nb.cells) if m.get("grade_id")]


def _config(root: Path, cell_timeout: int) -> str:
    return "\n".join([
        "c = get_config()",
        f"c.CourseDirectory.root = {str(root)!r}",
        "c.CourseDirectory.course_id = 'sentiment'",
        f"c.CourseDirectory.db_url = {'sqlite:///' + str(root / 'gradebook.db')!r}",
        f"c.ClearSolutions.code_stub = {{'python': {CODE_STUB!r}}}",
        "c.ClearSolutions.enforce_metadata = True",
        # nbgrader's own per-cell limit (ExecutePreprocessor.timeout is ignored by nbgrader; jupyter/nbgrader#1463)
        f"c.Execute.timeout = {int(cell_timeout)}",
        "c.Execute.interrupt_on_timeout = True",
        "c.Execute.kernel_manager_class = 'sentiment_lib.kernels.AsyncIPCKernelManager'",  # no TCP port
        "c.OverwriteCells.add_missing_cells = False",  # the grader restores deleted test cells itself
        # feedback: no hidden test in the source, no traceback that would show it (jupyter/nbgrader#917)
        "from nbgrader.preprocessors import GetGrades, ClearHiddenTests",
        "from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor",
        "from classroom.feedback import ShortTracebacks",
        "c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, ShortTracebacks, CSSHTMLHeaderPreprocessor]",
        "",
    ])


class Course:
    """A temporary nbgrader course holding the reference notebooks as assignments.

    Use as a context manager; the folder is removed on exit unless ``keep`` is set.
    """

    def __init__(self, cell_timeout: int = 120, keep: bool = False):
        self.root = Path(tempfile.mkdtemp(prefix="sentiment-classroom-"))
        self.keep = keep
        (self.root / "nbgrader_config.py").write_text(_config(self.root, cell_timeout))
        self.generated: set[str] = set()
        self.graded: set[tuple[str, str]] = set()  # (student id, assignment) already in submitted/

    def __enter__(self) -> "Course":
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def nbgrader(self, *args: str, timeout: float | None = None, env: dict[str, str] | None = None
                 ) -> subprocess.CompletedProcess:
        """Run ``nbgrader <args>`` in the course folder. nbgrader calls the ``alembic`` program by name, so the
        interpreter's ``bin`` folder goes first on ``PATH``. It runs in a process group of its own: on
        ``timeout`` the whole group — the kernel nbgrader started too — is killed, then ``TimeoutExpired``
        is raised."""
        import signal

        full_env = {**os.environ, **(env or {})}
        full_env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + full_env.get("PATH", "")
        process = subprocess.Popen([sys.executable, "-m", "nbgrader", *args], cwd=self.root, env=full_env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise
        return subprocess.CompletedProcess(process.args, process.returncode, out, err)

    def generate(self, name: str) -> Path:
        """``nbgrader generate_assignment`` for one notebook; returns the student copy nbgrader wrote."""
        source = assignments()[name]
        folder = self.root / "source" / name
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, folder / source.name)
        done = self.nbgrader("generate_assignment", name, "--force", timeout=300)
        released = self.root / "release" / name / source.name
        if done.returncode != 0 or not released.exists():
            raise ClassroomError(f"nbgrader could not make the student copy of {name}:\n{_tail(done)}")
        self.generated.add(name)
        return released


def _tail(done: subprocess.CompletedProcess, lines: int = 25) -> str:
    text = (done.stdout or "") + (done.stderr or "")
    return "\n".join(text.strip().splitlines()[-lines:])


def read_json_notebook(path: Path) -> nbformat.NotebookNode | None:
    """The notebook at ``path``, or ``None`` when the file is not a valid Jupyter notebook (not JSON, not the
    notebook format, or failing nbformat's schema)."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
            return None
        nb = nbformat.from_dict(raw) if raw.get("nbformat") == 4 else nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        return nb
    except (OSError, UnicodeDecodeError, ValueError, nbformat.reader.NotJSONError, nbformat.ValidationError,
            KeyError, TypeError, AttributeError):
        return None


def exercise_name(grade_id: str) -> str:
    """The exercise a graded test cell belongs to: its ``grade_id`` without ``-test``."""
    return grade_id[: -len(TEST_SUFFIX)] if grade_id.endswith(TEST_SUFFIX) else grade_id
