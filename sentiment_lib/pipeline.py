"""Run the notebook chain with papermill for a profile, and keep the regression snapshots fresh.

``run_chain("quick")`` executes ``notebooks/01_eda.ipynb`` → … → ``05_optuna.ipynb`` (those that
exist) with ``PROFILE`` injected as a papermill parameter, records in each executed copy the commit, machine and
wall time it ran with, and publishes it into ``reports/quick/`` only once it has finished (with the run's
manifest ``artifacts/quick/metrics.json`` copied there for readers, and the report site rebuilt:
:mod:`sentiment_lib.site`). A failing cell stops the chain with ``ChainError`` naming the notebook and the cell;
the executed copy (with the traceback in it) is kept in the run directory, and the report is left as it was.

``write_snapshots()`` executes the chain with the ``smoke`` profile into ``tests/regression/``:
the copies nbval re-runs and compares (:func:`sentiment_lib.chain.stale_snapshots` lists those whose code no
longer matches their source notebook).
"""
from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import nbformat

from . import config, profiles
from .chain import SNAPSHOT_PROFILE, chain, declared_parameters, notebooks_dir, redact_solutions, snapshots_dir


class ChainError(RuntimeError):
    """A notebook of the chain failed; the message names it, the cell and the error."""


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ARROW = re.compile(r"^-+>\s*(\d+)\s?(.*)$")


def raising_line(traceback: Sequence[str]) -> tuple[int, str] | None:
    """``(line number, code)`` of the line of the notebook cell that raised, from an IPython traceback
    (``error`` output's ``traceback`` list: the cell's own frame is the first ``Cell In[…]`` one, and its
    ``---->`` marks the line); ``None`` when the traceback has no such frame."""
    lines = [line for chunk in traceback for line in _ANSI.sub("", chunk).splitlines()]
    in_cell = False
    for line in lines:
        if line.startswith("Cell In["):
            in_cell = True
        elif in_cell and (match := _ARROW.match(line.strip())):
            return int(match.group(1)), match.group(2).strip()
    return None


def _failed_cell(path: Path) -> str:
    """Describe the first cell of an executed notebook whose output is an error, by the line that raised."""
    nb = nbformat.read(path, as_version=4)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    for number, cell in enumerate(code_cells, start=1):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                found = raising_line(out.get("traceback", []))
                if found:
                    return f"code cell {number}, line {found[0]} (`{found[1][:90]}`)"
                first_line = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
                return f"code cell {number} (`{first_line[:70]}`)"
    return "an unknown cell"


def execute(source: Path, dest: Path, parameters: dict[str, Any], progress: bool = True,
            record: bool = True) -> float:
    """Execute one notebook with papermill (kernel cwd: ``notebooks/``); return its wall seconds.

    ``record`` writes what the report's header shows into the executed copy's metadata (``sentiment_run``:
    profile, commit, machine, seconds, finished; see :mod:`sentiment_lib.site`)."""
    import papermill as pm

    from .kernels import AsyncIPCKernelManager  # no kernel listens on a TCP port

    dest.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        pm.execute_notebook(str(source), str(dest), parameters=parameters, cwd=str(notebooks_dir()),
                            kernel_name="python3", progress_bar=progress, kernel_manager_class=AsyncIPCKernelManager)
    except pm.PapermillExecutionError as err:
        raise ChainError(
            f"{source.stem} failed in {_failed_cell(dest)}: {err.ename}: {err.evalue}\n"
            f"The executed copy, with the traceback, is at {dest}."
        ) from None
    seconds = time.perf_counter() - start
    if record:
        profile = parameters.get("PROFILE")
        preference = parameters.get("PRECISION") or profiles.PROFILES.get(profile, {}).get("precision", "auto")
        record_run(dest, profile, seconds,
                   precision=config.precision_description(preference, config.choose_device(parameters.get("DEVICE", "auto"))))
    return seconds


def git_commit() -> tuple[str | None, bool]:
    """The checkout's commit (short hash) and whether it has uncommitted changes outside the run's own outputs
    (``reports/`` and ``docs/results.md``, which ``results`` generates from them); ``(None, False)`` outside git."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=config.project_root(), capture_output=True, text=True,
                              timeout=30, check=True).stdout.strip()

    try:
        # the run's own outputs are not "uncommitted changes" of the code it ran
        return git("rev-parse", "--short", "HEAD"), bool(git("status", "--porcelain", "--untracked-files=no", "--",
                                                              ".", ":(exclude)reports", ":(exclude)docs/results.md"))
    except (OSError, subprocess.SubprocessError):
        return None, False


def record_run(executed: Path, profile: str | None, seconds: float, precision: str | None = None) -> None:
    """Write ``metadata.sentiment_run`` (profile, commit, dirty, machine, precision, seconds, finished) into an
    executed notebook, atomically."""
    from datetime import datetime, timezone

    from .files import atomic_path

    commit, dirty = git_commit()
    nb = nbformat.read(executed, as_version=4)
    nb.metadata["sentiment_run"] = {"profile": profile, "commit": commit, "dirty": dirty,
                                    "machine": config.machine_description(), "precision": precision,
                                    "seconds": round(seconds, 1),
                                    "finished": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    with atomic_path(executed) as tmp:
        nbformat.write(nb, str(tmp))


def check_parameters(notebooks: Sequence[Path], parameters: dict[str, Any]) -> dict[Path, dict[str, Any]]:
    """Each notebook's share of ``parameters``: those its parameters cell declares. A name that no notebook
    of ``notebooks`` declares is a ``ChainError`` naming the parameters there are and the closest match
    (papermill would inject it as a new variable and the notebook would run on with its default), and, when
    another notebook of the chain takes it, which one."""
    declared = {path: declared_parameters(path) for path in notebooks}
    known = set().union(*declared.values()) if declared else set()
    unknown = [name for name in parameters if name not in known]
    if unknown:
        others = {path.stem: declared_parameters(path) for path in chain() if path not in declared}
        everywhere = known.union(*others.values())
        misspelt = [name for name in unknown if name not in everywhere]
        if misspelt:
            raise ChainError(profiles.unknown_parameters_message(misspelt, everywhere, "the notebooks of the chain"))
        raise ChainError("; ".join(
            f"{name} is a parameter of {', '.join(s for s, names in others.items() if name in names)}, not of "
            f"{', '.join(p.stem for p in notebooks)}" for name in unknown) + ": run those notebooks with it, or drop it.")
    check_values(parameters)
    return {path: {k: v for k, v in parameters.items() if k in names} for path, names in declared.items()}


def check_values(parameters: dict[str, Any]) -> None:
    """Check the values of the profile's parameters among ``parameters`` (``PROFILE`` and upper-case names such as
    ``EPOCHS``) against the typed profile before any kernel starts (:func:`sentiment_lib.profiles.resolve`: type,
    range, choices); a ``ChainError`` names the parameter, the bad value and a good one. The notebooks check
    them again inside (a plain papermill run)."""
    profile = parameters.get("PROFILE", profiles.DEFAULT_PROFILE)
    row = profiles.PROFILES[profiles.check_profile(profile)]
    given = {name.lower(): value for name, value in parameters.items() if name.lower() in row}
    try:
        profiles.resolve(profile, **given)
    except ValueError as err:
        raise ChainError(f"{err} Nothing was run.") from None


def staging_dir(profile: str) -> Path:
    """Where the chain executes a notebook before it is published: ``<run dir>/executed/``. A notebook that
    fails or is interrupted stays here, with its traceback; the report keeps its last good page."""
    return config.run_dir(profile) / "executed"


def publish_notebook(executed: Path, dest: Path) -> Path:
    """Copy a finished notebook onto ``dest`` atomically (a reader never sees half a page)."""
    from .files import atomic_path

    with atomic_path(dest) as tmp:
        shutil.copyfile(executed, tmp)
    return dest


def run_chain(profile: str = profiles.DEFAULT_PROFILE, names: Sequence[str] | None = None,
              out_dir: Path | None = None, parameters: dict[str, Any] | None = None,
              html: bool = True, progress: bool = True, publish: bool = True) -> dict[str, float]:
    """Execute the chain for ``profile`` and publish each notebook into ``out_dir`` (default
    ``reports/<profile>/``) when it has finished.

    Each notebook executes into :func:`staging_dir` and replaces its page in ``out_dir`` only when it has run
    to its last cell (with ``publish``: solutions redacted, the run's manifest copied beside it); the site is then
    rebuilt for the pages that changed. A notebook that fails, is interrupted or killed leaves every page of
    ``out_dir`` as it was, and the error names where its executed copy is. Returns seconds per notebook.
    ``parameters`` are extra papermill parameters for every notebook (e.g. ``{"EPOCHS": 2}``).
    """
    profiles.check_profile(profile)  # fail fast on an unknown profile
    out_dir = Path(out_dir) if out_dir else config.report_dir(profile)
    notebooks = chain(names)
    shares = check_parameters(notebooks, {"PROFILE": profile, **(parameters or {})})
    timings = {}
    from .runtime.lock import lock

    with lock(profile):  # a run refused here writes nothing
        try:
            for source in notebooks:
                staged, dest = staging_dir(profile) / source.name, out_dir / source.name
                print(f"[{profile}] {source.stem} → {dest}", flush=True)
                timings[source.stem] = execute(source, staged, shares[source], progress, record=publish)
                if publish:
                    redact_solutions(staged)
                publish_notebook(staged, dest)
                if publish:
                    publish_manifest(profile, out_dir)
                print(f"[{profile}] {source.stem} done in {timings[source.stem]:.0f} s", flush=True)
        finally:  # the pages of the notebooks that finished, also when a later one failed or was interrupted
            if html and timings:
                from .site import build_site

                build_site(profile, out_dir)
    return timings


def publish_manifest(profile: str, out_dir: Path) -> Path | None:
    """Copy the run's manifest into ``out_dir`` (the report) as ``metrics.json``; ``None`` when there is none."""
    source = config.manifest_path(profile)
    if not source.is_file():
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copyfile(source, out_dir / "metrics.json"))


def use_scratch_run_dirs(prefix: str = "sentiment-regression-") -> Path:
    """Point ``$SENTIMENT_ARTIFACTS`` and ``$SENTIMENT_REPORTS`` at a new empty temp folder.

    The regression snapshots are executions from scratch: a run directory left by an earlier run
    (an Optuna study with other settings, say) must neither leak into them nor break them. Kernels
    started afterwards inherit these variables. Returns the folder.
    """
    import tempfile

    scratch = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ["SENTIMENT_ARTIFACTS"] = str(scratch / "artifacts")
    os.environ["SENTIMENT_REPORTS"] = str(scratch / "reports")
    return scratch


def math_shim() -> Path | None:
    """The shared library that gives the snapshots' processes portable elementwise math
    (``sentiment_lib/vml_shim.c``: MKL's vector-math entry points, which torch calls for exp, log, tanh, sqrt, erf,
    … of a float tensor, redefined as loops over the C library's functions), compiled with the system's C
    compiler into ``data/cache/`` the first time, keyed by its source. ``None``, with a warning that says what
    follows, where no compiler is found or it fails."""
    import hashlib
    import subprocess
    import tempfile
    import warnings

    source = Path(__file__).with_name("vml_shim.c")
    code = source.read_bytes()
    target = config.data_dir() / "cache" / f"vml-shim-{hashlib.sha256(code).hexdigest()[:12]}.so"
    if target.exists():
        return target
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if compiler is None:
        warnings.warn("No C compiler (cc) to build the snapshots' portable math (sentiment_lib/vml_shim.c): the "
                      "regression runs on MKL's vector math, whose last bits differ between CPUs. Install gcc.")
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as folder:
        built = Path(folder) / target.name
        done = subprocess.run([compiler, "-O1", "-fno-tree-vectorize", "-fno-fast-math", "-shared", "-fPIC",
                               "-o", str(built), str(source), "-lm"], capture_output=True, text=True)
        if done.returncode != 0:
            warnings.warn(f"Building the snapshots' portable math failed ({compiler}: {done.stderr.strip()[:300]}): "
                          "the regression runs on MKL's vector math, whose last bits differ between CPUs.")
            return None
        os.replace(built, target)  # whole or not at all
    return target


def portable_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with ``config.PORTABLE_KERNELS`` and, preloaded,
    :func:`math_shim`: the environment of a process whose numeric libraries should run their portable kernels
    (a library reads these variables when it loads). nbval compares the regression snapshots in kernels
    started with it (``tests/conftest.py``), as ``write_snapshots`` made them, so that they are the same on
    machines with different CPUs."""
    environment = {**(os.environ if base is None else base), **config.PORTABLE_KERNELS}
    shim = math_shim()
    if shim is not None:
        preloaded = [entry for entry in environment.get("LD_PRELOAD", "").split() if entry != str(shim)]
        environment["LD_PRELOAD"] = " ".join([str(shim), *preloaded])
    return environment


def write_snapshots(names: Sequence[str] | None = None) -> dict[str, float]:
    """Regenerate the nbval snapshots: the chain on the ``smoke`` profile, run from scratch (fresh run
    directories, the numeric libraries on their portable kernels: ``config.PORTABLE_KERNELS``), into
    tests/regression/, without progress bars in their outputs (the kernels inherit ``SENTIMENT_PROGRESS=0``, as
    under ``make test``: nbval compares every output)."""
    use_scratch_run_dirs()
    os.environ.update(portable_environment())  # for the kernels this command starts
    os.environ["SENTIMENT_PROGRESS"] = "0"
    return run_chain(SNAPSHOT_PROFILE, names, out_dir=snapshots_dir(), html=False, progress=False,
                     publish=False)
