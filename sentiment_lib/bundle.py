"""Model bundles: one file holding everything needed to score new reviews.

A bundle is a ``torch.save`` of plain data only — the model's state dict (tensors), its
:class:`~sentiment_lib.models.ModelConfig` as a dict, the vocabulary as its list of tokens, the
preprocessing settings (``max_len``, ``truncation``, ``remove_stopwords``), the evaluation metrics and
optionally a ``name`` for tables (e.g. ``"trial 6 attention_lstm"``) — so
it loads with ``torch.load(path, weights_only=True)``: no pickled code runs on load.

An *ensemble* bundle (:func:`save_ensemble`, notebook 05's final model when ``ENSEMBLE`` > 1) holds several
such models over one vocabulary, each with its own configuration and truncation, under ``members``;
:func:`load_bundle` gives an :class:`Ensemble`, whose probabilities are the mean of its members'. Both kinds
answer ``predict(texts)`` and ``predict_split(split)`` the same way, so ``predict`` and the notebooks need
not know which one they hold.

Either kind may carry a **linear partner** (``partner=`` of :func:`save_bundle` / :func:`save_ensemble`;
notebook 05's final model): an NBSVM over the n-grams of the run's encoded tokens (what the networks read, or
every token of the review), as plain data (its
n-grams and one weight each, :attr:`sentiment_lib.linear.LinearReference.export`), and the weight ``w`` on the
network(s) chosen on validation; predictions are then ``w · network + (1 − w) · NBSVM``. A bundle with a
partner is format 2 (an older reader refuses it rather than ignore the partner); format 1 still loads.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from .batching import EncodedSplit, make_loader
from .config import choose_precision
from .files import atomic_path
from .models import ModelConfig, build_model
from .partner import LinearPartner, load_partner, partner_payload
from .text import Vocab, tokenize, truncate
from .runtime import Runtime
from .train import predict_proba

FORMAT_VERSION = 1          # a bundle without a linear partner
PARTNER_FORMAT_VERSION = 2  # one with a linear partner (the "partner" key)
READABLE_VERSIONS = (FORMAT_VERSION, PARTNER_FORMAT_VERSION)
_MEMBER_KEYS = ("model_config", "state_dict", "preprocessing")  # one model's part of a file
_SHARED_KEYS = ("vocab", "metrics")                               # once per file
_PAYLOAD_KEYS = (*_MEMBER_KEYS, *_SHARED_KEYS)                     # a single-model bundle
PREPROCESSING_KEYS = ("max_len", "truncation", "remove_stopwords")


def _plain(value: Any, where: str) -> Any:
    """``value`` as plain Python (dict/list/str/int/float/bool/None) for a ``weights_only`` load."""
    if isinstance(value, (np.generic, np.ndarray, torch.Tensor)):  # before float: np.float64 is a float
        return _plain(value.tolist(), where)
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise TypeError(f"{where} is a {type(value).__name__}; bundles store plain numbers, strings, lists and "
                    "dicts only. Convert it (e.g. float(x), list(x)) before saving.")


def _model_payload(model: nn.Module, model_config: ModelConfig, vocab: Vocab,
                   preprocessing: dict[str, Any]) -> dict[str, Any]:
    """One model's part of a bundle (``model_config``, ``state_dict``, ``preprocessing``), checked."""
    missing = [key for key in PREPROCESSING_KEYS if key not in preprocessing]
    if missing:
        raise ValueError(f"preprocessing lacks {missing}; pass the max_len, truncation and remove_stopwords "
                         "the training data was prepared with.")
    if len(vocab) != model_config.vocab_size:
        raise ValueError(f"The vocabulary has {len(vocab)} tokens but model_config.vocab_size is "
                         f"{model_config.vocab_size}; save the vocabulary the model was trained with.")
    return {
        "model_config": _plain(model_config.to_dict(), "model_config"),
        "state_dict": {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()},
        "preprocessing": _plain(dict(preprocessing), "preprocessing"),
    }


def _with_partner(payload: dict[str, Any], partner: dict[str, Any] | None, weight: float | None,
                  num_classes: int) -> dict[str, Any]:
    part = partner_payload(partner, weight, num_classes)
    if part is not None:
        payload = {**payload, "format_version": PARTNER_FORMAT_VERSION, "partner": part}
    return payload


def _write(path: os.PathLike | str, payload: dict[str, Any]) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def save_bundle(path: os.PathLike | str, model: nn.Module, model_config: ModelConfig, vocab: Vocab,
                preprocessing: dict[str, Any], metrics: dict[str, Any] | None = None,
                name: str | None = None, partner: dict[str, Any] | None = None,
                partner_weight: float | None = None) -> Path:
    """Write a bundle to ``path`` atomically (temp file + ``os.replace``); returns the path.

    Args:
        model: trained model whose state dict matches ``build_model(model_config)``.
        model_config: the config it was built from.
        vocab: the vocabulary its inputs were encoded with.
        preprocessing: ``max_len`` (int), ``truncation`` (``"head"``, ``"tail"`` or ``"head+tail"``),
            ``remove_stopwords`` (bool) — exactly how the training reviews were prepared — and optionally
            ``precision`` (the run's ``PRECISION``, which predictions then use).
        metrics: evaluation numbers to keep beside the model (plain numbers, strings, lists, dicts).
        name: the model's label in tables (e.g. ``"trial 6 attention_lstm"``); default: its architecture.
        partner, partner_weight: a linear partner (``LinearReference.export`` of a token-level NBSVM over the
            same vocabulary) and the weight on the network in the average (see the module docstring).
    """
    payload = {"format_version": FORMAT_VERSION, **_model_payload(model, model_config, vocab, preprocessing),
               "vocab": list(vocab.itos), "metrics": _plain(dict(metrics or {}), "metrics")}
    if name is not None:
        payload["name"] = str(name)
    return _write(path, _with_partner(payload, partner, partner_weight, model_config.num_classes))


def _check_compatible(num_classes: Sequence[Any], remove_stopwords: Sequence[Any], where: str = "") -> None:
    """An ensemble's members must answer one task and read one tokenisation; ``ValueError`` naming the fix."""
    if len(set(num_classes)) > 1:
        raise ValueError(f"{where}The ensemble's models predict different numbers of classes {list(num_classes)}; "
                         "average models of one task (all binary, or all with the same rating buckets).")
    if len({bool(r) for r in remove_stopwords}) > 1:
        raise ValueError(f"{where}The ensemble's models were trained with and without stopword removal; train "
                         "them on one run's data (one REMOVE_STOPWORDS).")


def save_ensemble(path: os.PathLike | str, members: Sequence[tuple[str, nn.Module, ModelConfig, dict[str, Any]]],
                  vocab: Vocab, metrics: dict[str, Any] | None = None, partner: dict[str, Any] | None = None,
                  partner_weight: float | None = None) -> Path:
    """Write an ensemble bundle to ``path`` atomically; returns the path. ``partner``, ``partner_weight``: as
    for :func:`save_bundle` (the weight is on the members' mean).

    ``members``: ``(name, model, model_config, preprocessing)`` per model (at least two; ``name`` labels it
    in tables, e.g. ``"trial 6 attention_lstm"``), all trained on ``vocab`` and with the same
    ``remove_stopwords`` (one tokenisation feeds them all) and number of classes; their ``max_len`` and
    ``truncation`` may differ.
    """
    if len(members) < 2:
        raise ValueError(f"An ensemble needs at least two models, got {len(members)}; save a single model "
                         "with save_bundle().")
    names = [str(name) for name, *_ in members]
    if len(set(names)) < len(names):
        raise ValueError(f"Ensemble member names must differ, got {names}; name each model once "
                         "(e.g. 'trial <number> <architecture>').")
    parts = [{"name": name, **_model_payload(model, cfg, vocab, pre)} for name, (_, model, cfg, pre)
             in zip(names, members)]  # checks each member's preprocessing keys and vocabulary first
    _check_compatible([p["model_config"].get("num_classes") for p in parts],
                      [p["preprocessing"]["remove_stopwords"] for p in parts])
    payload = {"format_version": FORMAT_VERSION, "members": parts, "vocab": list(vocab.itos),
               "metrics": _plain(dict(metrics or {}), "metrics")}
    return _write(path, _with_partner(payload, partner, partner_weight, int(parts[0]["model_config"].get("num_classes", 2))))


@dataclass
class Bundle:
    """A loaded bundle: the model (CPU, eval mode) and what it needs to read raw text."""

    model: nn.Module
    model_config: ModelConfig
    vocab: Vocab
    preprocessing: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    saved_name: str | None = None
    partner: LinearPartner | None = None

    @property
    def name(self) -> str:
        """The label saved with the model (e.g. ``"trial 6 attention_lstm"``), else its architecture."""
        return self.saved_name or self.model_config.name

    @property
    def num_classes(self) -> int:
        return self.model_config.num_classes

    @property
    def precision(self) -> str:
        """The run's ``PRECISION`` (``"auto"``, ``"float32"``, ``"bfloat16"``): predictions run under the autocast
        it chooses here (:func:`~sentiment_lib.config.choose_precision`); ``"auto"`` for older bundles."""
        return str(self.preprocessing.get("precision", "auto"))

    @property
    def named_members(self) -> list[tuple[str, "Bundle"]]:
        """``[(name, network)]``: the single model (without a linear partner) as a one-member list, like
        :attr:`Ensemble.named_members`."""
        return [(self.name, self if self.partner is None else replace(self, partner=None))]

    def _device(self) -> torch.device:
        """Where the model's weights live (the CPU after :func:`load_bundle`)."""
        return next(self.model.parameters()).device

    def _tokens(self, text: str) -> list[str]:
        return tokenize(text, remove_stopwords=bool(self.preprocessing["remove_stopwords"]))

    def has_words(self, text: str) -> bool:
        """Whether ``text`` keeps at least one token after this bundle's cleaning (what :meth:`predict` needs)."""
        return bool(str(text).strip()) and len(self.vocab.encode(self._tokens(str(text)))) > 0

    def _check_texts(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Untruncated token ids (L_i,) per text; ``ValueError`` naming blank or wordless texts."""
        if isinstance(texts, str):
            raise TypeError("predict takes a list of texts; wrap a single review as [text].")
        if len(texts) == 0:
            raise ValueError("No texts to score: pass a non-empty list of reviews.")
        blank = [i for i, t in enumerate(texts) if not str(t).strip()]
        if blank:
            raise ValueError(f"Texts at indices {blank} are empty or whitespace only; remove them or give "
                             "them some words.")
        encoded = [self.vocab.encode(self._tokens(str(t))) for t in texts]
        wordless = [i for i, ids in enumerate(encoded) if len(ids) == 0]
        if wordless:
            raise ValueError(f"Texts at indices {wordless} contain no words after cleaning (only punctuation "
                             "or markup); remove them or give them some words.")
        return encoded

    def predict(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Probability that each text is positive, shape (N,), in input order.

        Texts are tokenised, encoded and truncated exactly as the training data was (same
        :func:`~sentiment_lib.batching.make_loader`). For a multi-class model, class probabilities (N, C).
        Raises ``ValueError`` on an empty list and on texts that are blank or have no words (naming their
        indices).
        """
        split = EncodedSplit(self._check_texts(texts), np.zeros(len(texts), dtype=np.int64))
        return self.predict_split(split, batch_size)

    def predict_split(self, split: EncodedSplit, batch_size: int = 256) -> np.ndarray:
        """Probabilities (N,) or (N, C) for an already encoded split (untruncated ids, e.g. a run's
        ``prepared.splits["test"]``), truncated with this bundle's ``max_len`` and ``truncation``."""
        loader = make_loader(split, batch_size, int(self.preprocessing["max_len"]),
                             self.preprocessing["truncation"], binary=self.num_classes == 2)
        device = self._device()
        runtime = Runtime.from_environment()
        prob = predict_proba(runtime.prepare(self.model), loader, device,
                             amp_dtype=choose_precision(self.precision, device),
                             after_batch=runtime.inference_hook(device))
        return prob if self.partner is None else self.partner.average(prob, split, self.vocab.itos)

    @torch.no_grad()
    def attention(self, text: str) -> tuple[list[str], np.ndarray]:
        """Per-token attention of an attention model on one review.

        Returns ``(tokens, weights)``: the L cleaned tokens the model read (after truncation; words outside
        the vocabulary shown as written, not as ``<unk>``) and their weights (L,), summing to 1.
        """
        if getattr(self.model, "readout", None) != "attention":
            raise ValueError(f"The bundled model {self.model_config.name!r} has no attention; load a bundle "
                             "of an 'attention_lstm' model.")
        self._check_texts([text])
        tokens = self._tokens(text)
        kept = truncate(np.arange(len(tokens)), int(self.preprocessing["max_len"]),
                        self.preprocessing["truncation"])
        tokens = [tokens[i] for i in kept]
        ids = torch.as_tensor(self.vocab.encode(tokens), dtype=torch.long, device=self._device())[None]  # (1, L)
        _, weights = self.model(ids, torch.tensor([len(tokens)]), return_attention=True)
        return tokens, weights[0].cpu().numpy()


@dataclass
class Ensemble:
    """Several bundles over one vocabulary; a prediction is the mean of the members' probabilities."""

    members: list[Bundle]
    metrics: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    partner: LinearPartner | None = None

    @property
    def names(self) -> list[str]:
        """Each member's saved name, in saved order."""
        return [member.name for member in self.members]

    @property
    def vocab(self) -> Vocab:
        return self.members[0].vocab

    @property
    def num_classes(self) -> int:
        return self.members[0].num_classes

    @property
    def named_members(self) -> list[tuple[str, Bundle]]:
        """``[(name, member)]`` in saved order (best trial first for notebook 05's final model)."""
        return [(member.name, member) for member in self.members]

    def predict(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Mean of the members' :meth:`Bundle.predict` (texts encoded once), shape (N,) or (N, C)."""
        split = EncodedSplit(self.members[0]._check_texts(texts), np.zeros(len(texts), dtype=np.int64))
        return self.predict_split(split, batch_size)

    def predict_split(self, split: EncodedSplit, batch_size: int = 256) -> np.ndarray:
        """Mean of the members' :meth:`Bundle.predict_split`, each with its own truncation (then averaged with
        the linear partner, if the bundle has one)."""
        prob = np.mean([member.predict_split(split, batch_size) for member in self.members], axis=0)
        return prob if self.partner is None else self.partner.average(prob, split, self.vocab.itos)

    def attention(self, text: str):
        raise ValueError("This bundle is an ensemble of several models; attention is a property of one model. "
                         f"Load the bundle of one attention_lstm model instead (members: {self.names}).")


def _load_model(part: dict[str, Any], path: Path, not_bundle: str) -> tuple[nn.Module, ModelConfig]:
    """Build the model of one bundle part (``model_config`` + ``state_dict``) and load its weights."""
    if not isinstance(part.get("model_config"), dict) or not isinstance(part.get("state_dict"), dict):
        raise ValueError(f"{not_bundle} (its model_config or state_dict is not a mapping)")
    config = ModelConfig.from_dict(part["model_config"])  # ValueError naming a bad field or model
    model = build_model(config)
    try:
        model.load_state_dict(part["state_dict"])
    except RuntimeError as err:
        detail = " ".join(str(err).split())[:300]
        raise ValueError(f"{path}: its weights do not fit its model configuration ({detail}); the file is "
                         "damaged or was edited — re-save it by rerunning the notebook that trained it.") from err
    return model.eval(), config


def load_bundle(path: os.PathLike | str) -> Bundle | Ensemble:
    """Load a bundle written by :func:`save_bundle` (a :class:`Bundle`) or :func:`save_ensemble` (an
    :class:`Ensemble`) with ``weights_only=True``, onto the CPU."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"No model bundle at {path}. Run notebooks 03/04/05 first (make run), which save their best "
            "model there, or pass the path of a bundle you saved with save_bundle().")
    not_bundle = (f"{path} is not a model bundle saved by save_bundle(); pass the .pt file a notebook saved "
                  "(artifacts/<profile>/models/) or rerun the notebook that trains it.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling errors, truncated files, text files: torch raises many kinds
        raise ValueError(f"{not_bundle} (torch.load: {type(err).__name__})") from err
    if not isinstance(payload, dict) or "format_version" not in payload:
        raise ValueError(not_bundle)
    version = payload["format_version"]
    if version not in READABLE_VERSIONS:
        newer = isinstance(version, int) and version > max(READABLE_VERSIONS)
        raise ValueError(f"{path} is a bundle of format {version}, this code reads formats {READABLE_VERSIONS}; "
                         + ("update sentiment_lib (pip install -e . in a newer checkout) to read it." if newer else
                            "re-save it by rerunning the notebook that trained it."))
    if ("partner" in payload) != (version == PARTNER_FORMAT_VERSION):
        raise ValueError(f"{not_bundle} (format {version} " + ("needs its linear partner, which is missing)"
                         if version == PARTNER_FORMAT_VERSION else "has no linear partner, yet one is stored)"))
    partner = load_partner(payload, path, not_bundle)
    if "members" in payload:
        return replace(_load_ensemble(payload, path, not_bundle), partner=partner)
    missing = [key for key in _PAYLOAD_KEYS if key not in payload]
    if missing:
        raise ValueError(f"{not_bundle} (it lacks {missing})")
    model, config = _load_model(payload, path, not_bundle)
    return Bundle(model=model, model_config=config, vocab=Vocab(payload["vocab"]),
                  preprocessing=payload["preprocessing"], metrics=payload["metrics"], path=path,
                  saved_name=payload.get("name"), partner=partner)


def _load_ensemble(payload: dict[str, Any], path: Path, not_bundle: str) -> Ensemble:
    parts = payload["members"]
    if not isinstance(parts, list) or len(parts) < 2 or not all(isinstance(p, dict) for p in parts):
        raise ValueError(f"{not_bundle} (its members are not a list of at least two models)")
    missing = [key for key in _SHARED_KEYS if key not in payload]
    if missing:
        raise ValueError(f"{not_bundle} (it lacks {missing})")
    vocab = Vocab(payload["vocab"])
    members = []
    for i, part in enumerate(parts):
        missing = [key for key in _MEMBER_KEYS if key not in part]
        if missing:
            raise ValueError(f"{not_bundle} (member {i} lacks {missing})")
        model, config = _load_model(part, path, not_bundle)
        members.append(Bundle(model=model, model_config=config, vocab=vocab, preprocessing=part["preprocessing"],
                              path=path, saved_name=str(part.get("name", f"member {i}"))))
    ensemble = Ensemble(members=members, metrics=payload["metrics"], path=path)
    names = ensemble.names
    if len(set(names)) < len(names):
        raise ValueError(f"{not_bundle} (its member names repeat: {names})")
    _check_compatible([m.num_classes for m in members],
                      [m.preprocessing.get("remove_stopwords") for m in members], where=f"{path}: ")
    return ensemble
