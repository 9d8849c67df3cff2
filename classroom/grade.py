"""The autograder: ``grade(path)`` grades one filled notebook or a folder of submissions.

For each submission it finds which of the five notebooks it is (from its graded cells, not its file name),
restores deleted test cells from the reference, injects the grading parameters (papermill; ``PROFILE="smoke"``
by default, so training and the study run on tiny settings), runs nbgrader's ``autograde`` in a throwaway
course with a per-cell time limit and a copy of a reference run directory (what the notebooks before it
prepared), and reads the points per exercise from the gradebook. nbgrader restores every graded test cell,
hidden tests included, from the reference, so an edited or deleted test gains nothing.

Out: ``grades.csv`` (one row per submission: points per exercise, total, status and a note) and
``feedback/<student>/<assignment>.html`` (nbgrader's feedback without hidden tests or tracebacks). A bad
submission (not a notebook, another assignment, a crash, a cell that never ends) gets a clear note and 0
points and never stops the others.
"""
from __future__ import annotations

import csv
import functools
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import nbformat

from sentiment_lib import config, pipeline
from sentiment_lib.files import atomic_path

from .course import (ClassroomError, Course, _tail, assignments, exercise_name, exercises, graded_ids,
                     nbgrader_meta, read_json_notebook)

GRADING_PROFILE = "smoke"
CELL_TIMEOUT = 120      # seconds per cell while grading
SUBMISSION_TIMEOUT = 900  # seconds for a whole notebook (a safety net above the per-cell limit)


@dataclass
class Result:
    """How one submission was graded."""

    file: Path
    student: str
    assignment: str | None
    status: str                      # "graded" or "not graded"
    points: float = 0.0
    max_points: float = 0.0
    scores: dict[str, float] = field(default_factory=dict)   # exercise name -> points
    failures: dict[str, str] = field(default_factory=dict)   # exercise name -> the failing check's message
    notes: list[str] = field(default_factory=list)
    feedback: Path | None = None
    seconds: float = 0.0

    def line(self) -> str:
        score = f"{self.points:g}/{self.max_points:g}" if self.assignment else "-"
        note = f" — {'; '.join(self.notes)}" if self.notes else ""
        return f"{self.student:16s} {self.assignment or '?':17s} {score:>6s}  {self.status} ({self.seconds:.0f} s){note}"


# --------------------------------------------------------------------------------------------
# What was handed in
# --------------------------------------------------------------------------------------------


ARCHIVES = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar")


def submissions(path: Path) -> list[tuple[Path, str]]:
    """``(file, student id)`` for each submission under ``path``: the file itself, or every file in the folder
    (a sub-folder per student, ``alice/03_baseline.ipynb``, or flat files named per student). Hidden files and
    Jupyter's ``.ipynb_checkpoints`` are skipped."""
    path = Path(path)
    if not path.exists():
        raise ClassroomError(f"{path} does not exist: give a submitted notebook or a folder of submissions.")
    if path.is_file() and path.suffix.lower() in ARCHIVES:
        raise ClassroomError(f"{path} is an archive: unpack it first (e.g. `unzip {path.name} -d submissions/` or "
                             f"`tar -xf {path.name} -C submissions/`), then grade the folder it makes.")
    if path.is_file():
        return [(path, _student_of(path, path.parent.resolve().name))]
    found = []
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path)
        if any(part.startswith(".") for part in rel.parts):
            continue
        found.append((file, _student_id(rel.parts[0]) if len(rel.parts) > 1 else
                      _student_of(file, path.resolve().name)))
    if not found:
        raise ClassroomError(f"{path} holds no submission: put one notebook per student in it (or a folder per "
                             "student).")
    return found


def _student_of(file: Path, folder: str) -> str:
    """A file's student: its name (``alice.ipynb``), or its folder's when it is named after an assignment
    (``alice/03_baseline.ipynb``)."""
    return _student_id(folder if file.stem in assignments() else file.stem)


def _student_id(raw: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", raw).strip("_") or "student"


@functools.lru_cache(maxsize=None)
def _reference_ids(name: str) -> frozenset[str]:
    return frozenset(graded_ids(nbformat.read(assignments()[name], as_version=4)))


def identify(nb: nbformat.NotebookNode) -> str | None:
    """The assignment whose graded cells ``nb`` holds most of, or ``None`` when it holds none of any."""
    ids = set(graded_ids(nb))
    overlap = {name: len(ids & _reference_ids(name)) for name in assignments()}
    best = max(overlap, key=overlap.get)
    return best if overlap[best] else None


def repair(nb: nbformat.NotebookNode, reference: nbformat.NotebookNode) -> list[str]:
    """Put back deleted graded test cells (from the reference, after the cell that precedes them there) and
    say what was deleted or moved. Solution cells are the student's: a deleted one is only reported."""
    notes = []
    ref_cells = {nbgrader_meta(c)["grade_id"]: c for c in reference.cells if nbgrader_meta(c).get("grade_id")}
    ref_order = list(ref_cells)
    present = graded_ids(nb)
    for gid in ref_order:
        meta = nbgrader_meta(ref_cells[gid])
        if gid in present:
            continue
        if meta.get("grade"):
            before = [g for g in ref_order[: ref_order.index(gid)] if g in graded_ids(nb)]
            where = next((i for i, c in enumerate(nb.cells) if before and nbgrader_meta(c).get("grade_id") == before[-1]),
                         len(nb.cells) - 1)
            nb.cells.insert(where + 1, nbformat.from_dict(json.loads(json.dumps(ref_cells[gid]))))
            notes.append(f"test cell {gid} was deleted and has been restored")
        elif meta.get("solution"):
            notes.append(f"answer cell {gid} was deleted")
    now = [g for g in graded_ids(nb) if g in ref_cells]
    if now != [g for g in ref_order if g in now]:
        moved = next(g for g, r in zip(now, [g for g in ref_order if g in now]) if g != r)
        notes.append(f"graded cells were moved (first: {moved}); they ran in the submitted order")
    return notes


# --------------------------------------------------------------------------------------------
# The reference run the graded notebooks read from
# --------------------------------------------------------------------------------------------


def _fingerprint() -> str:
    digest = hashlib.sha256()
    roots = [*assignments().values(), *sorted((config.project_root() / "sentiment_lib").rglob("*.py"))]
    for path in roots:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def reference_run(work: Path, profile: str = GRADING_PROFILE, progress: bool = True) -> Path:
    """The artifacts folder of the reference chain at ``profile``, made once per version of the notebooks and
    the library (cached in ``work/reference-<profile>/``; ``grade`` uses ``artifacts/grading/``). Each graded notebook runs on a copy of it, so it
    finds what the notebooks before it prepared."""
    folder = Path(work) / f"reference-{profile}"
    stamp = folder / "stamp.json"
    key = _fingerprint()
    if stamp.is_file() and json.loads(stamp.read_text()).get("key") == key:
        return folder / "artifacts"
    shutil.rmtree(folder, ignore_errors=True)
    saved = {k: os.environ.get(k) for k in ("SENTIMENT_ARTIFACTS", "SENTIMENT_REPORTS")}
    os.environ["SENTIMENT_ARTIFACTS"] = str(folder / "artifacts")
    os.environ["SENTIMENT_REPORTS"] = str(folder / "reports")
    try:
        if progress:
            print(f"Running the reference notebooks at profile {profile!r} once (what graded notebooks read) …",
                  flush=True)
        pipeline.run_chain(profile, out_dir=folder / "reports", html=False, progress=False, publish=False)
    except pipeline.ChainError as err:
        raise ClassroomError(f"The reference notebooks could not run at profile {profile!r}, so no notebook can be "
                             f"graded (each needs what the ones before it prepare):\n{err}") from None
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    shutil.rmtree(folder / "artifacts" / profile / "run.lock", ignore_errors=True)
    stamp.write_text(json.dumps({"key": key, "profile": profile}))
    return folder / "artifacts"


# --------------------------------------------------------------------------------------------
# Grading
# --------------------------------------------------------------------------------------------


def _inject(nb: nbformat.NotebookNode, dest: Path, parameters: dict) -> None:
    """Write ``nb`` to ``dest`` with papermill's injected-parameters cell (what ``papermill -p`` would run)."""
    import papermill as pm

    raw = dest.with_suffix(".raw.ipynb")
    nbformat.write(nb, str(raw))
    pm.execute_notebook(str(raw), str(dest), parameters=parameters, prepare_only=True, kernel_name="python3",
                        progress_bar=False, log_output=False)
    raw.unlink()


def _error_notes(autograded: Path, cell_timeout: int) -> tuple[list[str], dict[str, str]]:
    """Cells that ran past the time limit, errors outside the exercises, and each failed test's message."""
    nb = nbformat.read(autograded, as_version=4)
    notes, failures = [], {}
    for cell in nb.cells:
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if not errors:
            continue
        meta = nbgrader_meta(cell)
        if any(e.get("ename") == "CellTimeoutError" for e in errors):
            notes.append(f"{_describe(cell)} ran past the {cell_timeout} s limit per cell and was stopped")
        if meta.get("grade"):
            failures[exercise_name(meta["grade_id"])] = f"{errors[0].get('ename')}: {errors[0].get('evalue')}"
        elif not meta:
            notes.append(f"{_describe(cell)} (not an exercise) raised {errors[0].get('ename')}")
    return notes, failures


def _describe(cell: nbformat.NotebookNode) -> str:
    """A cell as a student finds it: its exercise cell's id, else its first line."""
    gid = nbgrader_meta(cell).get("grade_id")
    if gid:
        return f"the cell {gid}"
    first = next((line for line in cell.source.splitlines() if line.strip()), "")
    return f"the cell starting `{first[:60]}`"


def _feedback_page(result: Result, out: Path, nbgrader_html: Path | None) -> Path:
    """The submission's feedback page: nbgrader's, with the grader's notes on top, or a page of notes."""
    dest = out / "feedback" / result.student / f"{result.assignment or Path(result.file).stem}.html"
    banner = ""
    if result.notes:
        items = "".join(f"<li>{html.escape(n)}</li>" for n in result.notes)
        banner = (f'<div style="border:2px solid #b45309;padding:8px 14px;margin:12px;font-family:sans-serif">'
                  f"<b>Grader's notes for {html.escape(result.file.name)}</b><ul>{items}</ul></div>")
    if nbgrader_html is not None and nbgrader_html.is_file():
        page = nbgrader_html.read_text(encoding="utf-8")
        page = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + banner, page, count=1)
    else:
        scored = (f"{result.assignment}: {result.points:g} of {result.max_points:g} points — " + ", ".join(
            f"{name} {points:g}" for name, points in result.scores.items())) if result.status == "graded" \
            else "Not graded: 0 points."
        page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Feedback: "
                f"{html.escape(result.file.name)}</title></head><body>{banner}<p style='margin:12px;"
                f"font-family:sans-serif'>{html.escape(scored)}</p></body></html>")
    with atomic_path(dest) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return dest


def grade_one(course: Course, file: Path, student: str, run_artifacts: Callable[[], Path], out_dir: Path,
              **options) -> Result:
    """Grade one submission in ``course`` (see the module docstring); never raises for a bad submission.
    ``run_artifacts()`` gives the reference run directory to copy (called only when the notebook runs); the
    copy is removed afterwards, whatever happened. Every result gets a feedback page (a page of notes when
    nbgrader wrote none)."""
    try:
        result = _grade_one(course, file, student, run_artifacts, out_dir, **options)
    finally:
        shutil.rmtree(course.root / "runs", ignore_errors=True)
    if result.feedback is None:
        result.feedback = _feedback_page(result, out_dir, None)
    return result


def _grade_one(course: Course, file: Path, student: str, run_artifacts: Callable[[], Path], out_dir: Path, *,
              expected: str | None = None,
              profile: str = GRADING_PROFILE, cell_timeout: int = CELL_TIMEOUT,
              submission_timeout: int = SUBMISSION_TIMEOUT) -> Result:
    start = time.perf_counter()
    result = Result(file=file, student=student, assignment=None, status="not graded")
    nb = read_json_notebook(file)
    if nb is None:
        result.notes.append("not a Jupyter notebook (the file cannot be read as .ipynb JSON)")
        return result
    name = identify(nb)
    if name is None:
        result.notes.append("not a notebook of this course: it has none of the graded cells of the five assignments")
        return result
    if expected and name != expected:
        result.notes.append(f"this is notebook {name}, not {expected}: hand in {expected}.ipynb")
        return result
    result.assignment = name
    reference_path = assignments()[name]
    reference = nbformat.read(reference_path, as_version=4)
    result.max_points = sum(e.points for e in exercises(reference))
    if file.name != reference_path.name:
        result.notes.append(f"file named {file.name}; graded as {reference_path.name}")
    result.notes += repair(nb, reference)

    if name not in course.generated:
        course.generate(name)
    while (student, name) in course.graded:  # a second hand-in of the same notebook: graded too, apart
        student = result.student = _next_id(student)
    course.graded.add((student, name))
    submitted = course.root / "submitted" / student / name / reference_path.name
    submitted.parent.mkdir(parents=True, exist_ok=True)
    shares = pipeline.check_parameters([reference_path], {"PROFILE": profile})
    _inject(nb, submitted, shares[reference_path])
    run = course.root / "runs" / student / name  # removed by grade_one afterwards
    waited = time.perf_counter()
    artifacts = run_artifacts()  # the first notebook that runs may wait for the reference run: not its time
    start += time.perf_counter() - waited
    shutil.copytree(artifacts, run / "artifacts")
    env = {"SENTIMENT_ARTIFACTS": str(run / "artifacts"), "SENTIMENT_REPORTS": str(run / "reports"),
           "SENTIMENT_PROGRESS": "0", "MPLBACKEND": "Agg"}
    try:
        done = course.nbgrader("autograde", name, "--student", student, "--create", "--force",
                               timeout=submission_timeout, env=env)
    except subprocess.TimeoutExpired:
        result.notes.append(f"grading stopped after {submission_timeout} s for the whole notebook")
        result.seconds = time.perf_counter() - start
        return result
    autograded = course.root / "autograded" / student / name / reference_path.name
    log = (done.stdout or "") + (done.stderr or "")
    if not autograded.is_file() or done.returncode != 0:
        died = re.search(r"DeadKernel|Kernel died|kernel died", log)
        result.notes.append("the kernel died while running the notebook (a crash, os._exit or running out of memory)"
                            if died else f"nbgrader could not grade it: {_tail(done, 3)}")
        result.seconds = time.perf_counter() - start
        return result
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course.root / 'gradebook.db'}") as gb:
        submission = gb.find_submission_notebook(name, name, student)
        result.scores = {exercise_name(g.name): float(g.score or 0) for g in submission.grades}
    result.points = sum(result.scores.values())
    result.status = "graded"
    notes, result.failures = _error_notes(autograded, cell_timeout)
    result.notes += notes
    page = course.root / "feedback" / student / name / reference_path.with_suffix(".html").name
    try:
        made = course.nbgrader("generate_feedback", name, "--student", student, "--force", timeout=300,
                               env=env).returncode == 0
    except subprocess.TimeoutExpired:
        made = False
    if not made:
        result.notes.append("nbgrader could not write the feedback page; the points above stand")
    result.feedback = _feedback_page(result, out_dir, page if made else None)
    result.seconds = time.perf_counter() - start
    return result


def write_csv(results: Sequence[Result], dest: Path) -> Path:
    """One row per submission: student, file, assignment, status, points, max_points, one column per exercise
    (in notebook order; empty for another assignment's), notes."""
    columns: list[str] = []
    for name, path in assignments().items():
        if any(r.assignment == name for r in results):
            columns += [e.name for e in exercises(path)]
    with atomic_path(dest) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "file", "assignment", "status", "points", "max_points", *columns, "notes"])
        for r in results:
            writer.writerow([r.student, str(r.file), r.assignment or "", r.status, f"{r.points:g}",
                             f"{r.max_points:g}", *[f"{r.scores[c]:g}" if c in r.scores else "" for c in columns],
                             "; ".join(r.notes)])
    return dest


def grade(path: Path, out_dir: Path | None = None, *, assignment: str | None = None,
          profile: str = GRADING_PROFILE, cell_timeout: int = CELL_TIMEOUT,
          submission_timeout: int = SUBMISSION_TIMEOUT, progress: bool = True,
          work_dir: Path | None = None) -> list[Result]:
    """Grade the submission(s) at ``path`` into ``out_dir`` (default ``grading/``): ``grades.csv`` and
    ``feedback/``. ``assignment`` (e.g. ``"03_baseline"``) marks any other notebook as a wrong hand-in;
    ``work_dir`` holds the cached reference run (default ``artifacts/grading/``)."""
    out_dir = Path(out_dir) if out_dir else config.project_root() / "grading"
    if assignment is not None and assignment not in assignments():
        raise ClassroomError(f"Unknown assignment {assignment!r}; the assignments are {list(assignments())}.")
    handed_in = submissions(path)
    work = Path(work_dir) if work_dir else config.artifacts_dir() / "grading"
    run_artifacts = functools.cache(lambda: reference_run(work, profile, progress))  # only once a notebook runs
    results = []
    with Course(cell_timeout=cell_timeout) as course:
        for file, student in handed_in:
            result = grade_one(course, file, student, run_artifacts, out_dir, expected=assignment, profile=profile,
                               cell_timeout=cell_timeout, submission_timeout=submission_timeout)
            results.append(result)
            if progress:
                print(result.line(), flush=True)
    write_csv(results, out_dir / "grades.csv")
    return results


def _next_id(student: str) -> str:
    """``alice`` → ``alice-2`` → ``alice-3``: two files of one student for one notebook are both graded."""
    stem, _, number = student.rpartition("-")
    return f"{stem}-{int(number) + 1}" if stem and number.isdigit() else f"{student}-2"
