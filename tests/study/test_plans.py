"""plans: notebook 04's follow-up jobs, and the ladder's rungs each run can train."""
import dataclasses

import numpy as np

from sentiment_lib import plans
from sentiment_lib.adversarial import DEFAULT_EPSILON, ENTROPY_WEIGHT
from sentiment_lib.batching import EncodedSplit

from tiny_data import tiny_params, tiny_prepared


def _prepared(language_model=True, unlabelled=True, backward=True):
    prepared = tiny_prepared()
    extra = EncodedSplit(list(prepared.splits["train"].ids[:10]), np.full(10, -1)) if unlabelled else None
    weights = {"weights": "stand-in"} | ({"backward.rnn.weight_ih_l0": "stand-in"} if backward else {})
    return dataclasses.replace(prepared, language_model=weights if language_model else None, unlabelled=extra)


def _configuration(plan, start):
    """The configuration the rung ``start`` trains with: its job's, or for the VAT rung, the weight-averaging job's
    without averaging (that job's twin)."""
    if start == plans.VAT_RUNG:
        averaging = plan.jobs[plan.ladder[plans.AVERAGE_RUNG]]
        assert averaging.twin == plan.ladder[plans.VAT_RUNG]
        return dataclasses.replace(averaging.configuration, average=0.0)
    return plan.jobs[plan.ladder[start]].configuration


def test_the_ladder_has_its_unlabelled_rungs_when_02_saved_unlabelled_reviews_and_trains_them_first():
    params = tiny_params(lm_hidden=16, vat=0.5)
    plan = plans.follow_up("lstm", _prepared(), params)
    assert list(plan.ladder) == list(plans.LADDER_STARTS)
    assert plan.ladder[plans.VAT_RUNG] not in plan.jobs  # the averaging rung's training gives it
    assert [one.twin for one in plan.jobs.values() if one.twin] == [plan.ladder[plans.VAT_RUNG]]
    vat = _configuration(plan, plans.VAT_RUNG)
    assert vat.vat == 0.5 and vat.adversarial == DEFAULT_EPSILON and vat.language_model  # the profile's VAT ε
    assert vat.model.hidden_size == 16 and vat.epochs == params.ladder_epochs  # the language model's width
    longest = [plan.ladder[s] for s in reversed(plans.LADDER_STARTS[2:]) if s != plans.VAT_RUNG]
    assert list(plan.jobs)[:4] == longest  # the longest first
    at, _, entropy, averaged, both = [_configuration(plan, s) for s in plans.LADDER_STARTS[2:]]
    assert both.model == dataclasses.replace(at.model, bidirectional=True) and both.language_model
    assert at.vat == 0.0 and dataclasses.replace(at, vat=vat.vat) == vat  # one change between the rungs
    assert dataclasses.replace(vat, entropy=ENTROPY_WEIGHT) == entropy  # each one change to the VAT rung
    assert dataclasses.replace(vat, average=plans.AVERAGE_EPOCHS) == averaged
    for start, below in plans.BUILDS_ON.items():  # each rung is one change to the one it builds on
        assert plans.LADDER_STARTS.index(below) < plans.LADDER_STARTS.index(start)
        changed = {k for k, v in vars(_configuration(plan, start)).items()
                   if v != vars(_configuration(plan, below))[k]}
        assert len(changed) == 1, (start, changed)
    assert plans.ladder_jobs(_prepared(), params).keys() == {plan.ladder[s] for s in plan.ladder} - {
        plan.ladder[plans.VAT_RUNG]}


def test_without_unlabelled_reviews_a_vat_size_or_a_language_model_the_ladder_is_shorter():
    params = tiny_params(lm_hidden=16)
    without_vat = [*plans.LADDER_STARTS[:3], plans.BIDIRECTIONAL_RUNG]  # both directions read no unlabelled review
    assert list(plans.follow_up("lstm", _prepared(), params.replace(vat=0.0)).ladder) == without_vat
    assert list(plans.follow_up("lstm", _prepared(unlabelled=False), params).ladder) == without_vat
    assert list(plans.follow_up("lstm", _prepared(unlabelled=False, backward=False), params).ladder) == list(
        plans.LADDER_STARTS[:3])
    assert plans.follow_up("lstm", _prepared(language_model=False), params).ladder == {}
    # no backward language model (LM_BACKWARD False): every rung but the bidirectional one
    assert list(plans.follow_up("lstm", _prepared(backward=False), params.replace(vat=0.5)).ladder) == [
        s for s in plans.LADDER_STARTS if s != plans.BIDIRECTIONAL_RUNG]


def test_the_rungs_a_run_leaves_out_are_named_with_the_reason_and_the_fix():
    params = tiny_params(lm_hidden=16, vat=0.5)
    assert plans.missing_rungs(_prepared(), params) == {}  # every rung trained: nothing to say
    assert plans.missing_rungs(_prepared(language_model=False), params) == {}  # no ladder at all
    no_vat = plans.missing_rungs(_prepared(backward=False), params.replace(vat=0.0))  # the `full` profile's case
    assert list(no_vat) == [*plans.UNLABELLED_RUNGS, plans.BIDIRECTIONAL_RUNG]
    assert all("VAT ε is 0" in no_vat[s] and "-p VAT" in no_vat[s] for s in plans.UNLABELLED_RUNGS)
    assert "LM_BACKWARD" in no_vat[plans.BIDIRECTIONAL_RUNG]
    no_reviews = plans.missing_rungs(_prepared(unlabelled=False), params)
    assert list(no_reviews) == list(plans.UNLABELLED_RUNGS) and "no unlabelled reviews" in no_reviews[plans.VAT_RUNG]
    assert "PRETRAIN_REVIEWS above 0" in no_reviews[plans.VAT_RUNG]  # the fix it names
    for prepared, p in ((_prepared(backward=False), params.replace(vat=0.0)), (_prepared(unlabelled=False), params)):
        trained = plans.ladder_labels(prepared, p)  # together they name every rung exactly once
        assert sorted([*trained, *plans.missing_rungs(prepared, p)]) == sorted(plans.LADDER_STARTS)
