"""Where things live, and the machine a run uses: every path, seeding, device choice, progress bars.

- paths: ``project_root()``, ``data_dir()``, ``run_dir(profile)`` (the run directory through which the
  notebooks hand work to each other) and the files in it (``model_path``, ``final_model_path``,
  ``predictions_path``, ``study_db_path``, ``manifest_path``), ``report_dir(profile)`` (output only: no
  notebook reads from it); each root honours an environment override (``SENTIMENT_HOME``,
  ``SENTIMENT_DATA``, ``SENTIMENT_ARTIFACTS``, ``SENTIMENT_REPORTS``);
- ``seed_everything(seed)``, ``choose_device(preference)``, ``progress_enabled()``;
- :data:`PORTABLE_KERNELS` and ``kernel_environment()``: the numeric libraries' portable code paths (the
  regression snapshots' environment), and which of them this process runs on.

Run parameters (profiles) live in :mod:`sentiment_lib.profiles`.
"""
from __future__ import annotations

import functools
import os
import random
from pathlib import Path

import numpy as np

from .profiles import PRECISIONS

# --------------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------------


def project_root() -> Path:
    """The project's top folder: ``$SENTIMENT_HOME``, else the checkout this package lives in,
    else the nearest parent of the working directory that holds a ``pyproject.toml``."""
    env = os.environ.get("SENTIMENT_HOME")
    if env:
        return Path(env).expanduser().resolve()
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").exists():
        return here
    for parent in [Path.cwd(), *Path.cwd().parents]:
        if (parent / "pyproject.toml").exists():
            return parent
    return Path.cwd()


def _dir(env: str, default: str) -> Path:
    value = os.environ.get(env)
    return Path(value).expanduser().resolve() if value else project_root() / default


def data_dir() -> Path:
    """Downloaded and cached data (``data/``; ``$SENTIMENT_DATA`` overrides). Gitignored."""
    return _dir("SENTIMENT_DATA", "data")


def artifacts_dir() -> Path:
    """Run outputs: prepared data, models, study databases (``artifacts/``). Gitignored."""
    return _dir("SENTIMENT_ARTIFACTS", "artifacts")


def reports_dir() -> Path:
    """Executed notebooks and ``metrics.json`` per profile (``reports/``): the course report."""
    return _dir("SENTIMENT_REPORTS", "reports")


def run_dir(profile: str) -> Path:
    """The run directory through which notebooks 02–05 hand work to each other."""
    return artifacts_dir() / profile


def models_dir(profile: str) -> Path:
    """Model bundles of a run: ``artifacts/<profile>/models/`` (03: baseline.pt, 04: one per model,
    05: final.pt, the one ``python -m sentiment_lib predict`` loads)."""
    return run_dir(profile) / "models"


def model_path(profile: str, name: str) -> Path:
    """The bundle of model ``name`` in a run: ``artifacts/<profile>/models/<name>.pt``."""
    return models_dir(profile) / f"{name}.pt"


FINAL_MODEL = "final"


def final_model_path(profile: str) -> Path:
    """The run's final model (notebook 05), the default bundle of ``predict``: ``models/final.pt``."""
    return model_path(profile, FINAL_MODEL)


def predictions_path(profile: str) -> Path:
    """Notebook 04's test predictions, one column per model: ``artifacts/<profile>/predictions_test.csv``."""
    return run_dir(profile) / "predictions_test.csv"


def study_db_path(profile: str) -> Path:
    """The default (SQLite) home of notebook 05's Optuna study: ``artifacts/<profile>/optuna.db``."""
    return run_dir(profile) / "optuna.db"


def manifest_path(profile: str) -> Path:
    """What each notebook of a run produced (``artifacts/<profile>/metrics.json``; see :mod:`sentiment_lib.rundir`)."""
    return run_dir(profile) / "metrics.json"


def report_dir(profile: str) -> Path:
    """Executed notebooks, their HTML and a copy of the manifest: ``reports/<profile>/`` (output only)."""
    return reports_dir() / profile


def shown_path(path: Path) -> str:
    """``path`` as a reader should see it: relative to the project root when inside it (no build machine's
    home folder in a report), else as given."""
    path = Path(path)
    for root in (project_root(), artifacts_dir().parent):
        try:
            return str(path.resolve().relative_to(root))
        except ValueError:
            continue
    return str(path)


# --------------------------------------------------------------------------------------------
# Seeding and device
# --------------------------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so the same seed gives the same metrics."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def progress_enabled() -> bool:
    """Progress bars on, unless ``$SENTIMENT_PROGRESS`` is ``0`` (the regression tests set it: a
    progress bar is output that nbval would compare)."""
    return os.environ.get("SENTIMENT_PROGRESS", "1") not in ("0", "false", "no")


def choose_device(preference: str = "auto") -> "torch.device":  # noqa: F821
    """``'auto'`` picks CUDA when available, else CPU; ``'cpu'``/``'cuda'`` force one.

    ``$SENTIMENT_DEVICE`` overrides ``'auto'``.
    """
    import torch

    source = "DEVICE"
    if preference == "auto" and "SENTIMENT_DEVICE" in os.environ:
        preference, source = os.environ["SENTIMENT_DEVICE"], "$SENTIMENT_DEVICE"
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if preference == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"{source}='cuda' was asked for but no CUDA GPU is visible; use 'auto' or 'cpu'.")
    if preference not in ("cpu", "cuda"):
        raise ValueError(f"{source} must be 'auto', 'cpu' or 'cuda', got {preference!r}.")
    return torch.device(preference)


@functools.lru_cache(maxsize=1)
def _cpu_info() -> tuple[str, ...]:
    """The lines of /proc/cpuinfo (read once; empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            return tuple(f.read().splitlines())
    except OSError:
        return ()


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively (the ``avx512_bf16`` or ``amx_bf16`` flag; Linux's
    /proc/cpuinfo). AVX2 and plain AVX-512 machines emulate bf16, far slower than float32."""
    flags = next((line for line in _cpu_info() if line.startswith("flags")), "").split()
    return "avx512_bf16" in flags or "amx_bf16" in flags


def choose_precision(preference: str = "auto", device: "torch.device | str" = "cpu") -> str | None:
    """The autocast dtype training and inference use: ``"bfloat16"`` or ``None`` (float32).

    ``"auto"`` (the default of every profile) takes bfloat16 where the hardware has it natively — a CPU with
    AVX512-BF16 or AMX (:func:`cpu_has_native_bf16`), a CUDA GPU that supports it — and float32 elsewhere;
    ``$SENTIMENT_PRECISION`` overrides ``"auto"``; ``"float32"`` and ``"bfloat16"`` force one (bfloat16 on a
    machine without it is correct but slow).
    """
    import torch

    source = "PRECISION"
    if preference == "auto" and os.environ.get("SENTIMENT_PRECISION"):
        preference, source = os.environ["SENTIMENT_PRECISION"], "$SENTIMENT_PRECISION"
    if preference not in PRECISIONS:
        raise ValueError(f"{source} must be one of {PRECISIONS}, got {preference!r}.")
    if preference != "auto":
        return "bfloat16" if preference == "bfloat16" else None
    device = torch.device(device)
    if device.type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else None
    return "bfloat16" if device.type == "cpu" and cpu_has_native_bf16() else None


def precision_description(preference: str = "auto", device: "torch.device | str" = "cpu") -> str:
    """For a report's header: ``"bfloat16 autocast (auto: native bf16)"`` or ``"float32 (auto: no native bf16)"``."""
    chosen = choose_precision(preference, device)
    forced = preference != "auto" or os.environ.get("SENTIMENT_PRECISION", "auto") != "auto"
    why = "forced" if forced else "auto: native bf16" if chosen else "auto: no native bf16"
    return f"{'bfloat16 autocast' if chosen else 'float32'} ({why})"


def machine_description() -> str:
    """The machine a run uses, for a report's header: CPU model, cores, torch's CPU capability, whether it has
    native bfloat16, and the GPU if one is used (``"Intel(R) Xeon(R) Processor, 2 cores, AVX512, native bf16;
    no GPU"``)."""
    import platform

    import torch

    names = [line.split(":", 1)[1].strip() for line in _cpu_info() if line.startswith("model name")]
    model = names[0] if names else platform.processor() or platform.machine()
    capability = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "unknown")()
    bf16 = "native bf16" if cpu_has_native_bf16() else "no native bf16"
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{model}, {os.cpu_count()} cores, {capability}, {bf16}; {gpu}"


# The snapshots' numeric kernels: every numeric library the smoke chain calls runs its portable code path, the same
# on every x86-64 CPU, with a fixed thread count. Left to choose, each library picks its kernels by the CPU (AVX2,
# AVX-512, …) and its threads by the cores, and different kernels round differently (they sum in other orders).
# Checked under qemu's CPU models (docs/measurements.md, Reproducibility): a training gives the same bits on each.
PORTABLE_KERNELS = {
    "ATEN_CPU_CAPABILITY": "default",    # torch's own vectorised kernels: the scalar build
    "ONEDNN_MAX_CPU_ISA": "SSE41",       # oneDNN (the fused LSTM, GRU, RNN kernels): its SSE4.1 kernels
    "MKL_CBWR": "COMPATIBLE",            # MKL (torch's matrix products): its branch that is the same on every CPU
    "OPENBLAS_CORETYPE": "Prescott",     # OpenBLAS (numpy, scipy, gensim's word2vec): its SSE3 kernels
    "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR",  # numpy's dispatched loops: baseline
    "OMP_NUM_THREADS": "2",              # torch, MKL and OpenBLAS threads: what a 2-core machine has by default
    # MKL's vector math (torch's exp, log, tanh, sqrt, erf of a float tensor) has no portable setting: the snapshots'
    # processes preload the C library's functions in its place (sentiment_lib/vml_shim.c, pipeline.math_shim)
    "SENTIMENT_PORTABLE_MATH": "libm",
}


def kernel_environment() -> dict[str, str]:
    """The :data:`PORTABLE_KERNELS` variables set in this process's environment, with their values (``{}`` in an
    ordinary run). What a process computes in floating point depends on them, so whatever is cached across runs
    (word2vec vectors, language models: :func:`sentiment_lib.embeddings.corpus_key`) is keyed by them too."""
    return {name: os.environ[name] for name in PORTABLE_KERNELS if name in os.environ}
