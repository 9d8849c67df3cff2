"""Run profiles and the typed, immutable parameters resolved from them.

``PROFILES`` is the one table of parameters per profile (``smoke``, ``quick``, ``full``), used by the
notebooks, the runner and the tests. ``resolve(profile, **overrides)`` merges a profile's row with
papermill overrides, validates every value once and returns a frozen :class:`Params`.

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
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

# ``None`` for a split size means "all of it". Sizes are numbers of reviews after stratified
# subsampling. ``test_size`` None keeps the official 25,000-review test split whole.
# ``embeddings="word2vec"``: 02 pre-trains word vectors on the training subset plus ``pretrain_reviews`` of
# the 50,000 unlabelled reviews (``pretrain_epochs`` passes) and 03–05 start their embedding layers from
# them; ``"random"`` trains every embedding from scratch. ``lm_epochs`` passes of an LSTM language model
# (hidden ``lm_hidden``) over the same corpus start the classifiers of 04's "learning from the unlabelled
# reviews" (0: none; sentiment_lib.language_model). ``precision="auto"`` trains and predicts under
# bfloat16 autocast where the CPU or GPU has native bf16 (config.choose_precision); ``smoke`` stays float32 so
# that its regression snapshots are the same on machines with and without bf16. ``full`` is sized for a whole
# chain within two hours on a 2-core CPU with native bf16 (README, "Chain times"): every review and 400 tokens,
# but hidden 128 (04's language-model rows use the language model's 256), up to 5 epochs, 10 trials,
# and the best configuration retrained from a second seed for the final average; on a GPU raise them with
# papermill parameters. ``patience`` is 2 in ``quick`` and ``full`` so that no compared network is kept at its
# first epoch only because one worse epoch stopped it. ``n_trials`` with ``trial_epochs=2`` and a pruner that
# keeps the best half lets about half of 05's trials reach the last rung (``quick``: 12 trials). ``quick`` trains in
# batches of 128 at twice the rate of batches of 64 (the same validation loss for 04's attention LSTM, 0.2949 vs
# 0.2925, in 60% of the time on the 2-core CPU: each recurrent step is a small product whose cost barely
# grows with the batch); its language model has the classifiers' width, 64 (on the 2-core AMD EPYC: 163 s against
# 216 s for 128 units, and 04's LM + AT row 60 s against 132 s, for a validation loss of 0.2644 against 0.2544:
# the price of a chain within 15 minutes), and it retrains the study's best configuration from one seed only (a
# second cost 125 s there). ``best_seeds``: 05 retrains the study's best configuration with this many seeds
# (``seed``, ``seed + 1``, …) as candidates for the final average — a seed ensemble of the strongest model.
# ``processes``: trainings that do not depend on each other (04's architectures, a seed spread, the ablations)
# run side by side in this many worker processes of one thread each (sentiment_lib.parallel; 0: one per core,
# 1: one after another in the notebook's process, as on a GPU; workers receive the prepared data without the
# reviews' texts). ``full`` pre-trains its language model for 2 epochs: with 1 (perplexity 165) its final model
# stopped at 0.9268, and a better language model is what the published record (Dai & Le 2015; Miyato et al. 2017)
# says moves LM + AT most (README, "Results").
PROFILES: dict[str, dict[str, Any]] = {
    "smoke": dict(
        split="standard", train_size=1200, val_size=300, test_size=600, val_fraction=0.1,
        max_len=96, truncation="head+tail", vocab_size=5000, min_freq=2, remove_stopwords=False,
        embeddings="word2vec", pretrain_reviews=2000, pretrain_epochs=2, lm_epochs=1, lm_hidden=32,
        embed_dim=32, hidden_size=32, num_layers=1, dropout=0.3, batch_size=64, lr=3e-3,
        epochs=2, patience=2, n_trials=2, trial_epochs=1, ensemble=2, best_seeds=2, seed=42, seeds=2,
        precision="float32", processes=0,
    ),
    "quick": dict(
        split="standard", train_size=10000, val_size=2000, test_size=None, val_fraction=0.1,
        max_len=256, truncation="head+tail", vocab_size=20000, min_freq=2, remove_stopwords=False,
        embeddings="word2vec", pretrain_reviews=25000, pretrain_epochs=4, lm_epochs=1, lm_hidden=64,
        embed_dim=64, hidden_size=64, num_layers=1, dropout=0.3, batch_size=128, lr=2e-3,
        epochs=6, patience=2, n_trials=12, trial_epochs=2, ensemble=3, best_seeds=1, seed=42, seeds=3,
        precision="auto", processes=0,
    ),
    "full": dict(
        split="standard", train_size=None, val_size=None, test_size=None, val_fraction=0.1,
        max_len=400, truncation="head+tail", vocab_size=40000, min_freq=2, remove_stopwords=False,
        embeddings="word2vec", pretrain_reviews=50000, pretrain_epochs=5, lm_epochs=2, lm_hidden=256,
        embed_dim=128, hidden_size=128, num_layers=1, dropout=0.4, batch_size=64, lr=1e-3,
        epochs=5, patience=2, n_trials=10, trial_epochs=2, ensemble=1, best_seeds=2, seed=42, seeds=3,
        precision="auto", processes=0,
    ),
}
DEFAULT_PROFILE = "quick"

SPLITS = ("standard", "random")
PRECISIONS = ("auto", "float32", "bfloat16")  # autocast dtype of training and inference: config.choose_precision
EMBEDDING_STARTS = ("word2vec", "random")  # pre-trained on train + unlabelled reviews (02), or from scratch
TRUNCATIONS = ("head", "tail", "head+tail")

# What the prepared data of a run depends on: owned by notebook 02 (see the module docstring).
DATA_PARAMETERS = ("split", "train_size", "val_size", "test_size", "val_fraction", "vocab_size", "min_freq",
                   "remove_stopwords", "pretrain_reviews", "pretrain_epochs", "lm_epochs", "lm_hidden")
# Taken from the run directory unless a notebook sets them: the word vectors 02 made, and their width.
RUN_DEFAULTS = ("embeddings", "embed_dim")


@dataclass(frozen=True)
class Params:
    """Validated run parameters: a profile's row of :data:`PROFILES` with overrides applied.

    Sizes are numbers of reviews (``None``: all), lengths are tokens, ``lr`` is AdamW's peak rate; ``seeds``
    is how many runs (seeds ``seed``, ``seed + 1``, …) measure the seed-to-seed spread of a model; ``precision``
    is ``"auto"``, ``"float32"`` or ``"bfloat16"`` (:func:`sentiment_lib.config.choose_precision`); ``processes``
    is how many worker processes train independent models side by side (0: one per core; 1: none).
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
    embed_dim: int
    hidden_size: int
    num_layers: int
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
        example = {"lr": 0.001, "dropout": 0.3, "val_fraction": 0.1}.get(name, 0.5)
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

    for name in ("max_len", "vocab_size", "min_freq", "embed_dim", "hidden_size", "num_layers",
                 "batch_size", "epochs", "patience", "n_trials", "trial_epochs", "ensemble", "best_seeds", "seeds"):
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
    return Params(profile=profile, **values)
