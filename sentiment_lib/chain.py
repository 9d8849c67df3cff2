"""The notebook chain: which notebooks there are, in which order, their parameters and their cells.

The five notebooks live in ``notebooks/``; their regression snapshots (executions of the ``smoke`` profile) in
``tests/regression/``. The report shows exercise cells with their solutions redacted (:func:`redact_source`):
a report handed to students must not carry the answers.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import nbformat

from . import config

NOTEBOOKS = ("01_eda", "02_preprocessing", "03_baseline", "04_improvements", "05_optuna")
SNAPSHOT_PROFILE = "smoke"


def notebooks_dir() -> Path:
    return config.project_root() / "notebooks"


def snapshots_dir() -> Path:
    return config.project_root() / "tests" / "regression"


def chain(names: Sequence[str] | None = None) -> list[Path]:
    """Source notebooks of the chain, in order; ``names`` selects by prefix (``"02"``) or name."""
    found = [notebooks_dir() / f"{n}.ipynb" for n in NOTEBOOKS if (notebooks_dir() / f"{n}.ipynb").exists()]
    if names:
        unknown = [n for n in names if not any(p.stem.startswith(n) for p in found)]
        if unknown:
            raise ValueError(f"No notebook matches {unknown}; the chain has {[p.stem for p in found]}.")
        found = [p for p in found if any(p.stem.startswith(n) for n in names)]
    return found


def declared_parameters(notebook: Path) -> set[str]:
    """The names a notebook's ``parameters`` cell assigns (what papermill may inject)."""
    import papermill as pm

    return set(pm.inspect_notebook(str(notebook)))


_SOLUTION = re.compile(r"^([ \t]*)### BEGIN SOLUTION\n.*?### END SOLUTION[ \t]*\n?", re.S | re.M)
_HIDDEN_TESTS = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS\n.*?### END HIDDEN TESTS[ \t]*\n?", re.S | re.M)
SOLUTION_STUB = "# The reference solution is not published in the report: it is the exercise.\nraise NotImplementedError()\n"


def redact_source(source: str) -> str:
    """An exercise cell's source as the report shows it: each ``### BEGIN SOLUTION`` … ``### END SOLUTION`` block
    replaced by a stub (indented as the block was), each hidden-tests block removed."""
    stub = lambda m: "".join(m.group(1) + line + "\n" for line in SOLUTION_STUB.splitlines())  # noqa: E731
    return _HIDDEN_TESTS.sub("", _SOLUTION.sub(stub, source)).rstrip("\n")


def redact_solutions(path: Path) -> bool:
    """Rewrite an executed notebook at ``path`` (atomically) with every solution and hidden test redacted
    (:func:`redact_source`): a report handed to students must not carry the answers (instructors have them in
    ``notebooks/``). The outputs stay as executed. Returns whether anything changed."""
    from .files import atomic_path

    nb = nbformat.read(path, as_version=4)
    changed = False
    for cell in nb.cells:
        redacted = redact_source(cell.source)
        if redacted != cell.source:
            cell.source, changed = redacted, True
    if changed:
        with atomic_path(path) as tmp:
            nbformat.write(nb, str(tmp))
    return changed


def cells_of(path: Path, redact: bool = False) -> list[tuple[str, str]]:
    """(type, source) of the notebook's cells, minus papermill's injected-parameters cell (with solutions
    redacted as in the report when ``redact``)."""
    nb = nbformat.read(path, as_version=4)
    return [(c.cell_type, redact_source(c.source) if redact else c.source) for c in nb.cells
            if "injected-parameters" not in c.metadata.get("tags", [])]


def stale_snapshots() -> list[str]:
    """Names of notebooks whose snapshot is missing or whose cells differ from the source's."""
    stale = []
    for source in chain():
        snapshot = snapshots_dir() / source.name
        if not snapshot.exists() or cells_of(snapshot) != cells_of(source):
            stale.append(source.stem)
    return stale
