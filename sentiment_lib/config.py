"""Project paths, run profiles, parameter validation, seeding and device choice.

Everything a notebook needs to know about *where* things live and *which* parameters a run uses is
here, in one place:

- paths: ``project_root()``, ``data_dir()``, ``run_dir(profile)``, ``report_dir(profile)``; each
  honours an environment override (``SENTIMENT_HOME``, ``SENTIMENT_DATA``, ``SENTIMENT_ARTIFACTS``,
  ``SENTIMENT_REPORTS``);
- profiles: ``PROFILES`` is the one table of parameters per profile (``smoke``, ``quick``, ``full``),
  used by the notebooks, the runner and the tests;
- ``resolve_params(profile, **overrides)`` merges a profile with papermill overrides and rejects
  invalid values with a message that names the fix;
- ``seed_everything(seed)`` and ``choose_device(preference)``.
"""
from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

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


def report_dir(profile: str) -> Path:
    return reports_dir() / profile


# --------------------------------------------------------------------------------------------
# Profiles: the one table of parameters
# --------------------------------------------------------------------------------------------

# ``None`` for a split size means "all of it". Sizes are numbers of reviews after stratified
# subsampling. ``test_size`` None keeps the official 25,000-review test split whole.
# ``embeddings="word2vec"``: 02 pre-trains word vectors on the training subset plus ``pretrain_reviews`` of
# the 50,000 unlabelled reviews (``pretrain_epochs`` passes) and 03–05 start their embedding layers from
# them; ``"random"`` trains every embedding from scratch.
PROFILES: dict[str, dict[str, Any]] = {
    "smoke": dict(
        split="standard", train_size=1200, val_size=300, test_size=600, val_fraction=0.1,
        max_len=96, truncation="head+tail", vocab_size=5000, min_freq=2, remove_stopwords=False,
        embeddings="word2vec", pretrain_reviews=2000, pretrain_epochs=2, embed_dim=32, hidden_size=32,
        num_layers=1, dropout=0.3, batch_size=64, lr=3e-3,
        epochs=2, patience=2, n_trials=2, trial_epochs=1, ensemble=2, seed=42,
    ),
    "quick": dict(
        split="standard", train_size=10000, val_size=2000, test_size=None, val_fraction=0.1,
        max_len=256, truncation="head+tail", vocab_size=20000, min_freq=2, remove_stopwords=False,
        embeddings="word2vec", pretrain_reviews=25000, pretrain_epochs=4, embed_dim=64, hidden_size=64,
        num_layers=1, dropout=0.3, batch_size=64, lr=1e-3,
        epochs=6, patience=2, n_trials=6, trial_epochs=2, ensemble=4, seed=42,
    ),
    "full": dict(
        split="standard", train_size=None, val_size=None, test_size=None, val_fraction=0.1,
        max_len=400, truncation="head+tail", vocab_size=40000, min_freq=2, remove_stopwords=False,
        embeddings="word2vec", pretrain_reviews=50000, pretrain_epochs=5, embed_dim=128, hidden_size=256,
        num_layers=1, dropout=0.4, batch_size=64, lr=1e-3,
        epochs=8, patience=2, n_trials=20, trial_epochs=3, ensemble=4, seed=42,
    ),
}
DEFAULT_PROFILE = "quick"

SPLITS = ("standard", "random")
EMBEDDING_STARTS = ("word2vec", "random")  # pre-trained on train + unlabelled reviews (02), or from scratch
TRUNCATIONS = ("head", "tail", "head+tail")


@dataclass(frozen=True)
class Params:
    """Validated run parameters (a profile with overrides applied); attribute access by name."""

    profile: str
    values: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    def as_dict(self) -> dict[str, Any]:
        return {"profile": self.profile, **self.values}


def _check_positive_int(name: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        extra = " or None (all)" if allow_none else ""
        raise ValueError(f"{name.upper()} must be a positive integer{extra}, got {value!r}.")


def _number(name: str, value: Any) -> float:
    """``value`` as a float; a ``ValueError`` naming the parameter when it is not a finite real number
    (a string such as ``"1e-3"`` is refused, as for the integer parameters: pass the number itself)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        example = {"lr": 0.001, "dropout": 0.3, "val_fraction": 0.1}.get(name, 0.5)
        raise ValueError(f"{name.upper()} must be a number, got {value!r}; give one such as "
                         f"-p {name.upper()} {example} (a number, not a string).")
    return float(value)


def resolve_params(profile: str = DEFAULT_PROFILE, **overrides: Any) -> Params:
    """Merge the profile's row of ``PROFILES`` with non-``None`` overrides and validate.

    Overrides are the notebooks' papermill parameters (upper or lower case names). Raises
    ``ValueError`` naming the bad parameter and the accepted values.
    """
    if profile not in PROFILES:
        raise ValueError(
            f"Unknown PROFILE {profile!r}. Use one of {sorted(PROFILES)} "
            f"(e.g. papermill ... -p PROFILE quick)."
        )
    values = dict(PROFILES[profile])
    for key, value in overrides.items():
        name = key.lower()
        if name not in values:
            raise ValueError(f"Unknown parameter {key!r}. Known parameters: {sorted(values)}.")
        if value is not None:
            values[name] = value

    for name in ("max_len", "vocab_size", "min_freq", "embed_dim", "hidden_size", "num_layers",
                 "batch_size", "epochs", "patience", "n_trials", "trial_epochs", "ensemble"):
        _check_positive_int(name, values[name])
    for name in ("train_size", "val_size", "test_size"):
        _check_positive_int(name, values[name], allow_none=True)
    if values["vocab_size"] < 3:
        raise ValueError("VOCAB_SIZE must be at least 3 (PAD, UNK and one word).")
    if values["split"] not in SPLITS:
        raise ValueError(f"SPLIT must be one of {SPLITS}, got {values['split']!r}.")
    if values["embeddings"] not in EMBEDDING_STARTS:
        raise ValueError(f"EMBEDDINGS must be one of {EMBEDDING_STARTS}, got {values['embeddings']!r}.")
    for name, least in (("pretrain_reviews", 0), ("pretrain_epochs", 1)):
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name.upper()} must be an integer >= {least}, got {value!r}.")
    if values["truncation"] not in TRUNCATIONS:
        raise ValueError(f"TRUNCATION must be one of {TRUNCATIONS}, got {values['truncation']!r}.")
    for name in ("val_fraction", "dropout", "lr"):
        values[name] = _number(name, values[name])
    if not 0.0 < values["val_fraction"] < 0.5:
        raise ValueError(f"VAL_FRACTION must be in (0, 0.5), got {values['val_fraction']!r}.")
    if not 0.0 <= values["dropout"] < 1.0:
        raise ValueError(f"DROPOUT must be in [0, 1), got {values['dropout']!r}.")
    if not values["lr"] > 0:
        raise ValueError(f"LR must be positive, got {values['lr']!r}.")
    if not isinstance(values["seed"], int) or isinstance(values["seed"], bool):
        raise ValueError(f"SEED must be an integer, got {values['seed']!r}.")
    if not isinstance(values["remove_stopwords"], bool):
        raise ValueError(f"REMOVE_STOPWORDS must be True or False, got {values['remove_stopwords']!r}.")
    return Params(profile, values)


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
