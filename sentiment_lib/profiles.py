"""Run profiles and the typed, immutable parameters resolved from them: the study's one configuration.

The profiles are data: ``profiles.toml`` beside this module, one table per profile (``smoke``, ``quick``,
``full``) in five sections — data, model, optimisation, study, machine — with one value per papermill parameter
(its lower-case name). ``resolve(profile, **overrides)`` merges a profile's row with papermill overrides,
validates every value once and returns a frozen :class:`Params`. A copied table is a new profile.

Who owns which parameter:

- :data:`DATA_PARAMETERS` belong to notebook 02 (the split, the subset sizes, the vocabulary, word2vec):
  what the prepared data in the run directory depends on. Notebooks 03–05 take them from the run
  directory and refuse a different value (``run.load_run``).
- everything else — model sizes, optimisation, ``MAX_LEN`` and ``TRUNCATION`` (how much of each stored
  review a network reads), the study's budget — is a training parameter that 03, 04 and 05 may set.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

PROFILES_FILE = Path(__file__).with_name("profiles.toml")
SECTIONS = ("data", "model", "optimisation", "study", "machine")
ALL = "all"  # a split size of "all" in the file: every review (None here)


def _read_profiles(path: Path = PROFILES_FILE) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The profiles of ``profiles.toml`` as flat rows (name -> value, ``"all"`` read as ``None``) and the section
    each parameter belongs to. Every profile must give every parameter, each in one section."""
    with open(path, "rb") as f:
        tables = tomllib.load(f)
    rows: dict[str, dict[str, Any]] = {}
    section_of: dict[str, str] = {}
    for profile, sections in tables.items():
        unknown = sorted(set(sections) - set(SECTIONS))
        if unknown:
            raise ValueError(f"{path}: profile {profile!r} has unknown section(s) {unknown}; use {SECTIONS}.")
        row = {}
        for section in SECTIONS:
            for name, value in sections.get(section, {}).items():
                if section_of.setdefault(name, section) != section:
                    raise ValueError(f"{path}: {name} is in [{profile}.{section}] but in "
                                     f"[{section_of[name]}] elsewhere; keep each parameter in one section.")
                row[name] = None if value == ALL else value
        rows[profile] = row
    names = [set(row) for row in rows.values()]
    if names and any(n != names[0] for n in names):
        differ = sorted(set.union(*names) - set.intersection(*names))
        raise ValueError(f"{path}: every profile must set the same parameters; {differ} are missing from some.")
    return rows, section_of


# One row per profile (``smoke``, ``quick``, ``full``): the file ``profiles.toml`` beside this module, where each
# value is explained. ``SECTION_OF`` says which part of the study each parameter belongs to.
PROFILES, SECTION_OF = _read_profiles()
DEFAULT_PROFILE = "quick"

SPLITS = ("standard", "random")
PRECISIONS = ("auto", "float32", "bfloat16")  # autocast dtype of training and inference: config.choose_precision
EMBEDDING_STARTS = ("word2vec", "random")  # pre-trained on train + unlabelled reviews (02), or from scratch
TRUNCATIONS = ("head", "tail", "head+tail")

# What the prepared data of a run depends on: owned by notebook 02 (see the module docstring).
DATA_PARAMETERS = ("split", "train_size", "val_size", "test_size", "val_fraction", "vocab_size", "min_freq",
                   "remove_stopwords", "pretrain_reviews", "pretrain_epochs", "lm_epochs", "lm_hidden",
                   "lm_backward")
# Taken from the run directory unless a notebook sets them: the word vectors 02 made, and their width.
RUN_DEFAULTS = ("embeddings", "embed_dim")


@dataclass(frozen=True)
class Params:
    """Validated run parameters: a profile's row of :data:`PROFILES` with overrides applied.

    Sizes are numbers of reviews (``None``: all), lengths are tokens, ``lr`` is AdamW's peak rate; ``seeds``
    is how many runs (seeds ``seed``, ``seed + 1``, …) measure the seed-to-seed spread of a model; ``precision``
    is ``"auto"``, ``"float32"`` or ``"bfloat16"`` (:func:`sentiment_lib.config.choose_precision`); ``processes``
    is how many worker processes train independent models side by side (0: one per core; 1: none);
    ``ladder_epochs`` caps the epochs of notebook 04's ladder networks and ``vat`` is the ε of its virtual
    adversarial training rung (0: no such rung).
    Frozen: a notebook that wants other values resolves them again (:func:`resolve`) or uses
    :meth:`replace`, which validates too.
    """

    profile: str
    split: str
    train_size: int | None
    val_size: int | None
    test_size: int | None
    val_fraction: float
    max_len: int
    truncation: str
    vocab_size: int
    min_freq: int
    remove_stopwords: bool
    embeddings: str
    pretrain_reviews: int
    pretrain_epochs: int
    lm_epochs: int
    lm_hidden: int
    lm_backward: bool
    embed_dim: int
    hidden_size: int
    dropout: float
    batch_size: int
    lr: float
    epochs: int
    patience: int
    n_trials: int
    trial_epochs: int
    ensemble: int
    best_seeds: int
    seed: int
    seeds: int
    ladder_epochs: int
    vat: float
    precision: str
    processes: int

    def as_dict(self) -> dict[str, Any]:
        """``{"profile": …, name: value, …}`` in field order."""
        return dataclasses.asdict(self)

    def data_values(self) -> dict[str, Any]:
        """The data parameters (:data:`DATA_PARAMETERS`): what notebook 02 stores with the prepared data."""
        return {name: getattr(self, name) for name in DATA_PARAMETERS}

    def replace(self, **overrides: Any) -> "Params":
        """A validated copy with ``overrides`` (lower-case names) applied."""
        values = {k: v for k, v in self.as_dict().items() if k != "profile"}
        return resolve(self.profile, **{**values, **overrides})


def _check_positive_int(name: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        extra = " or None (all)" if allow_none else ""
        example = PROFILES[DEFAULT_PROFILE].get(name) or 1
        raise ValueError(f"{name.upper()} must be a positive integer{extra}, got {value!r}; for example "
                         f"-p {name.upper()} {example}.")


def _number(name: str, value: Any) -> float:
    """``value`` as a float; a ``ValueError`` naming the parameter when it is not a finite real number
    (a string such as ``"1e-3"`` is refused, as for the integer parameters: pass the number itself)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        example = {"lr": 0.001, "dropout": 0.3, "val_fraction": 0.1, "vat": 0.25}.get(name, 0.5)
        raise ValueError(f"{name.upper()} must be a number, got {value!r}; give one such as "
                         f"-p {name.upper()} {example} (a number, not a string).")
    return float(value)


def unknown_parameters_message(unknown: Sequence[str], known: Iterable[str], where: str) -> str:
    """"Unknown parameter(s) …; <where> take …; did you mean …?" for names a run was given but does not take."""
    known = sorted(known)
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name.upper(), [k.upper() for k in known], n=1, cutoff=0.6)
        if close and close[0] != name.upper():
            hints.append(f"{name} → did you mean {close[0]}?")
    return (f"Unknown parameter(s) {', '.join(map(str, unknown))}: {where} take {', '.join(known)}."
            + (" " + " ".join(hints) if hints else ""))


def _assigned_names(code: str) -> set[str]:
    """The names a cell's top-level assignments bind (``PROFILE = "quick"`` → ``{"PROFILE"}``)."""
    import ast

    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    return {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
            if isinstance(t, ast.Name)}


def check_injected(history: Sequence[str]) -> None:
    """Refuse papermill parameters that a notebook does not declare (called from its first cell after the
    parameters, with IPython's input history ``In``). papermill injects a parameter the notebook lacks as a
    new variable, and the run would go on with the default: a misspelt ``-p MAXLEN 5`` must fail instead.
    Does nothing when no cell was injected (Jupyter, nbval)."""
    injected = next((i for i, source in enumerate(history) if i > 0 and source.lstrip().startswith("# Parameters")),
                    None)
    if injected is None:
        return
    declared, given = _assigned_names(history[injected - 1]), _assigned_names(history[injected])
    unknown = sorted(given - declared)
    if unknown:
        raise ValueError(unknown_parameters_message(unknown, declared, "this notebook's parameters"))


def check_profile(profile: str) -> str:
    """``profile`` when it names a row of :data:`PROFILES`; else a ``ValueError`` listing them."""
    if profile not in PROFILES:
        raise ValueError(f"Unknown PROFILE {profile!r}. Use one of {sorted(PROFILES)} "
                         f"(e.g. papermill ... -p PROFILE quick).")
    return profile


def check_processes(processes: Any) -> int:
    """``processes`` when it is a valid ``PROCESSES`` (an int >= 0); else a ``ValueError`` saying what it means."""
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 0:
        raise ValueError(f"PROCESSES must be an integer >= 0 (0: one worker process per core, 1: train one model "
                         f"after another in the notebook's process), got {processes!r}.")
    return processes


def resolve(profile: str = DEFAULT_PROFILE, **overrides: Any) -> Params:
    """Merge the profile's row of :data:`PROFILES` with non-``None`` overrides and validate.

    Overrides are the notebooks' papermill parameters (upper or lower case names). Raises
    ``ValueError`` naming the bad parameter and the accepted values.
    """
    values = dict(PROFILES[check_profile(profile)])
    for key, value in overrides.items():
        name = key.lower()
        if name not in values:
            raise ValueError(unknown_parameters_message([key], [k.upper() for k in values], "the profiles"))
        if value is not None:
            values[name] = value

    for name in ("max_len", "vocab_size", "min_freq", "embed_dim", "hidden_size",
                 "batch_size", "epochs", "patience", "n_trials", "trial_epochs", "ensemble", "best_seeds", "seeds",
                 "ladder_epochs"):
        _check_positive_int(name, values[name])
    for name in ("train_size", "val_size", "test_size"):
        _check_positive_int(name, values[name], allow_none=True)
    if values["vocab_size"] < 3:
        raise ValueError("VOCAB_SIZE must be at least 3 (PAD, UNK and one word).")
    if values["split"] not in SPLITS:
        raise ValueError(f"SPLIT must be one of {SPLITS}, got {values['split']!r}.")
    if values["embeddings"] not in EMBEDDING_STARTS:
        raise ValueError(f"EMBEDDINGS must be one of {EMBEDDING_STARTS}, got {values['embeddings']!r}.")
    for name, least in (("pretrain_reviews", 0), ("pretrain_epochs", 1), ("lm_epochs", 0), ("lm_hidden", 1)):
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name.upper()} must be an integer >= {least}, got {value!r}.")
    check_processes(values["processes"])
    if values["precision"] not in PRECISIONS:
        raise ValueError(f"PRECISION must be one of {PRECISIONS} ('auto': bfloat16 where the CPU or GPU has it "
                         f"natively), got {values['precision']!r}.")
    if values["truncation"] not in TRUNCATIONS:
        raise ValueError(f"TRUNCATION must be one of {TRUNCATIONS}, got {values['truncation']!r}.")
    for name in ("val_fraction", "dropout", "lr", "vat"):
        values[name] = _number(name, values[name])
    if not 0.0 < values["val_fraction"] < 0.5:
        raise ValueError(f"VAL_FRACTION must be in (0, 0.5), got {values['val_fraction']!r}.")
    if not 0.0 <= values["dropout"] < 1.0:
        raise ValueError(f"DROPOUT must be in [0, 1), got {values['dropout']!r}.")
    if not values["vat"] >= 0:
        raise ValueError(f"VAT must be >= 0 (0: no virtual adversarial training rung), got {values['vat']!r}.")
    if not values["lr"] > 0:
        raise ValueError(f"LR must be positive, got {values['lr']!r}.")
    if not isinstance(values["seed"], int) or isinstance(values["seed"], bool):
        raise ValueError(f"SEED must be an integer, got {values['seed']!r}.")
    for name in ("remove_stopwords", "lm_backward"):
        if not isinstance(values[name], bool):
            raise ValueError(f"{name.upper()} must be True or False, got {values[name]!r}.")
    return Params(profile=profile, **values)
