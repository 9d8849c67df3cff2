"""Notebook 04's ladder: from a word2vec start to a language-model start, adversarial training and a partner.

Each rung adds one use of the unlabelled reviews (or of a linear model) to the one below it, all at the
language model's width so that only the start and the training change:

1. the attention LSTM of the profile's width (when it differs from the language model's), then at the
   language model's width, both from word2vec;
2. the same network started from the language model (its embeddings and recurrent weights);
3. that start with adversarial training on the embeddings;
4. that again with virtual adversarial training on the unlabelled reviews (when 02 saved them); then that with
   entropy minimisation on them, and that with weight averaging (each one change to the VAT rung);
   and the adversarial rung read in both directions, its right-to-left half started from 02's backward language
   model (when 02 trained one);
5. the rung with the lowest validation loss averaged with the linear reference chosen on validation (the
   weight chosen on validation, :func:`~sentiment_lib.linear.average_with`);
6. the linear reference alone, for scale.

:func:`climb` builds the rungs from the trained runs; :class:`Ladder` holds the table (one row per rung, its
validation and test accuracy with the exact interval, its training seconds — the language model's
pre-training counted in the rungs that start from it), the paired tests between neighbouring rungs, the claims
the page makes about them and the rows the run's ``metrics.json`` records. Nothing here looks at a test
number to choose: the network and the weight are chosen on validation.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping

import numpy as np
import pandas as pd

from . import metrics, uncertainty
from .claims import Claim
from .experiment import ModelRun, lowest_val_loss, subset_probabilities
from .linear import LinearReference, average_with
from .plans import BIDIRECTIONAL_RUNG, BUILDS_ON, LADDER_STARTS, UNLABELLED_RUNGS
from .rundir import Prepared


_VALIDATION_CLAIMS = {
    UNLABELLED_RUNGS[0]: "On validation, virtual adversarial training on the unlabelled reviews lowers the loss of "
                         "adversarial training alone.",
    UNLABELLED_RUNGS[1]: "On validation, entropy minimisation on the unlabelled reviews lowers the loss of AT + VAT.",
    UNLABELLED_RUNGS[2]: "On validation, weight averaging lowers the loss of AT + VAT.",
    BIDIRECTIONAL_RUNG: "On validation, reading in both directions, each started from its own language model, "
                        "lowers the loss of adversarial training in one direction.",
}


@dataclass(frozen=True)
class Ladder:
    """The ladder of one run.

    Attributes:
        table: one row per rung (index: its name), columns ``val_loss`` (what chooses the network averaged;
            for the average and the partner, their validation log loss), ``val_accuracy``, ``accuracy``,
            ``accuracy_low``, ``accuracy_high`` (exact 95%, test) and ``train_seconds``.
        climb: :func:`~sentiment_lib.uncertainty.paired_table` of each rung against the one it builds on.
        probs: rung name -> test probabilities (N,).
        runs: start (a key of :data:`~sentiment_lib.plans.LADDER_STARTS`) -> the trained network.
        chosen: the network with the lowest validation loss among ``runs`` (the one averaged).
        partner: name of the linear reference; partner_row: its row in ``table`` (``"<name> (alone)"``).
        blend: name of the average; weight: its weight on the network (chosen on validation).
    """

    table: pd.DataFrame
    climb: pd.DataFrame
    probs: dict[str, np.ndarray]
    runs: dict[str, ModelRun]
    chosen: ModelRun
    partner: str
    partner_row: str
    blend: str
    weight: float

    def claims(self) -> list[Claim]:
        """The sentences the page says about the ladder, each with its test on this run's numbers."""
        plain, at = self.runs["language-model start"], self.runs["language-model start + AT"]
        at_pair, blend_pair = f"{at.name} vs {plain.name}", f"{self.blend} vs {self.chosen.name}"
        on_validation = [self._lowers(sentence, start) for start, sentence in _VALIDATION_CLAIMS.items()
                         if start in self.runs]
        return on_validation + [
            Claim("Adversarial training on the embeddings improves on the plain language-model start, by the rule.",
                  uncertainty.compared(self.climb, at.name, plain.name) == "better",
                  f"{at.test['accuracy']:.4f} against {plain.test['accuracy']:.4f}: "
                  f"{self.climb.loc[at_pair, 'verdict']}"),
            Claim("Averaging the chosen network with its linear partner improves on the network alone, by the rule.",
                  uncertainty.compared(self.climb, self.blend, self.chosen.name) == "better",
                  f"{self.table.loc[self.blend, 'accuracy']:.4f} against {self.chosen.test['accuracy']:.4f}: "
                  f"{self.climb.loc[blend_pair, 'verdict']}"),
        ]

    def _lowers(self, sentence: str, start: str) -> Claim:
        """The claim that the rung ``start`` has a lower validation loss than the rung it builds on."""
        rung, below = self.runs[start], self.runs[BUILDS_ON[start]]
        return Claim(sentence, rung.fit.best_val_loss < below.fit.best_val_loss,
                     f"validation loss {rung.fit.best_val_loss:.4f} against {below.fit.best_val_loss:.4f}; test "
                     f"{rung.test['accuracy']:.4f} against {below.test['accuracy']:.4f}: "
                     f"{self.climb.loc[f'{rung.name} vs {below.name}', 'verdict']}")

    def rows(self, labels: np.ndarray) -> list[dict[str, Any]]:
        """What ``metrics.json`` records of the ladder: its networks and the average (with its weight,
        partner and network); ``labels``: the test labels (N,) the average is scored on."""
        blend = {"model": self.blend, **metrics.binary_metrics(labels, self.probs[self.blend]),
                 "val_accuracy": float(self.table.loc[self.blend, "val_accuracy"]), "blend_weight": self.weight,
                 "partner": self.partner, "network": self.chosen.name,
                 "train_seconds": float(self.table.loc[self.blend, "train_seconds"])}
        return [self.runs[start].row() for start in LADDER_STARTS if start in self.runs] + [blend]


def _same_training(run: ModelRun, rung: ModelRun) -> bool:
    """Whether ``run`` trained exactly as ``rung`` did: the same configuration, or one that differs only in its
    epoch cap when ``run`` stopped early before reaching it (the constant learning rate makes the epochs before
    the stop the same)."""
    if run.configuration == rung.configuration:
        return True
    capped = replace(run.configuration, epochs=rung.configuration.epochs)
    return capped == rung.configuration and run.fit.stopped_early and rung.fit.epochs_run == run.fit.epochs_run


def climb(prepared: Prepared, runs: Mapping[str, ModelRun], partner: LinearReference,
          narrower: ModelRun | None = None, lm_seconds: float = 0.0, seed_std: float | None = None,
          backward_seconds: float = 0.0) -> Ladder:
    """Build the ladder of one run.

    Args:
        prepared: the run's data (validation labels choose the average's weight; test labels score it).
        runs: start -> trained network, one per :data:`~sentiment_lib.plans.LADDER_STARTS` (04's follow-up
            results by label, :func:`~sentiment_lib.experiment.by_name`: the VAT rung is the weight-averaging job's
            twin; the rungs on the unlabelled reviews and the bidirectional rung may be missing).
        partner: the linear reference chosen on validation.
        narrower: the attention LSTM of section 2, shown below the ladder unless it trained exactly as the
            word2vec rung did (``None``: not shown).
        lm_seconds: the language model's pre-training seconds, added to the rungs that start from it.
        seed_std: the seed spread (test-accuracy standard deviation) of the networks, for the paired rule.
        backward_seconds: the backward language model's pre-training seconds, added to the bidirectional rung's
            too.
    """
    missing = [start for start in LADDER_STARTS[:3] if start not in runs]
    if missing:
        raise ValueError(f"The ladder needs a network for each start; missing {missing}. "
                         "Plan them with plans.follow_up (they need 02's language model).")
    labels = prepared.splits["test"].labels
    same_size, lm_start, lm_at = (runs[start] for start in LADDER_STARTS[:3])
    later = [runs[start] for start in (*UNLABELLED_RUNGS, BIDIRECTIONAL_RUNG) if start in runs]
    networks = {r.name: r for r in (same_size, lm_start, lm_at, *later)}
    chosen = networks[lowest_val_loss(networks)]  # on validation
    averaged = average_with(partner, prepared.splits["val"].labels,  # the weight: on validation only
                            subset_probabilities(chosen, prepared, "val"), chosen.test_prob)
    partner_name = partner.row["model"]
    blend = f"{chosen.name} + {partner_name} ({averaged.weight:.2f} / {1 - averaged.weight:.2f})"
    below = [narrower] if narrower is not None and not _same_training(narrower, same_size) else []

    steps = [(r.name, r.fit.best_val_loss, r.fit.best_val_metrics["accuracy"], r.test_prob, r.fit.seconds)
             for r in below + [same_size]]
    pretrained = {r.name: lm_seconds for r in (lm_start, lm_at, *later)}
    if BIDIRECTIONAL_RUNG in runs:
        pretrained[runs[BIDIRECTIONAL_RUNG].name] += backward_seconds
    steps += [(r.name, r.fit.best_val_loss, r.fit.best_val_metrics["accuracy"], r.test_prob,
               r.fit.seconds + pretrained[r.name]) for r in (lm_start, lm_at, *later)]
    pretraining = pretrained.get(chosen.name, 0.0)
    steps.append((blend, averaged.val_loss, averaged.val_accuracy, averaged.test_prob,
                  chosen.fit.seconds + pretraining + partner.row["train_seconds"]))
    partner_row = f"{partner_name} (alone)"
    steps.append((partner_row, metrics.log_loss(prepared.splits["val"].labels, partner.val_prob),
                  partner.row["val_accuracy"], partner.test_prob, partner.row["train_seconds"]))
    table = uncertainty.with_intervals(pd.DataFrame(
        [{"model": n, "val_loss": loss, "val_accuracy": v, "accuracy": metrics.accuracy(labels, p), "train_seconds": s}
         for n, loss, v, p, s in steps]).set_index("model"), len(labels))
    probs = {n: p for n, _, _, p, _ in steps} | {partner_name: partner.test_prob}
    pairs = [(runs[start].name, runs[BUILDS_ON[start]].name) for start in LADDER_STARTS[1:] if start in runs]
    pairs += [(blend, chosen.name), (blend, partner_name)]
    climbed = uncertainty.paired_table(labels, probs, pairs, seed_std={partner_name: 0.0}, default_std=seed_std)
    return Ladder(table, climbed, probs, {s: runs[s] for s in LADDER_STARTS if s in runs}, chosen, partner_name,
                  partner_row, blend, averaged.weight)
