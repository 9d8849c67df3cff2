"""Student copies: ``make_student(out_dir)`` writes the five notebooks as assignments, the student edition of
the library (a wheel, :mod:`classroom.edition`) and a README.

nbgrader's ``generate_assignment`` replaces each solution by a prompt (``# YOUR CODE HERE`` /
``raise NotImplementedError()``), removes the hidden tests, clears outputs and locks the graded cells;
:func:`leaks` then checks every copy against its reference before anything is written to ``out_dir``.
"""
from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import nbformat

from sentiment_lib import config
from sentiment_lib.files import atomic_path

from .course import ClassroomError, Course, assignments, exercises, nbgrader_meta

SOLUTION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "classroom")


def default_out_dir() -> Path:
    return config.project_root() / "student"


def solution_lines(reference: nbformat.NotebookNode) -> dict[str, set[str]]:
    """``{grade_id: lines of its solution}`` of every solution cell (stripped, non-empty)."""
    found = {}
    for cell in reference.cells:
        meta = nbgrader_meta(cell)
        if meta.get("solution"):
            found[meta["grade_id"]] = {line.strip() for block in SOLUTION.findall(cell.source)
                                       for line in block.splitlines() if line.strip()}
    return found


def leaks(student: nbformat.NotebookNode, reference: nbformat.NotebookNode) -> list[str]:
    """What a student copy reveals or lacks: solution text, hidden tests, outputs, unlocked graded cells.
    An empty list means the copy is fit to hand out."""
    problems = []
    solutions = solution_lines(reference)
    for number, cell in enumerate(student.cells, 1):
        meta = nbgrader_meta(cell)
        for marker in MARKERS:
            if marker in cell.source:
                problems.append(f"cell {number} contains {marker!r}")
        if meta.get("solution"):
            shown = {line.strip() for line in cell.source.splitlines()} & solutions.get(meta["grade_id"], set())
            if shown:
                problems.append(f"cell {number} ({meta['grade_id']}) shows solution lines: {sorted(shown)[:3]}")
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None):
            problems.append(f"cell {number} keeps outputs")
        if (meta.get("grade") or meta.get("locked")) and not meta.get("solution") and \
                cell.metadata.get("editable", True):
            problems.append(f"cell {number} ({meta.get('grade_id')}) is graded or read-only but not locked")
    if [e.grade_id for e in exercises(student)] != [e.grade_id for e in exercises(reference)]:
        problems.append("the graded cells differ from the reference's")
    return problems


STUDENT_README = """# Sentiment analysis of IMDB reviews: the assignments

Five notebooks, to be done in order: each one reads what the previous one prepared.

{table}

**Setting up.** In this folder, with Python {python} (the edition is built for it):

```bash
python{python} -m venv .venv
.venv/bin/pip install {wheel}     # the library and its dependencies (Windows: .venv\\Scripts\\pip)
.venv/bin/jupyter lab
```

This is the student edition of the project's library: the functions the exercises ask you to write work (the
notebooks use them after each exercise) but their code is not shown. The first code cell of each notebook holds its
parameters: `PROFILE = "smoke"` runs the whole chain in a few minutes on a laptop (that is also what the
grader uses); `"quick"` takes about a quarter of an hour and gives the numbers of the course report.

**The exercises.** Each exercise is a short text, a cell where you write a function, and a locked test cell
under it. Replace `raise NotImplementedError()` with your code, keep the function's name and arguments, and
run the test cell: when it prints nothing, the visible checks pass. More checks run when the notebook is
graded, on other inputs, so make the function follow its docstring, not only the visible examples. The
notebook does not depend on your answers: after each exercise it goes on with the project's own,
tested implementation, so a wrong answer never breaks the rest of your run.

**Handing in.** Run the notebook from top to bottom (Kernel → Restart and run all), save it, and hand in the
`.ipynb` file under its own name. Do not delete, move or edit the locked cells: they are restored from the
original when grading, so changing a test gains nothing, and a deleted cell costs its points. Each cell may
run at most a few minutes while grading.
"""


def _readme(names: list[str], copies: dict[str, Path], wheel: Path) -> str:
    rows = ["| notebook | exercises | points |", "|---|---|---|"]
    for name in names:
        found = exercises(nbformat.read(copies[name], as_version=4))
        rows.append(f"| `{name}.ipynb` | {len(found)} | {sum(e.points for e in found):g} |")
    python = "{}.{}".format(*sys.version_info[:2])
    return STUDENT_README.format(table="\n".join(rows), python=python, wheel=wheel.name)


def make_student(out_dir: Path | None = None, names: list[str] | None = None) -> list[Path]:
    """Write the student copies of ``names`` (default: all five) and README.md into ``out_dir``
    (default ``student/``), with the student edition of the library; return the paths written. Nothing is
    written when a copy would leak."""
    out_dir = Path(out_dir) if out_dir else default_out_dir()
    every = assignments()
    names = list(names or every)
    unknown = [n for n in names if n not in every]
    if unknown:
        raise ClassroomError(f"Unknown notebook(s) {unknown}; the assignments are {list(every)}.")
    with Course() as course:
        copies = {name: course.generate(name) for name in names}
        for name, path in copies.items():
            problems = leaks(nbformat.read(path, as_version=4), nbformat.read(every[name], as_version=4))
            if problems:
                raise ClassroomError(f"The student copy of {name} is not fit to hand out: {'; '.join(problems)}")
        out_dir.mkdir(parents=True, exist_ok=True)
        from .edition import build_edition

        written = [build_edition(out_dir)]
        for name, path in copies.items():
            with atomic_path(out_dir / path.name) as tmp:
                shutil.copyfile(path, tmp)
            written.append(out_dir / path.name)
        with atomic_path(out_dir / "README.md") as tmp:
            tmp.write_text(_readme(names, {n: out_dir / p.name for n, p in copies.items()}, written[0]))
        written.append(out_dir / "README.md")
    return written
