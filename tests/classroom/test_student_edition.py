"""The student edition of the library (classroom/edition.py): the wheel holds no hidden check and none of the
sealed functions' code, and installed alone in a fresh virtual environment it runs a student copy to its last
cell, the sealed functions working for the notebook's own cells."""
import inspect
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from classroom.edition import SEALED_FUNCTIONS, build_edition

# read at import: the autouse isolation (tests/conftest.py) forgets the shell's IMDB source inside each test
IMDB = {k: os.environ[k] for k in ("IMDB_SOURCE", "IMDB_SHA256") if os.environ.get(k)}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    return build_edition(tmp_path_factory.mktemp("edition"))


def body_lines(fn):
    """The lines of ``fn``'s body after its docstring (stripped, non-trivial)."""
    source = textwrap.dedent(inspect.getsource(fn))
    doc = fn.__doc__ or ""
    after = source.split('"""', 2)[-1] if doc else source.split(":\n", 1)[-1]
    return {line.strip() for line in after.splitlines() if len(line.strip()) > 12}


def test_the_wheel_holds_no_check_and_no_sealed_body(wheel):
    import importlib

    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert not [n for n in names if n.startswith("classroom")], "the hidden checks must not ship"
        assert "sentiment_lib/_sealed.py" in names and "sentiment_lib/profiles.toml" in names
        for module, name in SEALED_FUNCTIONS:
            fn = getattr(importlib.import_module(f"sentiment_lib.{module}"), name)
            shipped = zf.read(f"sentiment_lib/{module.replace('.', '/')}.py").decode()
            inner = inspect.unwrap(fn)
            elsewhere = inspect.getsource(inspect.getmodule(inner)).replace(inspect.getsource(inner), "")
            leaked = {line for line in body_lines(inner) if line in shipped and line not in elsewhere}
            assert not leaked, (module, name, sorted(leaked)[:3])


STUDENT_RUN = r'''
import inspect, json, sys
import nbformat
from nbclient import NotebookClient
import sentiment_lib
from sentiment_lib import text
assert sentiment_lib.__file__.startswith(sys.prefix), sentiment_lib.__file__  # the edition, not the project
try:
    import classroom  # noqa: F401
except ImportError:
    pass
else:
    raise AssertionError("the hidden checks are importable in the student's environment")
assert text.clean_text("Don't <b>GO</b>!").split() == ["don't", "go"]  # the sealed body runs
assert "sealed in the student edition" in inspect.getsource(text.clean_text)
nb = nbformat.read(sys.argv[1], as_version=4)
params = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
nb.cells.insert(params + 1, nbformat.v4.new_code_cell('PROFILE = "smoke"'))
NotebookClient(nb, kernel_name="python3", timeout=600, allow_errors=True).execute()
errors = [c.metadata.get("nbgrader", {}).get("grade_id", c.source[:60]) for c in nb.cells
          if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
print(json.dumps({"errors": errors, "last": nb.cells[-1].cell_type == "markdown" or
                  nb.cells[-1].get("execution_count") is not None,
                  "ran": sum(1 for c in nb.cells if c.cell_type == "code" and c.execution_count is not None),
                  "code": sum(1 for c in nb.cells if c.cell_type == "code")}))
'''


@pytest.mark.slow
def test_a_student_copy_runs_to_its_last_cell_with_the_edition_alone(wheel, tmp_path):
    if "IMDB_SOURCE" not in IMDB:
        pytest.skip("needs the IMDB archive: set IMDB_SOURCE (and IMDB_SHA256)")
    from classroom.student import make_student

    make_student(tmp_path / "student", ["01_eda"])
    fresh = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(fresh)], check=True)
    python = fresh / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    # the dependencies from the project's environment, without its sentiment_lib (a plain path: no .pth runs)
    (Path(site) / "project-deps.pth").write_text(
        subprocess.run([sys.executable, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                       check=True, capture_output=True, text=True).stdout)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                    "--quiet", str(wheel)], check=True)
    (tmp_path / "run.py").write_text(STUDENT_RUN)
    env = {**{k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")},
           "SENTIMENT_ARTIFACTS": str(tmp_path / "artifacts"), "SENTIMENT_REPORTS": str(tmp_path / "reports"),
           "SENTIMENT_PROGRESS": "0", "MPLBACKEND": "Agg", **IMDB}
    done = subprocess.run([str(python), str(tmp_path / "run.py"), str(tmp_path / "student" / "01_eda.ipynb")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["last"] and result["ran"] == result["code"], result
    # only the exercises fail (their prompts raise NotImplementedError); every other cell ran
    assert result["errors"] and all(e.startswith("eda-") for e in result["errors"]), result
