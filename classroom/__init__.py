"""The classroom edition: student copies of the five notebooks and an offline autograder (nbgrader).

- ``python -m classroom student`` (``make student``): student versions of every notebook, solutions replaced
  by a prompt, hidden tests removed, outputs cleared, graded cells locked, plus a student README;
- ``python -m classroom grade PATH`` (``make grade``): grade one filled notebook or a folder of submissions
  into a grades CSV and one feedback page per submission.

The exercises live inside the reference notebooks (nbgrader cell metadata); ``classroom.checks`` holds the
hidden tests' logic. The instructors' guide is ``classroom/README.md``. Needs the ``classroom`` extra
(``pip install -e '.[classroom]'``).
"""
