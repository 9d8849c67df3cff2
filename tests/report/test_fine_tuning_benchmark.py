"""benchmarks/fine_tuning: each rung in each way, changing only its rates, on made-up data (no training, no timing)."""
import dataclasses

import numpy as np
import pytest

from benchmarks import fine_tuning
from sentiment_lib import plans
from sentiment_lib.batching import EncodedSplit

from tiny_data import tiny_params, tiny_prepared


@pytest.fixture()
def a_run(monkeypatch):
    prepared = tiny_prepared()
    prepared = dataclasses.replace(prepared, language_model={"weights": "stand-in"},
                                   unlabelled=EncodedSplit(list(prepared.splits["train"].ids[:10]), np.full(10, -1)))
    params = tiny_params(lm_hidden=16, vat=0.2)
    monkeypatch.setattr(fine_tuning, "load_run", lambda profile: (params, prepared))
    return prepared, params


def test_each_rung_is_trained_each_way_changing_only_the_rates(a_run):
    prepared, params = a_run
    at = plans.LADDER_STARTS[2]
    jobs = fine_tuning.variants([at], "quick", 2.6)
    assert [j.name for j in jobs] == [f"{at} | {way}" + (" (2.6)" if "layer_decay" in change(0.01, 2.6) else "")
                                      for way, change in fine_tuning.WAYS.items()]
    as_04 = plans.ladder_jobs(prepared, params)[plans.ladder_labels(prepared, params)[at]].configuration
    assert jobs[0].configuration == as_04
    assert [(j.configuration.layer_decay, j.configuration.schedule, j.configuration.lr) for j in jobs] == [
        (1.0, "constant", as_04.lr), (2.6, "constant", as_04.lr), (1.0, "slanted", as_04.lr),
        (2.6, "slanted", as_04.lr), (2.6, "constant", as_04.lr * 2.6)]
    for one in jobs[1:]:
        assert dataclasses.replace(one.configuration, layer_decay=1.0, schedule="constant", lr=as_04.lr) == as_04
    assert [j.name for j in fine_tuning.variants([at], "quick", 2.0, ["both"])] == [f"{at} | both (2)"]


def test_a_rung_the_run_does_not_plan_is_refused_with_the_ones_it_does(a_run):
    with pytest.raises(SystemExit, match=r"no rung \[.bidirectional start \+ AT.\]; it plans \[.word2vec start."):
        fine_tuning.variants([plans.BIDIRECTIONAL_RUNG], "quick", 2.6)
