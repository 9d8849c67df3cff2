"""The student edition of the library: a wheel of ``sentiment_lib`` whose answers to the exercises are sealed.

Students need the library to run the notebooks, and after each exercise the notebook goes on with the
library's own implementation, so that implementation must work on their machines. What the edition takes out
is its *source*: each function of :data:`classroom.checks.LIBRARY_ANSWERS` (``text.clean_text``,
``train.evaluate``, ``uncertainty.mcnemar``, …) keeps its signature and docstring, and its body becomes
``raise NotImplementedError`` under a decorator that puts the compiled body back at import
(``sentiment_lib/_sealed.py`` holds it as marshalled CPython bytecode). The function works; reading it,
``inspect.getsource`` or copying it gives the stub. The hidden checks (``classroom``) are not in the wheel.

Grading never uses the edition: it runs with the instructors' library, where the checks make the exercise's
library answer refuse to run while the student's answer runs (``classroom.checks.sealed``).

Limits (classroom/README.md): bytecode can be disassembled (``dis``), and a sealed function can still be
called as a black box while the student works; the helpers a sealed function calls keep their source.
"""
from __future__ import annotations

import ast
import base64
import marshal
import shutil
import subprocess
import sys
import tempfile
import tomllib
import types
from pathlib import Path

from sentiment_lib import config

from .checks import LIBRARY_ANSWERS
from .course import ClassroomError

SEALED_FUNCTIONS = sorted(set(LIBRARY_ANSWERS.values()))  # (module under sentiment_lib, function name)
STUB = "raise NotImplementedError(\"sealed in the student edition: the body runs from sentiment_lib/_sealed.py\")"

SEALED_MODULE = '''"""Bodies of the functions that the exercises ask students to write, as CPython {major}.{minor} bytecode (the
student edition of the library; classroom/edition.py in the instructors' project makes it)."""
import base64
import marshal
import sys

BUILT_FOR = ({major}, {minor})
BODIES = {bodies!r}


def body(module, name):
    """Decorator: give the stub ``module.name`` its sealed body back (same signature, docstring, defaults)."""
    if sys.version_info[:2] != BUILT_FOR:
        raise ImportError(f"This student edition of sentiment_lib was built for Python {{BUILT_FOR[0]}}.{{BUILT_FOR[1]}}, "
                          f"not {{sys.version_info[0]}}.{{sys.version_info[1]}}: install it in a Python {{BUILT_FOR[0]}}."
                          f"{{BUILT_FOR[1]}} environment, or ask your instructor for an edition built for your Python.")

    def seal(fn):
        code = marshal.loads(base64.b64decode(BODIES[f"{{module.removeprefix('sentiment_lib.')}}.{{name}}"]))
        fn.__code__ = code.replace(co_filename=fn.__code__.co_filename, co_firstlineno=fn.__code__.co_firstlineno)
        return fn
    return seal
'''


def _compiled(source: str, filename: str, name: str) -> types.CodeType:
    """The code object of module-level function ``name`` in ``source``."""
    module = compile(source, filename, "exec")
    found = [c for c in module.co_consts if isinstance(c, types.CodeType) and c.co_name == name]
    if len(found) != 1:
        raise ClassroomError(f"{filename}: expected one module-level function {name!r} to seal, found {len(found)}; "
                             "update classroom.checks.LIBRARY_ANSWERS.")
    if found[0].co_freevars:
        raise ClassroomError(f"{filename}: {name} is a closure and cannot be sealed.")
    return found[0]


def _stubbed(source: str, module: str, name: str) -> str:
    """``source`` with function ``name``'s body replaced by :data:`STUB` (signature, decorators and docstring
    kept) and the decorator that restores the sealed body placed innermost."""
    node = next(n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == name)
    lines = source.splitlines(keepends=True)
    first = node.body[0]
    has_doc = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)
    keep_until = first.end_lineno if has_doc else first.lineno - 1  # the header (and docstring), 1-based inclusive
    indent = " " * first.col_offset
    return "".join([
        *lines[: min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1],
        "from sentiment_lib._sealed import body as _sealed_body  # noqa: E402 (student edition)\n",
        *lines[min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1: node.lineno - 1],
        f"@_sealed_body({module!r}, {name!r})\n",
        *lines[node.lineno - 1: keep_until],
        f"{indent}{STUB}\n",
        *lines[node.end_lineno:],
    ])


def _pyproject(project: Path) -> str:
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    deps = "".join(f"    {d!r},\n".replace("'", '"') for d in meta["dependencies"])
    major, minor = sys.version_info[:2]
    return (f'[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n\n'
            f'[project]\nname = "sentiment_lib"\nversion = "{meta["version"]}+student"\n'
            f'description = "{meta["description"]} Student edition: the exercises\' answers are sealed."\n'
            f'requires-python = "=={major}.{minor}.*"\ndependencies = [\n{deps}]\n\n'
            f'[tool.setuptools.packages.find]\ninclude = ["sentiment_lib*"]\n\n'
            f'[tool.setuptools.package-data]\nsentiment_lib = ["profiles.toml"]\n')


def build_edition(out_dir: Path) -> Path:
    """Write the student edition's wheel into ``out_dir`` and return its path (about 10 s, offline: it builds
    with this environment's setuptools)."""
    project = config.project_root()
    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="sentiment-edition-") as tmp:
        root = Path(tmp)
        package = root / "sentiment_lib"
        shutil.copytree(project / "sentiment_lib", package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.so"))
        bodies: dict[str, str] = {}
        for module, name in SEALED_FUNCTIONS:
            path = package / (module.replace(".", "/") + ".py")
            source = path.read_text(encoding="utf-8")
            code = _compiled(source, f"sentiment_lib/{module.replace('.', '/')}.py", name)
            bodies[f"{module}.{name}"] = base64.b64encode(marshal.dumps(code)).decode()
            path.write_text(_stubbed(path.read_text(encoding="utf-8"), f"sentiment_lib.{module}", name),
                            encoding="utf-8")
        major, minor = sys.version_info[:2]
        (package / "_sealed.py").write_text(SEALED_MODULE.format(major=major, minor=minor, bodies=bodies))
        (root / "pyproject.toml").write_text(_pyproject(project))
        (root / "README.md").write_text("sentiment_lib, student edition.\n")
        out_dir.mkdir(parents=True, exist_ok=True)
        for old in out_dir.glob("sentiment_lib-*.whl"):
            old.unlink()
        done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                               "-w", str(out_dir), str(root)], capture_output=True, text=True)
        wheels = sorted(out_dir.glob("sentiment_lib-*.whl"))
        if done.returncode != 0 or not wheels:
            raise ClassroomError(f"The student edition could not be built (pip wheel, offline, needs setuptools in "
                                 f"this environment: pip install setuptools):\n{done.stdout}{done.stderr}")
    return wheels[-1]
