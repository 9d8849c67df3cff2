"""ladder: notebook 04's climb from a word2vec start to a partner, built from tiny trained networks."""
import dataclasses

import numpy as np
import pytest

from sentiment_lib import experiment, ladder, linear, metrics
from sentiment_lib.plans import BIDIRECTIONAL_RUNG, BUILDS_ON, LADDER_STARTS, UNLABELLED_RUNGS
from sentiment_lib.runtime import Runtime

from tiny_data import tiny_params, tiny_prepared


@pytest.fixture(scope="module")
def climbed_inputs():
    prepared = tiny_prepared(n_train=96, n_val=40, n_test=48)
    params = tiny_params(epochs=2, hidden_size=8, embed_dim=16, lr=0.01, batch_size=16, embeddings="random")
    runs = {start: experiment.train(experiment.job("attention_lstm", prepared, params, seed=42 + i, label=start),
                                    device="cpu", runtime=Runtime(checkpoints=False))
            for i, start in enumerate(LADDER_STARTS)}
    narrower = experiment.train(experiment.job("attention_lstm", prepared, params, hidden_size=4, label="narrow"),
                                device="cpu", runtime=Runtime(checkpoints=False))
    partner = linear.linear_reference(prepared, "nbsvm", 32, "head+tail", 42)
    return prepared, runs, narrower, partner


def test_the_ladder_has_a_row_per_rung_scored_on_test(climbed_inputs):
    prepared, runs, narrower, partner = climbed_inputs
    rungs = ladder.climb(prepared, runs, partner, narrower=narrower, lm_seconds=100.0, seed_std=0.01,
                         backward_seconds=30.0)
    names = [narrower.name] + [runs[s].name for s in LADDER_STARTS] + [rungs.blend, rungs.partner_row]
    assert list(rungs.table.index) == names
    labels = prepared.splits["test"].labels
    for name in names[:-1]:
        assert rungs.table.loc[name, "accuracy"] == pytest.approx(metrics.accuracy(labels, rungs.probs[name]))
    assert (rungs.table["accuracy_low"] <= rungs.table["accuracy"]).all()
    assert (rungs.table["accuracy"] <= rungs.table["accuracy_high"]).all()
    for start in LADDER_STARTS:  # what chose the network: its validation loss, beside its accuracies
        assert rungs.table.loc[runs[start].name, "val_loss"] == runs[start].fit.best_val_loss
    assert rungs.chosen.name == rungs.table.loc[[runs[s].name for s in LADDER_STARTS], "val_loss"].idxmin()
    val_labels = prepared.splits["val"].labels
    assert rungs.table.loc[rungs.partner_row, "val_loss"] == pytest.approx(metrics.log_loss(val_labels, partner.val_prob))
    # the language model's pre-training counts in the rungs that start from it, not in the word2vec one
    word2vec, lm_start = runs["word2vec start"], runs["language-model start"]
    assert rungs.table.loc[word2vec.name, "train_seconds"] == pytest.approx(word2vec.fit.seconds)
    assert rungs.table.loc[lm_start.name, "train_seconds"] == pytest.approx(lm_start.fit.seconds + 100.0)
    both = runs[BIDIRECTIONAL_RUNG]  # and the backward model's in the rung that starts from it too
    assert rungs.table.loc[both.name, "train_seconds"] == pytest.approx(both.fit.seconds + 130.0)
    # each rung against the one it builds on (6 of them), the average against its network and its partner
    assert len(rungs.climb) == 8 and set(rungs.climb["verdict"]) <= {
        *(f"{a} better" for a in rungs.probs), "within test noise", "within seed spread"}


def test_the_network_and_the_weight_are_chosen_on_validation(climbed_inputs):
    prepared, runs, _, partner = climbed_inputs
    rungs = ladder.climb(prepared, runs, partner)
    assert rungs.chosen is min(runs.values(), key=lambda r: r.fit.best_val_loss)
    # the same climb with the test labels flipped: the same network and the same weight, other test scores
    flipped_splits = dict(prepared.splits)
    flipped_splits["test"] = dataclasses.replace(prepared.splits["test"], labels=1 - prepared.splits["test"].labels)
    flipped = ladder.climb(dataclasses.replace(prepared, splits=flipped_splits), runs, partner)
    assert flipped.chosen is rungs.chosen and flipped.weight == rungs.weight
    assert flipped.table.loc[flipped.blend, "accuracy"] == pytest.approx(1 - rungs.table.loc[rungs.blend, "accuracy"])


def test_a_narrower_network_of_the_same_configuration_is_one_row(climbed_inputs):
    prepared, runs, _, partner = climbed_inputs
    same = ladder.climb(prepared, runs, partner, narrower=runs["word2vec start"])
    assert list(same.table.index).count(runs["word2vec start"].name) == 1
    assert len(same.table) == len(LADDER_STARTS) + 2


def test_claims_and_recorded_rows_follow_the_paired_table(climbed_inputs):
    prepared, runs, _, partner = climbed_inputs
    rungs = ladder.climb(prepared, runs, partner, seed_std=0.0)
    at, plain = runs["language-model start + AT"], runs["language-model start"]
    *on_validation, first, second = rungs.claims()
    assert len(on_validation) == 4
    for claim, start in zip(on_validation, (*UNLABELLED_RUNGS, BIDIRECTIONAL_RUNG)):  # kept only if validation says so
        rung, below = runs[start], runs[BUILDS_ON[start]]
        assert claim.holds == (rung.fit.best_val_loss < below.fit.best_val_loss)
        assert f"{rungs.climb.loc[f'{rung.name} vs {below.name}', 'verdict']}" in claim.evidence
    assert first.holds == (rungs.climb.loc[f"{at.name} vs {plain.name}", "verdict"] == f"{at.name} better")
    assert second.holds == (rungs.climb.loc[f"{rungs.blend} vs {rungs.chosen.name}", "verdict"]
                            == f"{rungs.blend} better")
    rows = rungs.rows(prepared.splits["test"].labels)
    assert [r["model"] for r in rows] == [runs[s].name for s in LADDER_STARTS] + [rungs.blend]
    assert rows[-1]["blend_weight"] == rungs.weight and rows[-1]["network"] == rungs.chosen.name
    assert rows[-1]["partner"] == partner.row["model"]


def test_a_missing_rung_names_the_fix(climbed_inputs):
    prepared, runs, _, partner = climbed_inputs
    with pytest.raises(ValueError, match="plans.follow_up"):
        ladder.climb(prepared, {"word2vec start": runs["word2vec start"]}, partner)


def test_the_test_probabilities_of_the_average_come_from_the_weight(climbed_inputs):
    prepared, runs, _, partner = climbed_inputs
    rungs = ladder.climb(prepared, runs, partner)
    expected = linear.blend(rungs.chosen.test_prob, partner.test_prob, rungs.weight)
    np.testing.assert_allclose(rungs.probs[rungs.blend], expected)


def test_without_unlabelled_reviews_the_ladder_has_no_vat_rung(climbed_inputs):
    prepared, runs, _, partner = climbed_inputs
    three = {start: run for start, run in runs.items() if "VAT" not in start and start != BIDIRECTIONAL_RUNG}
    rungs = ladder.climb(prepared, three, partner)
    assert len(rungs.table) == 5 and len(rungs.climb) == 4 and len(rungs.claims()) == 2
    assert [r["model"] for r in rungs.rows(prepared.splits["test"].labels)][:-1] == [r.name for r in three.values()]


def test_the_section_2_network_is_one_row_only_when_it_trained_exactly_as_the_word2vec_rung(climbed_inputs):
    prepared, runs, _, partner = climbed_inputs
    rung = runs["word2vec start"]
    capped = dataclasses.replace(rung.configuration, epochs=rung.configuration.epochs + 4)
    stopped = dataclasses.replace(rung, configuration=capped, fit=dataclasses.replace(rung.fit, stopped_early=True))
    rows = len(LADDER_STARTS) + 2  # the rungs, the average and the partner
    assert len(ladder.climb(prepared, runs, partner, narrower=stopped).table) == rows  # the same training: one row
    ran_on = dataclasses.replace(stopped, fit=dataclasses.replace(rung.fit, stopped_early=False))
    assert len(ladder.climb(prepared, runs, partner, narrower=ran_on).table) == rows + 1  # another: its own row
