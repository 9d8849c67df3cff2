"""A bundle's linear partner: an NBSVM over the n-grams of the run's encoded tokens (what the networks read, or
every token of the review: ``max_len`` ``None``), stored as plain data
(its n-grams and one weight each, :attr:`sentiment_lib.linear.LinearReference.export`) with the weight ``w`` on
the network(s), chosen on validation; a bundle with a partner predicts ``w · network + (1 − w) · NBSVM``
(:mod:`sentiment_lib.bundle`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .batching import EncodedSplit
from .profiles import TRUNCATIONS
from .text import truncate

PARTNER_KEYS = ("kind", "name", "ngrams", "weights", "intercept", "max_len", "truncation", "ngram_range",
                "weight_on_network")


def partner_payload(partner: Any, weight: float | None, num_classes: int = 2) -> dict[str, Any] | None:
    """A linear partner's part of a bundle (``linear.LinearReference.export`` + the weight on the network),
    checked; ``None`` without a partner."""
    only = ("only linear.linear_reference(prepared, 'nbsvm', max_len=<int> or 'all', ...) has an export: an NBSVM over "
            "the networks' tokens")
    if partner is None:
        if weight is not None:
            raise ValueError(f"partner_weight was given but the partner is None ({only}).")
        return None
    if not isinstance(partner, dict):
        raise ValueError(f"partner must be a LinearReference's .export (a dict), not a {type(partner).__name__}; "
                         f"{only}.")
    if num_classes != 2:
        raise ValueError(f"A linear partner averages positive/negative probabilities; this model predicts "
                         f"{num_classes} classes: save it without a partner.")
    if weight is None or not 0.0 <= float(weight) <= 1.0:
        raise ValueError(f"partner_weight must be the weight on the network, in [0, 1], got {weight!r}.")
    if partner.get("kind") != "nbsvm":
        raise ValueError(f"Only an NBSVM over the networks' tokens can partner a bundle ({only}).")
    ngram_range = [int(n) for n in partner.get("ngram_range", ())]
    if len(ngram_range) != 2 or not 1 <= ngram_range[0] <= ngram_range[1]:
        raise ValueError(f"The partner's ngram_range {partner.get('ngram_range')!r} is not a (min, max) pair "
                         "of n-gram lengths: pass a LinearReference.export unchanged.")
    weights = torch.as_tensor(np.asarray(partner["weights"], dtype=np.float32))
    ngrams = [str(g) for g in partner["ngrams"]]
    if weights.ndim != 1 or len(ngrams) != weights.numel() or len(set(ngrams)) != len(ngrams):
        raise ValueError(f"The partner's {len(ngrams)} n-grams and {tuple(weights.shape)} weights do not match "
                         "(one weight per distinct n-gram): pass a LinearReference.export unchanged.")
    max_len = partner.get("max_len", 0)
    counted = isinstance(max_len, (int, np.integer)) and not isinstance(max_len, bool) and max_len >= 1
    if partner.get("truncation") not in TRUNCATIONS or not (max_len is None or counted):
        raise ValueError(f"The partner's max_len/truncation ({max_len!r}, {partner.get('truncation')!r}) are not a "
                         "valid reading of a review (max_len: a number of tokens, or None for every token): pass "
                         "a LinearReference.export unchanged.")
    return {"kind": "nbsvm", "name": str(partner.get("name", "nbsvm")), "ngrams": ngrams, "weights": weights,
            "intercept": float(partner["intercept"]), "max_len": None if max_len is None else int(max_len),
            "truncation": str(partner["truncation"]), "ngram_range": ngram_range, "weight_on_network": float(weight)}


@dataclass
class LinearPartner:
    """A bundle's NBSVM partner: ``ngrams`` (F,) with ``weights`` (F,) and ``intercept`` (logit = intercept +
    the weights of the distinct n-grams a review contains), reading ``max_len`` tokens cut by ``truncation``
    (``max_len`` ``None``: every token);
    ``weight_on_network`` is the network's share of the average."""

    name: str
    ngrams: list[str]
    weights: np.ndarray
    intercept: float
    max_len: int | None
    truncation: str
    weight_on_network: float
    ngram_range: tuple[int, int] = (1, 2)
    _vectorizer: Any = field(default=None, repr=False, compare=False)

    def probabilities(self, split: EncodedSplit, itos: Sequence[str]) -> np.ndarray:
        """P(positive) (N,) of the partner alone for an encoded split (untruncated ids)."""
        if self._vectorizer is None:
            from sklearn.feature_extraction.text import CountVectorizer

            self._vectorizer = CountVectorizer(vocabulary=self.ngrams, ngram_range=tuple(self.ngram_range), binary=True,
                                               tokenizer=str.split, token_pattern=None, lowercase=False)
        texts = [" ".join(itos[i] for i in truncate(ids, self.max_len, self.truncation)) for ids in split.ids]
        logits = self._vectorizer.transform(texts) @ self.weights + self.intercept
        return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))

    def average(self, network_prob: np.ndarray, split: EncodedSplit, itos: Sequence[str]) -> np.ndarray:
        """``weight_on_network · network_prob + (1 − weight_on_network) · probabilities(split)``, (N,)."""
        w = self.weight_on_network
        return w * np.asarray(network_prob) + (1 - w) * self.probabilities(split, itos)


def load_partner(payload: dict[str, Any], path: Path, not_bundle: str) -> LinearPartner | None:
    """The bundle ``payload``'s linear partner, checked; ``None`` when it has none."""
    part = payload.get("partner")
    if part is None:
        return None
    missing = [key for key in PARTNER_KEYS if key not in part] if isinstance(part, dict) else list(PARTNER_KEYS)
    if missing:
        raise ValueError(f"{not_bundle} (its linear partner lacks {missing})")
    try:
        checked = partner_payload({k: part[k] for k in PARTNER_KEYS if k != "weight_on_network"},
                                   part["weight_on_network"])
    except (ValueError, TypeError) as err:
        raise ValueError(f"{path}: its linear partner is damaged ({err}); rerun notebook 05 to re-save it.") from err
    return LinearPartner(name=checked["name"], ngrams=checked["ngrams"], weights=checked["weights"].numpy(),
                         intercept=checked["intercept"], max_len=checked["max_len"], truncation=checked["truncation"],
                         weight_on_network=checked["weight_on_network"], ngram_range=tuple(checked["ngram_range"]))
