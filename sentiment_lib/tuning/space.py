"""The search space of notebook 05's study, as plain data, and what a point of it means.

**What is searched.** :func:`search_space_spec` — the architecture family (``lstm``, ``bilstm``,
``bilstm_pool``, ``attention_lstm``, ``gru``, ``bag_of_embeddings``: the models of notebook 04), the number
of layers (1–2; an ``lstm`` with 2 layers is 04's ``stacked_lstm``, so stacking is a depth, not a family
of its own), hidden size, embedding size, dropout, learning rate (log scale), maximum review length,
truncation side, batch size, adversarial training on the embeddings (off, or ``adversarial.DEFAULT_EPSILON``;
it doubles a trial's cost), and — when notebook 02 pre-trained an LSTM language model (``LM_EPOCHS`` ≥ 1) —
whether a one-layer ``lstm`` or ``attention_lstm`` starts from it (``language_model``: its embedding and LSTM,
so its hidden size is the language model's and no ``hidden_size`` or ``embeddings`` is searched then). Sizes are bounded by the profile's values (hidden ≤ ``HIDDEN_SIZE``,
embedding ≤ ``EMBED_DIM``, length ≤ ``MAX_LEN``), so the profile sets the cost of a trial: a ``smoke``
trial takes seconds. The vanilla RNN is left out: on reviews of hundreds of tokens it is the one family
that is reliably worse (notebook 04), and trials spent on it are wasted.

:func:`search_space` suggests a point for an Optuna trial; :func:`trial_configuration` turns a point into the
:class:`~sentiment_lib.experiment.Configuration` that :func:`~sentiment_lib.experiment.train`
trains; :func:`values_for_model` writes one of notebook 04's models as a point (a study's starting point).
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import optuna
import pandas as pd

from ..adversarial import DEFAULT_EPSILON
from ..experiment import Configuration
from ..models import ModelConfig, default_layers
from ..profiles import EMBEDDING_STARTS, TRUNCATIONS, Params

MODEL_CHOICES = ("lstm", "bilstm", "bilstm_pool", "attention_lstm", "gru", "bag_of_embeddings")
LANGUAGE_MODEL_CHOICES = ("lstm", "attention_lstm")  # one layer, one direction: what the language model can start
BATCH_SIZES = (32, 64, 128)
SPACE_ORDER = ("model", "num_layers", "language_model", "hidden_size", "embeddings", "embed_dim", "dropout", "lr", "max_len",
               "truncation", "batch_size", "adversarial")  # the dimensions of search_space_spec, in its order
LR_RANGE = (3e-4, 1e-2)
DROPOUT_RANGE = (0.0, 0.5)
EPSILON_CHOICES = (0.0, 0.1, 0.25, 0.5, 1.0)  # adversarial training off, or its perturbation's size ε
# What 05's study searches around 04's chosen network: what its training depends on.
SEARCHED_AROUND_START = ("dropout", "lr", "batch_size", "adversarial")


def _sizes(top: int, divisors: Sequence[int], floor: int) -> list[int]:
    return sorted({max(floor, top // d) for d in divisors} | {top})


def search_space_spec(params: Params) -> dict[str, dict[str, Any]]:
    """The search space for a profile, as plain data: ``{name: {"choices": [...]}}`` for categorical
    choices, ``{name: {"low": a, "high": b, "log": bool}}`` for ranges (ints when both ends are ints).

    Sizes are bounded by the profile: hidden sizes ``HIDDEN_SIZE/4, /2, ×1``, embedding ``EMBED_DIM/2, ×1``,
    lengths ``MAX_LEN/4, /2, ×1``. When the profile pre-trains word vectors (``EMBEDDINGS="word2vec"``), an
    ``embeddings`` choice (``word2vec`` or ``random``) comes first, and ``embed_dim`` is searched only for a
    random start (``"when": {"embeddings": "random"}``: a dimension with ``when`` is suggested only if the
    earlier ones took those values — one of them, for a list — and one with ``"unless"`` only if they did not).
    With a language model in the run (``LM_EPOCHS`` ≥ 1), ``language_model`` (``False``/``True``) is asked of
    one-layer ``lstm`` and ``attention_lstm`` configurations, before the hidden size and the start, which a
    language-model start fixes (``"unless": {"language_model": True}``). The study stores this dict and refuses to continue with another one.
    A narrower space (e.g. fewer models) is a dict of the same form passed as ``space=``.
    """
    space: dict[str, dict[str, Any]] = {
        "model": {"choices": list(MODEL_CHOICES)},
        "num_layers": {"low": 1, "high": 2, "log": False},
    }
    own_start: dict[str, Any] = {}  # what a dimension needs when a language-model start would fix it
    if params.lm_epochs > 0:
        space["language_model"] = {"choices": [False, True],
                                   "when": {"model": list(LANGUAGE_MODEL_CHOICES), "num_layers": 1}}
        own_start = {"unless": {"language_model": True}}
    space["hidden_size"] = {"choices": _sizes(params.hidden_size, (4, 2), 8), **own_start}
    embed_dims: dict[str, Any] = {"choices": _sizes(params.embed_dim, (2,), 8), **own_start}
    if params.embeddings == "word2vec":  # pre-trained vectors have the run's width; only a random start picks
        space["embeddings"] = {"choices": list(EMBEDDING_STARTS), **own_start}
        embed_dims = {"choices": embed_dims["choices"], "when": {"embeddings": "random"}}
    space["embed_dim"] = embed_dims
    space.update({
        "dropout": {"low": DROPOUT_RANGE[0], "high": DROPOUT_RANGE[1], "log": False},
        "lr": {"low": LR_RANGE[0], "high": LR_RANGE[1], "log": True},
        "max_len": {"choices": _sizes(params.max_len, (4, 2), 16)},
        "truncation": {"choices": list(TRUNCATIONS)},
        "batch_size": {"choices": list(BATCH_SIZES)},
        "adversarial": {"choices": [0.0, DEFAULT_EPSILON]},
    })
    return space


def search_space(trial: optuna.Trial, params: Params,
                 space: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """Suggest one configuration from ``space`` (default :func:`search_space_spec`); returns
    ``{name: value}`` (the same as ``trial.params``)."""
    space = space if space is not None else search_space_spec(params)
    values: dict[str, Any] = {}
    for name, spec in space.items():
        if not _applies(spec, values):
            continue  # conditional dimension: not used by this configuration
        if "choices" in spec:
            values[name] = trial.suggest_categorical(name, list(spec["choices"]))
        elif isinstance(spec["low"], int) and isinstance(spec["high"], int):
            values[name] = trial.suggest_int(name, spec["low"], spec["high"], log=bool(spec.get("log")))
        else:
            values[name] = trial.suggest_float(name, float(spec["low"]), float(spec["high"]),
                                               log=bool(spec.get("log")))
    return values


def trial_configuration(values: Mapping[str, Any], params: Params, vocab_size: int, num_classes: int = 2, *,
                        epochs: int | None = None, patience: int | None = None) -> Configuration:
    """Turn a point of the space (``trial.params``, ``study.best_params``) into the
    :class:`~sentiment_lib.experiment.Configuration` that trains it, for ``epochs`` (default ``EPOCHS``) with
    early-stopping ``patience`` (``None``: none, as in a trial).

    Names missing from ``values`` take the profile's value (``num_layers``: 1; ``embeddings``: the profile's
    ``EMBEDDINGS``); ``model`` is required. An ``lstm`` with two or more layers is built as 04's
    ``stacked_lstm``. A ``word2vec`` start uses the profile's ``EMBED_DIM`` (the width of the run's vectors).
    ``language_model=True`` starts a one-layer ``lstm``/``attention_lstm`` from the run's language model: hidden
    size ``LM_HIDDEN``, embedding ``EMBED_DIM``; ``ValueError`` for another model or depth.
    """
    if "model" not in values:
        raise ValueError(f"The configuration {dict(values)} names no model; it needs 'model' (one of "
                         f"{MODEL_CHOICES}).")
    name = str(values["model"])
    layers = int(values.get("num_layers", 1))
    if name == "lstm" and layers >= 2:
        name = "stacked_lstm"
    from_language_model = bool(values.get("language_model", False))
    if from_language_model and (name not in LANGUAGE_MODEL_CHOICES or layers != 1):
        raise ValueError(f"Only a one-layer {' or '.join(LANGUAGE_MODEL_CHOICES)} can start from the language model, "
                         f"not {name} with {layers} layer(s): set language_model=False.")
    start = str(values.get("embeddings", params.embeddings))
    if start not in EMBEDDING_STARTS:
        raise ValueError(f"embeddings must be one of {EMBEDDING_STARTS}, got {start!r}.")
    # A language-model start is built as 04 builds it (word2vec first where the run has it, then the language
    # model's embedding over it): the same Configuration, so 05 retraining 04's ladder network reuses its checkpoint.
    pretrained = start == "word2vec"
    embed_dim = (params.embed_dim if pretrained or from_language_model
                 else int(values.get("embed_dim", params.embed_dim)))
    hidden = params.lm_hidden if from_language_model else int(values.get("hidden_size", params.hidden_size))
    model_config = ModelConfig(
        name=name, vocab_size=vocab_size, embed_dim=embed_dim, hidden_size=hidden,
        num_layers=None if layers == default_layers(name) else layers,  # the model's default left unset, as 04 does
        dropout=float(values.get("dropout", params.dropout)), num_classes=num_classes)
    return Configuration(model=model_config, lr=float(values.get("lr", params.lr)),
                         batch_size=int(values.get("batch_size", params.batch_size)),
                         max_len=int(values.get("max_len", params.max_len)),
                         truncation=str(values.get("truncation", params.truncation)), pretrained=pretrained,
                         epochs=int(params.epochs if epochs is None else epochs), patience=patience,
                         language_model=from_language_model, adversarial=float(values.get("adversarial", 0.0)))


def _applies(spec: Mapping[str, Any], values: Mapping[str, Any]) -> bool:
    """Whether a (conditional) dimension is used by a configuration with the earlier ``values``: each ``"when"``
    entry holds (a list: one of its values), and not every ``"unless"`` entry does."""
    def holds(key: str, wanted: Any) -> bool:
        return values.get(key) in wanted if isinstance(wanted, (list, tuple, set)) else values.get(key) == wanted

    when, unless = spec.get("when", {}), spec.get("unless", {})
    return all(holds(k, v) for k, v in when.items()) and not (unless and all(holds(k, v) for k, v in unless.items()))


def values_for_model(name: str, params: Params, space: Mapping[str, Mapping[str, Any]] | None = None,
                     settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Notebook 04's model ``name`` as a configuration in the search space's terms, e.g. to start a study from
    it (``run_study(start_from=[...])``). ``settings`` (04's recorded ``ModelRun.settings()``: architecture,
    depth, hidden size, dropout, learning rate, length, truncation, batch size, embedding start and width,
    adversarial ε) say how 04 ran it; what they leave out takes the profile's value. Their ``architecture``
    names the model when given (04's ladder rows are named ``"attention_lstm 256 (…)"``); ``stacked_lstm`` is an
    ``lstm`` with 2 layers; an ``embeddings`` start of ``"language model"`` is ``language_model=True``.

    Raises ``ValueError`` when the model is not searched (``rnn``, a multi-class model, 04's padded-last-step
    pitfall, a network trained with virtual adversarial training, entropy minimisation or weight
    averaging, one whose direction was set against its architecture's, as the ladder's bidirectional rung) or a
    value lies outside ``space``.
    """
    space = space if space is not None else search_space_spec(params)
    settings = dict(settings or {})
    architecture = str(settings.get("architecture") or name)
    model, layers = ("lstm", 2) if architecture == "stacked_lstm" else (architecture, int(settings.get("num_layers") or 1))
    if model not in space["model"]["choices"]:
        raise ValueError(f"{name!r} is not searched by this study (models: {space['model']['choices']}).")
    if settings.get("vat") or settings.get("entropy") or settings.get("average"):
        raise ValueError(f"{name!r} trained on the unlabelled reviews (virtual adversarial training, entropy "
                         "minimisation) or with weight averaging, which this study does not search.")
    if settings.get("bidirectional") is not None:
        raise ValueError(f"{name!r} reads in {'both directions' if settings['bidirectional'] else 'one direction'} "
                         f"where its architecture {architecture!r} does not, which this study does not search.")
    if settings.get("read_padded_last_step") or settings.get("num_classes", 2) != 2:
        raise ValueError(f"{name!r} is not a configuration of this study (it reads padding or predicts "
                         f"{settings.get('num_classes')} classes).")
    wanted = {"model": model, "num_layers": layers, "language_model": False, "hidden_size": params.hidden_size,
              "embeddings": params.embeddings, "embed_dim": params.embed_dim, "dropout": params.dropout,
              "lr": params.lr, "max_len": params.max_len, "truncation": params.truncation,
              "batch_size": params.batch_size, "adversarial": 0.0}
    if settings.get("embeddings") == "language model":
        if "language_model" not in space:
            raise ValueError(f"{name!r} starts from the language model, which this study does not search "
                             "(02 ran with LM_EPOCHS=0).")
        settings["language_model"], settings["embeddings"] = True, None  # the language model brings them
    wanted.update({k: v for k, v in settings.items() if k in wanted and k not in ("model", "num_layers")
                   and v is not None})
    values: dict[str, Any] = {}
    for key, spec in space.items():
        if key not in wanted or not _applies(spec, values):
            continue
        value = wanted[key]
        inside = value in spec["choices"] if "choices" in spec else spec["low"] <= value <= spec["high"]
        if not inside:
            raise ValueError(f"{name}'s {key}={value!r} lies outside the search space {spec}.")
        values[key] = value
    return values


def start_point(recorded: Mapping[str, Mapping[str, Any]], params: Params,
                space: Mapping[str, Mapping[str, Any]] | None = None) -> tuple[str, dict[str, Any]] | None:
    """The study's starting point: of notebook 04's recorded networks (``manifest["models"]``: name → row with
    ``val_loss`` and ``settings``), the one with the lowest validation loss that the search space can express
    (:func:`values_for_model`), as ``(name, values)``; ``None`` when none can. Linear references and averages
    have no validation loss and are never candidates; nor are multi-class or padding-reading runs, nor rows
    recorded before ``settings`` named the architecture whose name is not a model's (they count by name)."""
    space = space if space is not None else search_space_spec(params)
    ranked = sorted((row["val_loss"], name) for name, row in recorded.items()
                    if isinstance(row.get("val_loss"), (int, float)) and math.isfinite(row["val_loss"]))
    for _, name in ranked:
        try:
            return name, values_for_model(name, params, space, settings=recorded[name].get("settings"))
        except ValueError:
            continue
    return None


def neighbourhood_spec(params: Params, start: Mapping[str, Any],
                       space: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Notebook 05's search space around 04's chosen network ``start`` (a point of :func:`search_space_spec`, from
    :func:`start_point`): the architecture, its sizes, its start (word2vec or the language model) and the reviews'
    length and truncation are fixed at the start's values (``{"choices": [value]}``: 04 compared those on equal
    footing), and what the network's training depends on is searched — the learning rate (the fine-tuning rate,
    when it starts from the language model), dropout, the batch size and adversarial training's ε (off or one of
    :data:`EPSILON_CHOICES`). The start is a point of this space."""
    full = dict(space if space is not None else search_space_spec(params))
    spec: dict[str, dict[str, Any]] = {name: {"choices": [start[name]]} for name in full
                                       if name in start and name not in SEARCHED_AROUND_START}
    spec.update({"dropout": dict(full["dropout"]), "lr": dict(full["lr"]), "batch_size": dict(full["batch_size"]),
                 "adversarial": {"choices": sorted(set(EPSILON_CHOICES) | {float(start.get("adversarial", 0.0))})}})
    return spec


def searched_dimensions(space: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The dimensions of ``space`` that take more than one value (a fixed one has a single choice)."""
    return [name for name, spec in space.items() if not ("choices" in spec and len(spec["choices"]) == 1)]


def _shown_value(value: Any) -> str:
    """One value of a search space as a reader reads it: ``True`` → "yes", a list → its items joined by "or"."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return " or ".join(_shown_value(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def space_table(space: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """``space`` (:func:`search_space_spec`'s form) as a page shows it, one row per dimension in order: whether it
    is searched ("yes"/"no"), its values in words ("0.1 to 0.5", "log scale" for a log range; the choices joined
    by ", ") and when it is asked ("only if model = lstm or attention_lstm and num_layers = 1"; "unless
    language_model = yes")."""
    rows = {}
    for name, spec in space.items():
        if "choices" in spec:
            values = ", ".join(_shown_value(v) for v in spec["choices"])
        else:
            values = f"{_shown_value(spec['low'])} to {_shown_value(spec['high'])}"
            values += ", log scale" if spec.get("log") else ""
        conditions = [f"{word} " + " and ".join(f"{k} = {_shown_value(v)}" for k, v in spec[key].items())
                      for key, word in (("when", "only if"), ("unless", "unless")) if key in spec]
        rows[name] = {"searched": "yes" if name in searched_dimensions({name: spec}) else "no", "values": values,
                      "asked": "; ".join(conditions) or "always"}
    return pd.DataFrame.from_dict(rows, orient="index", columns=["searched", "values", "asked"])


def study_plan(params: Params, recorded: Mapping[str, Mapping[str, Any]] | None = None
               ) -> tuple[str | None, dict[str, Any] | None, dict[str, dict[str, Any]]]:
    """``(start name, start values, space)`` of the profile's study: 04's network with the lowest validation loss
    that the search space can express (:func:`start_point`, from ``recorded`` — default the run manifest's
    ``models`` by label) and the space around it (:func:`neighbourhood_spec`); without such a network, ``(None, None,``
    :func:`search_space_spec` ``)``. Notebook 05 and the ``tune`` command both use it, so they share one study."""
    if recorded is None:
        from ..manifest import recorded_models

        recorded = recorded_models(params.profile)
    full = search_space_spec(params)
    start = start_point(recorded, params, full)
    if start is None:
        return None, None, full
    return start[0], start[1], neighbourhood_spec(params, start[1], full)
