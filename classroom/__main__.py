"""``python -m classroom student|grade``: the instructors' two commands (``make student``, ``make grade``)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .course import ClassroomError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m classroom", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    student = sub.add_parser("student", help="write the student copies of the five notebooks and a README")
    student.add_argument("--out", type=Path, default=None, help="folder for the copies (default: student/)")
    student.add_argument("notebooks", nargs="*", help="only these assignments (e.g. 03_baseline); default all")
    grade = sub.add_parser("grade", help="grade a filled notebook or a folder of submissions")
    grade.add_argument("path", type=Path, help="a submitted .ipynb, or a folder (one sub-folder or file per student)")
    grade.add_argument("--out", type=Path, default=None, help="folder for grades.csv and feedback/ (default: grading/)")
    grade.add_argument("--assignment", default=None, help="the notebook every submission should be (e.g. 03_baseline)")
    grade.add_argument("--profile", default=None, help="profile the graded notebooks run at (default: smoke)")
    grade.add_argument("--cell-timeout", type=int, default=None, help="seconds a cell may run (default 120)")
    args = parser.parse_args(argv)
    try:
        if args.command == "student":
            from .student import make_student

            for path in make_student(args.out, args.notebooks or None):
                print(path)
            return 0
        from . import grade as grading

        results = grading.grade(args.path, args.out, assignment=args.assignment,
                                profile=args.profile or grading.GRADING_PROFILE,
                                cell_timeout=args.cell_timeout or grading.CELL_TIMEOUT)
        from sentiment_lib import config

        out = args.out or config.project_root() / "grading"  # grade()'s default
        print(f"{len(results)} submission(s); grades in {out / 'grades.csv'}, feedback in {out / 'feedback'}/")
        return 0
    except ClassroomError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
