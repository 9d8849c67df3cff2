"""Notebook 04's second batch of trainings, planned as typed jobs: what depends only on the chosen network.

Once 04 has chosen its best network on validation, everything else it trains depends on nothing but that
choice: the same network from other seeds (its seed spread), with the other embedding start, reading other
parts of each review, without stop words, predicting star-rating buckets, and the networks of the ladder at
the language model's width (word2vec start, language-model start, with adversarial training, with virtual
adversarial training on the unlabelled reviews as well, and that with entropy minimisation on them, with weight
averaging; and the adversarial rung read in both directions, from a forward and a backward language model).
:func:`follow_up` plans them all, so that they train in one batch side by side (the longest first), and names
the label under which each section of the notebook finds its result; :func:`ladder_jobs` gives the
ladder's jobs alone (notebook 05 reads them back). The VAT rung and its weight-averaging rung are one training:
averaging changes only which weights are validated and kept, so the averaging rung's job also keeps the weights
themselves as the VAT rung (``Job.twin``; :func:`~sentiment_lib.experiment.by_name` finds both by label).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from .adversarial import DEFAULT_EPSILON, ENTROPY_WEIGHT
from .analysis import RATING_BUCKETS, rating_buckets
from .embeddings import word2vec_unavailable
from .experiment import Job, job
from .language_model import FINE_TUNE_LR, has_backward
from .profiles import TRUNCATIONS, Params
from .rundir import Prepared, without_stopwords

LADDER_STARTS = ("word2vec start", "language-model start", "language-model start + AT",
                 "language-model start + AT + VAT", "language-model start + AT + VAT + EntMin",
                 "language-model start + AT + VAT + EMA", "bidirectional start + AT")
# The rungs from virtual adversarial training on (it reads the unlabelled reviews while fine-tuning): planned only
# when the profile's VAT is above 0. Each makes one change to the rung it builds on (BUILDS_ON).
UNLABELLED_RUNGS = LADDER_STARTS[3:6]
VAT_RUNG, AVERAGE_RUNG = LADDER_STARTS[3], LADDER_STARTS[5]  # one training gives both (Job.twin)
# The AT rung read in both directions, its right-to-left half started from 02's backward language model: planned
# only when 02 trained one (LM_BACKWARD). It builds on AT rather than on VAT: on quick both directions gave AT
# and AT + VAT the same validation loss, at less than half the training time (docs/provenance.md).
BIDIRECTIONAL_RUNG = LADDER_STARTS[6]
BUILDS_ON = {**dict(zip(LADDER_STARTS[1:4], LADDER_STARTS[:3])), LADDER_STARTS[4]: LADDER_STARTS[3],
             LADDER_STARTS[5]: LADDER_STARTS[3], BIDIRECTIONAL_RUNG: LADDER_STARTS[2]}
# Weight averaging's horizon on the ladder, in epochs (train.moving_average); 1 scored a lower validation loss
# than 2 and 4 on quick (docs/provenance.md).
AVERAGE_EPOCHS = 1.0


@dataclass(frozen=True)
class FollowUp:
    """04's follow-up jobs by label, and which label holds what.

    Attributes:
        jobs: label -> job, in the order they are handed to the workers (the longest first).
        seeds: labels of the best network from seeds ``SEED + 1 …``; other_start: label of the best network
            with the other embedding start (``None`` when the run has no word vectors to start from, and
            ``unavailable`` says why); truncations: truncation -> label, for the two the profile does not use;
            stop_words: label of the best network without stop words (``None`` when the run removed them);
            buckets: label of the best network predicting the four star-rating buckets; ladder: start -> label
            of the ladder's networks (empty when 02 trained no language model; the VAT rung's label is no key of
            ``jobs``: the weight-averaging rung's job gives it, and :func:`~sentiment_lib.experiment.by_name` of
            the batch's results finds it).
        other_start_name: ``"random"`` or ``"word2vec"``; lm_hidden: the language model's width (the ladder's).
    """

    jobs: dict[str, Job]
    seeds: list[str]
    other_start: str | None
    other_start_name: str
    unavailable: str | None
    truncations: dict[str, str]
    stop_words: str | None
    buckets: str
    ladder: dict[str, str]
    lm_hidden: int


def _lm_hidden(prepared: Prepared, params: Params) -> int:
    """The language model's width (02's, else the profile's): the ladder's networks' width."""
    return int(prepared.params.get("lm_hidden") or params.lm_hidden)


def ladder_labels(prepared: Prepared, params: Params) -> dict[str, str]:
    """Start (a key of :data:`LADDER_STARTS`) -> the label of its network, for the rungs this run trains (none
    when 02 trained no language model; the rungs from VAT on only when the profile's ``VAT`` ε is above 0 and 02
    saved unlabelled reviews; the bidirectional rung only when 02 trained a backward language model too)."""
    if prepared.language_model is None:
        return {}
    lm_hidden = _lm_hidden(prepared, params)
    unlabelled = params.vat > 0 and prepared.unlabelled is not None
    backward = has_backward(prepared.language_model)
    return {start: f"attention_lstm {lm_hidden} ({start})" for start in LADDER_STARTS
            if (start not in UNLABELLED_RUNGS or unlabelled) and (start != BIDIRECTIONAL_RUNG or backward)}


def missing_rungs(prepared: Prepared, params: Params) -> dict[str, str]:
    """Start (a key of :data:`LADDER_STARTS`) -> why this run trains no such rung, and how to add it: what
    :func:`ladder_labels` leaves out (empty when it leaves nothing out, or when 02 trained no language model and
    there is no ladder at all)."""
    if prepared.language_model is None:
        return {}
    labels = ladder_labels(prepared, params)
    if params.vat <= 0:
        unlabelled = "this run's VAT ε is 0 (`-p VAT 0.2` adds it)"
    else:
        unlabelled = "notebook 02 saved no unlabelled reviews (rerun 02 with PRETRAIN_REVIEWS above 0)"
    why = {start: unlabelled for start in UNLABELLED_RUNGS}
    why[BIDIRECTIONAL_RUNG] = "notebook 02 trained no backward language model (`-p LM_BACKWARD True` in 02)"
    return {start: why[start] for start in LADDER_STARTS if start not in labels}


def ladder_jobs(prepared: Prepared, params: Params) -> dict[str, Job]:
    """The ladder's jobs by label (empty when 02 trained no language model): what 04 trains in its follow-up
    batch, and what notebook 05 reads back from their checkpoints as candidates for the final average.

    Attention LSTMs at the language model's width and fine-tuning rate, each trained until its validation loss
    stops falling, up to ``LADDER_EPOCHS`` (the regularised rungs learn more slowly); the rungs from VAT on (VAT;
    VAT with entropy minimisation; VAT with weight averaging) only when the profile's ``VAT`` ε is above 0 and 02
    saved unlabelled reviews; the AT rung read in both directions only when 02 trained a backward language model
    too. The VAT rung has no job of its own: the weight-averaging rung's job gives it (its
    twin); :func:`ladder_labels` names every rung."""
    labels = ladder_labels(prepared, params)
    settings = dict(hidden_size=_lm_hidden(prepared, params), lr=FINE_TUNE_LR, epochs=params.ladder_epochs)
    at = dict(language_model=True, adversarial=DEFAULT_EPSILON)
    vat = dict(at, vat=params.vat)
    options = dict(zip(LADDER_STARTS, ({}, dict(language_model=True), at, vat, dict(vat, entropy=ENTROPY_WEIGHT),
                                       dict(vat, average=AVERAGE_EPOCHS), dict(at, bidirectional=True))))
    jobs = {labels[start]: job("attention_lstm", prepared, params, label=labels[start], **settings, **options[start])
            for start in labels if start != VAT_RUNG}
    if AVERAGE_RUNG in labels:
        jobs[labels[AVERAGE_RUNG]] = replace(jobs[labels[AVERAGE_RUNG]], twin=labels[VAT_RUNG])
    return jobs


def follow_up(best_name: str, prepared: Prepared, params: Params) -> FollowUp:
    """Plan 04's follow-up trainings of ``best_name`` (a key of ``models.MODELS``) on the run's data."""
    lm_hidden = _lm_hidden(prepared, params)
    ladder = ladder_jobs(prepared, params)
    names = ladder_labels(prepared, params)
    ladder_order = list(ladder)
    flipped = params.embeddings != "word2vec"
    unavailable = word2vec_unavailable(prepared, params.embed_dim) if flipped else None
    other_start_name = "word2vec" if flipped else "random"

    jobs: dict[str, Job] = {}
    jobs.update({label: ladder[label] for label in reversed(ladder_order[2:])})  # both ways, EMA … AT: longest first
    seeds = [f"{best_name} (seed {params.seed + i})" for i in range(1, params.seeds)]
    for i, label in enumerate(seeds, start=1):
        jobs[label] = job(best_name, prepared, params, label=label, seed=params.seed + i)
    jobs.update({label: ladder[label] for label in ladder_order[:2]})
    other_start = None if unavailable else f"{best_name} ({other_start_name} start)"
    if other_start:
        jobs[other_start] = job(best_name, prepared, params, label=other_start, pretrained=flipped)
    truncations = {side: f"{best_name} ({side})" for side in TRUNCATIONS if side != params.truncation}
    for side, label in truncations.items():
        jobs[label] = job(best_name, prepared, params, label=label, truncation=side)
    stop_words = None if params.remove_stopwords else f"{best_name} (stop words removed)"
    if stop_words:
        jobs[stop_words] = job(best_name, without_stopwords(prepared), params.replace(remove_stopwords=True),
                               label=stop_words)
    buckets = f"{best_name} (4 rating buckets)"
    targets = {name: rating_buckets(split.ratings) for name, split in prepared.splits.items()}
    jobs[buckets] = job(best_name, prepared, params, label=buckets, targets=targets, num_classes=len(RATING_BUCKETS))
    return FollowUp(jobs, seeds, other_start, other_start_name, unavailable, truncations, stop_words, buckets,
                    names, lm_hidden)
