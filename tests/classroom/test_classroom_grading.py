"""The classroom edition end to end, with nbgrader and the real data (like the notebook regression):
student copies leak nothing; the reference notebooks score full marks; the untouched student copies run to
their last cell and score 0; typical wrong answers lose exactly their points; a tampered test gains nothing;
bad submissions get a clear note and never stop the others. One grading run (about five minutes on a 2-core
CPU) serves every test of the module."""
import csv
import html
import shutil

import nbformat
import pytest

from classroom import grade as grading
from classroom.course import CODE_STUB, assignments, exercises, nbgrader_meta
from classroom.student import make_student
from tests.classroom.test_classroom import WRONG

pytestmark = pytest.mark.slow
CELL_TIMEOUT = 45


def cell(nb, gid):
    return next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == gid)


def answered(student_copy, reference, gids):
    """The student copy with the reference's answers for ``gids`` (the others left as handed out)."""
    nb = nbformat.read(student_copy, as_version=4)
    ref = nbformat.read(reference, as_version=4)
    for gid in gids:
        cell(nb, gid).source = cell(ref, gid).source
    return nb


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("classroom")
    students = root / "student"
    written = make_student(students)
    refs = assignments()
    copies = {name: students / path.name for name, path in refs.items()}
    subs = root / "submissions"

    def put(who, nb_or_path, name):
        dest = subs / who / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(nb_or_path, nbformat.NotebookNode):
            nbformat.write(nb_or_path, dest)
        else:
            shutil.copyfile(nb_or_path, dest)

    for name, path in refs.items():
        put("reference", path, path.name)
        put("blank", copies[name], path.name)
    # 02: a vocabulary counted on every split (2 points lost), the rest right
    nb = answered(copies["02_preprocessing"], refs["02_preprocessing"], ["prep-truncate", "prep-pad"])
    cell(nb, "prep-vocab").source = WRONG["prep-vocab"]
    put("wrong", nb, "02_preprocessing.ipynb")
    # 05: an objective that never prunes (2 points lost)
    nb = answered(copies["05_optuna"], refs["05_optuna"], ["tune-suggest"])
    cell(nb, "tune-objective").source = WRONG["tune-objective"]
    put("wrong", nb, "05_optuna.ipynb")
    # 03: the last padded step (2 lost), and a test replaced by `pass` under an unanswered prompt (1 lost)
    nb = answered(copies["03_baseline"], refs["03_baseline"], ["base-step", "base-evaluate"])
    cell(nb, "base-last").source = WRONG["base-last"]
    cell(nb, "base-prf-test").source = "pass"
    put("tampered", nb, "03_baseline.ipynb")
    # 02 answered right, one test deleted (restored: no loss) and one moved above its answer (fails there)
    nb = answered(copies["02_preprocessing"], refs["02_preprocessing"], ["prep-vocab", "prep-truncate", "prep-pad"])
    nb.cells.remove(cell(nb, "prep-pad-test"))
    moved = cell(nb, "prep-truncate-test")
    nb.cells.remove(moved)
    nb.cells.insert(nb.cells.index(cell(nb, "prep-truncate")), moved)
    put("edited", nb, "02_preprocessing.ipynb")
    # 05: an answer that never returns; 03: a kernel that dies
    nb = answered(copies["05_optuna"], refs["05_optuna"], ["tune-suggest"])
    cell(nb, "tune-objective").source = "while True:\n    pass\n"
    put("forever", nb, "05_optuna.ipynb")
    nb = nbformat.read(copies["03_baseline"], as_version=4)
    cell(nb, "base-last").source = "import os\nos._exit(1)\n"
    put("crash", nb, "03_baseline.ipynb")
    # not notebooks of this course
    (subs / "notes").mkdir()
    (subs / "notes" / "answers.txt").write_text("my answers are in my head")
    (subs / "broken").mkdir()
    (subs / "broken" / "03_baseline.ipynb").write_text('{"cells": [')
    other = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('hello')")])
    put("stranger", other, "03_baseline.ipynb")

    out = root / "grading"
    with pytest.MonkeyPatch.context() as env:  # runs before the autouse isolation: keep real folders clean
        env.setenv("SENTIMENT_ARTIFACTS", str(root / "artifacts"))
        env.setenv("SENTIMENT_REPORTS", str(root / "reports"))
        results = grading.grade(subs, out, cell_timeout=CELL_TIMEOUT, progress=False, work_dir=root / "work")
    return {"root": root, "students": students, "written": written, "out": out, "subs": subs,
            "results": {(r.student, r.assignment or r.file.name): r for r in results}, "copies": copies}


def test_student_copies_reveal_no_solution_hidden_test_or_output(course):
    for name, reference in assignments().items():
        copy_ = nbformat.read(course["copies"][name], as_version=4)
        text = course["copies"][name].read_text()
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS", "classroom", "checks."):
            assert marker not in text, (name, marker)
        assert all(not c.get("outputs") and c.get("execution_count") is None
                   for c in copy_.cells if c.cell_type == "code")
        solutions = [c for c in copy_.cells if nbgrader_meta(c).get("solution")]
        assert solutions and all(CODE_STUB.splitlines()[-1] in c.source for c in solutions)
        graded = [c for c in copy_.cells if nbgrader_meta(c).get("grade")]
        assert graded and all(c.metadata.get("editable") is False and c.metadata.get("deletable") is False
                              for c in graded)
        assert [e.grade_id for e in exercises(copy_)] == [e.grade_id for e in exercises(reference)]
    readme = (course["students"] / "README.md").read_text()
    assert all(f"{name}.ipynb" in readme for name in assignments())


def test_reference_notebooks_score_full_marks(course):
    for name, path in assignments().items():
        r = course["results"][("reference", name)]
        assert r.status == "graded" and r.max_points > 0 and r.points == r.max_points, r.line()
        assert not r.notes, r.notes


def test_untouched_student_copies_run_to_the_end_and_score_zero(course):
    for name in assignments():
        r = course["results"][("blank", name)]
        assert r.status == "graded" and r.points == 0 and set(r.scores.values()) == {0.0}, r.line()
        assert len(r.scores) == len(exercises(assignments()[name]))
        assert not r.notes, r.notes  # no cell outside the exercises failed, none timed out
        assert all("NotImplementedError" in msg for msg in r.failures.values())


def test_typical_wrong_answers_lose_exactly_their_points(course):
    r = course["results"][("wrong", "02_preprocessing")]
    assert r.scores == {"prep-vocab": 0, "prep-truncate": 2, "prep-pad": 1}, r.scores
    r = course["results"][("wrong", "05_optuna")]
    assert r.scores == {"tune-suggest": 2, "tune-objective": 0}, r.scores
    assert "prune" in r.failures["tune-objective"]


def test_a_tampered_test_gains_nothing(course):
    r = course["results"][("tampered", "03_baseline")]
    assert r.scores == {"base-last": 0, "base-step": 2, "base-evaluate": 2, "base-prf": 0, "base-mcnemar": 0}, r.scores
    assert r.failures["base-last"].startswith("AssertionError"), r.failures  # the visible test catches it


def test_deleted_and_moved_test_cells(course):
    r = course["results"][("edited", "02_preprocessing")]
    assert r.scores == {"prep-vocab": 2, "prep-truncate": 0, "prep-pad": 1}, r.scores
    assert any("prep-pad-test was deleted and has been restored" in n for n in r.notes), r.notes
    assert any("moved" in n for n in r.notes), r.notes


def test_a_cell_that_runs_forever_is_stopped_and_the_rest_graded(course):
    r = course["results"][("forever", "05_optuna")]
    assert r.status == "graded" and r.scores == {"tune-suggest": 2, "tune-objective": 0}
    assert any(f"{CELL_TIMEOUT} s limit" in n for n in r.notes), r.notes


def test_bad_submissions_get_a_clear_line_and_zero(course):
    res = course["results"]
    assert "kernel died" in "; ".join(res[("crash", "03_baseline")].notes)
    assert res[("crash", "03_baseline")].status == "not graded"
    assert "not a Jupyter notebook" in res[("notes", "answers.txt")].notes[0]
    assert "not a Jupyter notebook" in res[("broken", "03_baseline.ipynb")].notes[0]
    assert "none of the graded cells" in res[("stranger", "03_baseline.ipynb")].notes[0]


def test_grades_csv_and_feedback(course):
    rows = list(csv.DictReader(open(course["out"] / "grades.csv", encoding="utf-8")))
    assert len(rows) == len(course["results"])
    by = {(r["student"], r["assignment"] or r["file"].rsplit("/", 1)[-1]): r for r in rows}
    assert by[("tampered", "03_baseline")]["points"] == "4" and by[("tampered", "03_baseline")]["base-last"] == "0"
    assert "kernel died" in by[("crash", "03_baseline")]["notes"]
    for r in course["results"].values():
        page = r.feedback.read_text()
        assert "BEGIN HIDDEN" not in page and "classroom" not in page and "checks." not in page, r.feedback
        assert all(html.escape(note) in page for note in r.notes), r.feedback


def test_a_notebook_of_another_assignment_is_named(course):
    results = grading.grade(course["copies"]["02_preprocessing"], course["out"] / "other", assignment="03_baseline",
                            progress=False, cell_timeout=CELL_TIMEOUT, work_dir=course["root"] / "work")
    [r] = results
    assert r.status == "not graded" and "this is notebook 02_preprocessing, not 03_baseline" in r.notes[0]
