"""experiment: the train-and-compare steps of notebooks 03–05, on made-up reviews."""
import dataclasses
import json

import numpy as np
import pytest

from sentiment_lib import analysis, experiment, manifest, rundir, scoring
from sentiment_lib.runtime import Runtime

from tiny_data import save_tiny_prepared, tiny_params, tiny_prepared


def trained(name, prepared, params, runtime=None, **settings):
    """Model ``name`` with the profile's settings and ``settings``, trained and scored on test, on the CPU."""
    return experiment.train(experiment.job(name, prepared, params, **settings), device="cpu", runtime=runtime)


@pytest.fixture()
def run():
    prepared = tiny_prepared(n_train=96, n_val=32, n_test=40)
    params = tiny_params(epochs=3, hidden_size=16, embed_dim=16, lr=0.01, batch_size=16, embeddings="random")
    return prepared, params


def test_a_job_trains_and_scores_on_test(run):
    prepared, params = run
    result = trained("bilstm_pool", prepared, params)
    assert result.test_prob.shape == (40,)
    assert set(experiment.TABLE_METRICS) <= set(result.test)
    assert result.test["accuracy"] > 0.8  # the cue words make the made-up task easy
    assert np.array_equal(result.test_labels, prepared.splits["test"].labels)  # original order restored
    row = result.row()
    assert row["parameters"] == result.parameters > 0
    assert 1 <= row["best_epoch"] <= row["epochs_run"] <= 3
    assert row["settings"] == {"architecture": "bilstm_pool", "num_layers": 1, "num_classes": 2,
                               "read_padded_last_step": False, "hidden_size": 16, "dropout": params.dropout, "embed_dim": 16,
                               "embeddings": result.embeddings, "lr": 0.01, "batch_size": 16,
                               "max_len": params.max_len, "truncation": params.truncation, "adversarial": 0.0,
                               "vat": 0.0, "entropy": 0.0, "average": 0.0, "bidirectional": None}


def test_same_seed_same_metrics(run):
    prepared, params = run
    first = trained("gru", prepared, params, runtime=Runtime(checkpoints=False))
    second = trained("gru", prepared, params, runtime=Runtime(checkpoints=False))
    assert first.test == second.test
    assert np.array_equal(first.test_prob, second.test_prob)


def test_multiclass_targets(run):
    prepared, params = run
    targets = {k: analysis.rating_buckets(s.ratings) for k, s in prepared.splits.items()}
    inferred = trained("lstm", prepared, params, targets=targets, epochs=1)
    assert inferred.model_config.num_classes == 3  # ratings 3 and 8 only: buckets 1 and 2
    result = trained("lstm", prepared, params, targets=targets, num_classes=len(analysis.RATING_BUCKETS))
    assert result.model_config.num_classes == 4
    assert result.test_prob.shape == (40, 4)
    assert np.allclose(result.test_prob.sum(axis=1), 1, atol=1e-5)


def test_rating_buckets_and_bad_ratings():
    assert analysis.rating_buckets(np.array([1, 2, 3, 4, 7, 8, 9, 10])).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    with pytest.raises(ValueError, match="CSV"):
        analysis.rating_buckets(np.array([1, -1]))


def test_comparison_table_sorted_and_recorded(run):
    prepared, params = run
    a = trained("bag_of_embeddings", prepared, params)
    b = trained("rnn", prepared, params, epochs=1)
    from sentiment_lib import linear

    reference = linear.linear_reference(prepared).row
    table = experiment.comparison_table([a, b], [reference])
    # ranked on validation only: networks by validation loss, then the reference (no loss) last
    assert list(table.index[:2]) == sorted(["bag_of_embeddings", "rnn"], key=lambda n: table.loc[n, "val_loss"])
    assert table.index[-1] == "tfidf_logreg"
    flipped = experiment.comparison_table([a, b], [{**reference, "model": "other", "accuracy": 1.0, "val_accuracy": 0.0},
                                                   {**reference, "accuracy": 0.0, "val_accuracy": 1.0}])
    assert list(flipped.index[-2:]) == ["tfidf_logreg", "other"]  # test accuracy never decides the order
    manifest.record_models("smoke", table.reset_index().to_dict("records"))
    recorded = rundir.read_manifest("smoke")["models"]
    assert set(recorded) == {"bag_of_embeddings", "rnn", "tfidf_logreg"}
    assert recorded["rnn"]["accuracy"] == pytest.approx(b.test["accuracy"])
    json.dumps(recorded)  # plain JSON, no numpy leftovers
    page = experiment.shown(table)  # for the page: the same numbers, rounded, under names in words
    assert list(page.index) == list(table.index)
    assert page.loc["rnn", "test accuracy"] == round(table.loc["rnn", "accuracy"], 4)
    assert page.loc["rnn", "validation loss"] == round(table.loc["rnn", "val_loss"], 4)
    assert page.loc["tfidf_logreg", "validation loss"] == "—"  # a linear reference has none: a dash, not "NaN"
    assert not {"accuracy", "val_loss", "val_accuracy", "f1"} & set(page.columns)


def test_saved_bundle_scores_like_the_model(run, tmp_path):
    prepared, params = run
    result = trained("attention_lstm", prepared, params)
    path = experiment.save_run(result, prepared, "smoke", notebook="04")
    prob, metrics = scoring.score_bundle(path, prepared)
    assert np.allclose(prob, result.test_prob, atol=1e-6)
    assert metrics["accuracy"] == pytest.approx(result.test["accuracy"])


def test_score_members_scores_each_model_of_an_ensemble_and_their_mean(run, tmp_path):
    from sentiment_lib.bundle import save_ensemble

    prepared, params = run
    runs = [trained(name, prepared, params, epochs=1)
            for name in ("lstm", "bag_of_embeddings")]
    path = save_ensemble(tmp_path / "final.pt", [(r.name, r.model, r.model_config, r.preprocessing) for r in runs],
                         prepared.vocab)
    prob, metrics, table = scoring.score_members(path, prepared)
    assert list(table.index) == ["lstm", "bag_of_embeddings", scoring.ENSEMBLE_ROW]
    assert list(table.columns) == [*experiment.TABLE_METRICS, "log_loss"]
    labels = prepared.splits["test"].labels
    p = np.clip(prob.astype(float), 1e-15, 1 - 1e-15)
    assert table.loc[scoring.ENSEMBLE_ROW, "log_loss"] == pytest.approx(
        -np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)), rel=1e-5)
    np.testing.assert_allclose(prob, (runs[0].test_prob + runs[1].test_prob) / 2, atol=1e-6)
    for r in runs:
        assert table.loc[r.name, "accuracy"] == pytest.approx(r.test["accuracy"])
    assert table.loc[scoring.ENSEMBLE_ROW, "accuracy"] == pytest.approx(metrics["accuracy"])
    scored, by_score_bundle = scoring.score_bundle(path, prepared)
    np.testing.assert_allclose(scored, prob, rtol=1e-6)
    val_prob, val_metrics, on_val = scoring.score_members(path, prepared, subset="val")
    assert val_prob.shape == (len(prepared.splits["val"].labels),) and list(on_val.index) == list(table.index)
    assert on_val.loc[scoring.ENSEMBLE_ROW, "accuracy"] == pytest.approx(val_metrics["accuracy"])
    with pytest.raises(ValueError, match="'test' or 'val'"):
        scoring.score_members(path, prepared, subset="train")
    single = experiment.save_run(runs[0], prepared, "smoke", notebook="04")
    _, _, one = scoring.score_members(single, prepared)
    assert list(one.index) == ["lstm"] and one.loc["lstm", "accuracy"] == pytest.approx(runs[0].test["accuracy"])


def test_scoring_a_multiclass_bundle_as_binary_names_the_fix(run, tmp_path):
    from sentiment_lib.bundle import save_bundle
    from sentiment_lib.models import ModelConfig, build_model

    prepared, _ = run
    cfg = ModelConfig("lstm", len(prepared.vocab), embed_dim=8, hidden_size=8, num_classes=4)
    path = save_bundle(tmp_path / "buckets.pt", build_model(cfg), cfg, prepared.vocab,
                       {"max_len": 16, "truncation": "head", "remove_stopwords": False})
    with pytest.raises(ValueError, match="predicts 4 classes.*multiclass_metrics"):
        scoring.score_bundle(path, prepared)


def test_score_bundle_refuses_another_runs_vocabulary(run, tmp_path):
    prepared, params = run
    result = trained("lstm", prepared, params, epochs=1)
    path = experiment.save_run(result, prepared, "smoke", notebook="04")
    other = tiny_prepared()
    other.vocab.itos[5], other.vocab.itos[6] = other.vocab.itos[6], other.vocab.itos[5]
    with pytest.raises(ValueError, match="another vocabulary"):
        scoring.score_bundle(path, other)


def test_load_run_takes_data_parameters_from_the_run_directory():
    save_tiny_prepared("smoke")
    params, prepared = rundir.load_run("smoke", epochs=1)
    assert params.vocab_size == 4000 and params.min_freq == 1  # from the run dir, not the profile
    assert params.epochs == 1
    assert len(prepared.splits["train"]) == 64


def test_load_run_refuses_a_data_parameter_that_differs_from_the_run_s():
    save_tiny_prepared("smoke")
    with pytest.raises(ValueError, match=r"VOCAB_SIZE=800 \(02 used 4000\).*run --profile smoke -p VOCAB_SIZE 800"):
        rundir.load_run("smoke", vocab_size=800)
    with pytest.raises(ValueError, match=r"MIN_FREQ=3 \(02 used 1\)"):
        rundir.load_run("smoke", min_freq=3, epochs=1)
    params, _ = rundir.load_run("smoke", vocab_size=4000)  # the chain passes 02's own values
    assert params.vocab_size == 4000


def test_truncation_is_a_training_parameter_that_the_prepared_data_do_not_depend_on():
    save_tiny_prepared("smoke")
    params, prepared = rundir.load_run("smoke", max_len=8, truncation="tail", epochs=1)
    assert (params.max_len, params.truncation) == (8, "tail")
    short = trained("lstm", prepared, params)
    assert short.preprocessing["max_len"] == 8 and short.preprocessing["truncation"] == "tail"
    assert max(len(ids) for ids in prepared.splits["train"].ids) > 8  # the stored reviews stay whole
    default, _ = rundir.load_run("smoke")
    assert default.max_len == 96  # the smoke profile's, whatever an earlier notebook used


def test_load_run_starts_from_the_run_vectors_unless_told_otherwise():
    save_tiny_prepared("smoke", embed_dim=24)
    params, prepared = rundir.load_run("smoke")
    assert params.embeddings == "word2vec" and params.embed_dim == 24  # 02's, not the profile's 32
    run = trained("lstm", prepared, params, epochs=1)
    assert run.embeddings == "word2vec"
    params, _ = rundir.load_run("smoke", embeddings="random", embed_dim=8)
    assert params.embeddings == "random" and params.embed_dim == 8
    assert trained("lstm", prepared, params, epochs=1).embeddings == "random"
    save_tiny_prepared("smoke", embed_dim=None)  # 02 run with EMBEDDINGS="random"
    params, _ = rundir.load_run("smoke")
    assert params.embeddings == "random"


def test_load_run_without_preprocessing_names_the_notebook():
    with pytest.raises(FileNotFoundError, match="02_preprocessing"):
        rundir.load_run("smoke")


def test_load_run_rejects_bad_parameter_before_loading():
    with pytest.raises(ValueError, match="HIDDEN_SIZE"):
        rundir.load_run("smoke", hidden_size=0)


def test_misclassified_and_error_analysis(run):
    prepared, _ = run
    labels = prepared.splits["test"].labels
    prob = np.where(labels == 1, 0.9, 0.1).astype(float)
    prob[[0, 1]] = 1 - prob[[0, 1]]  # two confident mistakes
    wrong = analysis.misclassified(prepared, prob, n=5)
    assert len(wrong) == 2
    errors = analysis.error_analysis(prepared, prob, max_len=128)
    assert errors["error_rate"] == pytest.approx(2 / 40)


def test_train_command_trains_named_models_and_saves_them(tmp_path, capsys):
    from sentiment_lib import config
    from sentiment_lib.__main__ import main

    save_tiny_prepared("smoke")
    out = tmp_path / "rows.json"
    assert main(["train", "lstm", "bag_of_embeddings", "--profile", "smoke", "-p", "EPOCHS", "2",
                 "-p", "HIDDEN_SIZE", "16", "--device", "cpu", "--save", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "lstm" in printed and "bag_of_embeddings" in printed and "accuracy" in printed
    record = json.loads(out.read_text())
    assert record["parameters"] == {"epochs": 2, "hidden_size": 16}
    rows = {r["model"]: r for r in record["models"]}
    assert set(rows) == {"lstm", "bag_of_embeddings"}
    assert rows["lstm"]["embeddings"] == "word2vec"  # the run's vectors, as in 04
    assert 1 <= len(rows["lstm"]["val_accuracy_history"]) == rows["lstm"]["epochs_run"] <= 2
    _, prepared = rundir.load_run("smoke")
    _, scored = scoring.score_bundle(config.models_dir("smoke") / "lstm.pt", prepared)
    assert scored["accuracy"] == pytest.approx(rows["lstm"]["accuracy"])


@pytest.mark.parametrize("argv, message", [
    (["train", "transformer"], "Known models: lstm"),             # checked before the run is loaded
    (["train", "lstm", "-p", "DROPOUT", "1.5"], "DROPOUT"),
    (["train", "lstm"], "02_preprocessing"),                      # no run directory yet
])
def test_train_command_bad_input_names_the_fix(argv, message, capsys):
    from sentiment_lib.__main__ import main

    assert main([*argv, "--profile", "smoke"]) == 2
    assert message in capsys.readouterr().err


def test_load_run_refuses_a_word2vec_start_it_cannot_give():
    save_tiny_prepared("smoke", embed_dim=24)
    with pytest.raises(ValueError, match="EMBED_DIM=16 differs .* 24"):
        rundir.load_run("smoke", embed_dim=16)  # would otherwise train from a random start, labelled word2vec
    params, _ = rundir.load_run("smoke", embed_dim=16, embeddings="random")
    assert (params.embeddings, params.embed_dim) == ("random", 16)
    save_tiny_prepared("smoke", embed_dim=None)
    with pytest.raises(ValueError, match="no word vectors"):
        rundir.load_run("smoke", embeddings="word2vec")


def test_a_review_s_stated_score_is_read_on_imdb_s_scale():
    assert analysis.stated_side("Awful. 2/10.") == "negative"
    assert analysis.stated_side("I give it 9.5/10, a classic") == "positive"
    assert analysis.stated_side("4 out of 5 stars") == "positive" and analysis.stated_side("1 / 5") == "negative"
    assert analysis.stated_side("5/10, average") is None and analysis.stated_side("no score here") is None
    assert analysis.stated_side("on 12/10/2004 I saw it") is None  # a date, not a score
    assert analysis.stated_side("first 8/10, on rewatch 3/10") == "mixed"
    flags = analysis.contradicts_label(["Loved it. 9/10", "Loved it. 9/10", "Bad. 2/10", "Fine"], np.array([1, 0, 1, 0]))
    assert flags.tolist() == [False, True, True, False]


def test_error_counts_find_the_errors_whose_text_disagrees_with_the_label(run):
    prepared, _ = run
    labels = prepared.splits["test"].labels
    texts = prepared.reviews.index[prepared.reviews["subset"] == "test"]
    prepared.reviews.loc[texts[0], "text"] = "great great 9/10"  # label noise: stated positive
    prepared.reviews.loc[texts[1], "text"] = "awful 1/10"
    prob = np.where(labels == 1, 0.9, 0.1).astype(float)
    prob[[0, 1, 2]] = 1 - prob[[0, 1, 2]]  # three confident mistakes
    counted = analysis.error_counts(prepared, prob, confident=2)
    expected_contradicting = int(labels[0] == 0) + int(labels[1] == 1)
    assert counted["errors"] == 3 and counted["confident"] == 2
    assert counted["contradicting_share_errors"] == pytest.approx(expected_contradicting / 3)
    quotes = analysis.as_quotes(analysis.misclassified(prepared, prob, n=3))
    assert quotes.count("\n> ") + quotes.startswith("> ") >= 3 and "P(positive)" in quotes
    assert "great great 9/10" in quotes  # shown in full, not cut


def test_a_job_refuses_a_setting_that_is_neither_a_model_nor_a_training_field(run):
    prepared, params = run
    with pytest.raises(ValueError, match="hidden_size"):
        experiment.job("lstm", prepared, params, hiden_size=8)
    one = experiment.job("lstm", prepared, params, hidden_size=8, lr=0.5, seed=7, label="small")
    assert (one.configuration.model.hidden_size, one.configuration.lr, one.params.seed, one.name) == \
        (8, 0.5, 7, "small")


def test_a_job_with_virtual_adversarial_training_reads_the_unlabelled_reviews(run):
    from sentiment_lib.batching import EncodedSplit

    prepared, params = run
    with pytest.raises(ValueError, match="PRETRAIN_REVIEWS > 0"):
        trained("lstm", prepared, params, vat=0.5)
    extra = EncodedSplit(list(prepared.splits["train"].ids[:48]), np.full(48, -1))
    with_reviews = dataclasses.replace(prepared, unlabelled=extra)
    result = trained("lstm", with_reviews, params, vat=0.5, runtime=Runtime(checkpoints=False))
    assert result.row()["settings"]["vat"] == 0.5 and result.test["accuracy"] > 0.5
    plain = experiment.checkpoint_path(experiment.job("lstm", prepared, params), None)
    assert experiment.checkpoint_path(experiment.job("lstm", with_reviews, params, vat=0.0), None) == plain
    assert experiment.checkpoint_path(experiment.job("lstm", with_reviews, params, vat=0.5), None) != plain


def test_a_job_with_a_twin_gives_the_averaged_network_and_the_one_without_averaging_as_their_own_jobs_do(run):
    from sentiment_lib.batching import EncodedSplit

    prepared, params = run
    extra = EncodedSplit(list(prepared.splits["train"].ids[:48]), np.full(48, -1))
    prepared = dataclasses.replace(prepared, unlabelled=extra)
    settings = dict(vat=0.5, average=1.0, label="averaged")
    both = experiment.job("lstm", prepared, params, **settings)
    both = dataclasses.replace(both, twin="raw")
    paired = experiment.train(both, device="cpu", runtime=Runtime(checkpoints=False))
    averaged = trained("lstm", prepared, params, runtime=Runtime(checkpoints=False), **settings)
    raw = trained("lstm", prepared, params, runtime=Runtime(checkpoints=False), vat=0.5)
    for one, alone in [(paired, averaged), (paired.twin, raw)]:
        assert one.fit.best_val_loss == alone.fit.best_val_loss
        assert np.array_equal(one.test_prob, alone.test_prob) and one.test == alone.test
        assert one.settings() == alone.settings()
    assert paired.twin.name == "raw" and paired.twin.twin is None and paired.fit.raw_state is None
    named = experiment.by_name([paired])
    assert list(named) == ["averaged", "raw"] and named["raw"] is paired.twin
    with pytest.raises(ValueError, match="named 'averaged'"):
        experiment.by_name([paired, paired])
    # its checkpoint keeps the raw weights too: another key than the averaged job's alone
    assert experiment.checkpoint_path(both, None) != experiment.checkpoint_path(
        experiment.job("lstm", prepared, params, **settings), None)
    with pytest.raises(ValueError, match="set the configuration's average > 0"):
        dataclasses.replace(experiment.job("lstm", prepared, params, vat=0.5), twin="raw")


def test_the_run_chosen_on_validation_has_the_lowest_validation_loss(run):
    prepared, params = run
    first = trained("lstm", prepared, params, runtime=Runtime(checkpoints=False))
    second = dataclasses.replace(first, name="other", fit=dataclasses.replace(first.fit,
                                                                               best_val_loss=first.fit.best_val_loss / 2))
    assert experiment.lowest_val_loss({"lstm": first, "other": second}) == "other"
    assert experiment.lowest_val_loss({"lstm": first, "same": dataclasses.replace(first)}) == "lstm"  # first on a tie
    with pytest.raises(ValueError, match="train at least one network"):
        experiment.lowest_val_loss({})


def test_vat_reads_the_unlabelled_reviews_and_the_training_reviews_without_their_labels(run):
    from sentiment_lib.batching import EncodedSplit

    prepared, _ = run
    with pytest.raises(ValueError, match="PRETRAIN_REVIEWS > 0"):
        experiment.reviews_without_labels(prepared)
    extra = EncodedSplit([np.array([5, 6, 7])] * 4, np.full(4, -1))
    read = experiment.reviews_without_labels(dataclasses.replace(prepared, unlabelled=extra))
    train = prepared.splits["train"]
    assert len(read) == 4 + len(train) and set(read.labels) == {-1}
    assert [list(x) for x in read.ids[4:]] == [list(x) for x in train.ids]


def test_the_slanted_schedule_rises_over_a_tenth_of_the_steps_then_falls_and_new_settings_key_only_when_set(
        run, monkeypatch):
    prepared, params = run
    slanted = experiment.job("lstm", prepared, params, schedule="slanted").configuration
    assert experiment.schedule_steps(slanted, 35) == {"warmup_steps": 11, "decay": "linear"}  # ceil(0.1 × 3 × 35)
    assert experiment.schedule_steps(dataclasses.replace(slanted, epochs=1), 2) == {"warmup_steps": 1,
                                                                                    "decay": "linear"}
    assert experiment.schedule_steps(dataclasses.replace(slanted, schedule="constant"), 35) == {
        "warmup_steps": 0, "decay": "constant"}
    with pytest.raises(ValueError, match="'constant', 'slanted'"):
        experiment.job("lstm", prepared, params, schedule="cosine")
    with pytest.raises(ValueError, match="layer_decay must be >= 1"):  # refused before any training starts
        experiment.job("lstm", prepared, params, layer_decay=0.5)
    from sentiment_lib import train as training

    seen = []
    groups = training.parameter_groups

    def recorded(model, lr, layer_decay=1.0):
        seen.append((lr, layer_decay))
        return groups(model, lr, layer_decay)

    monkeypatch.setattr(training, "parameter_groups", recorded)
    result = trained("lstm", prepared, params, runtime=Runtime(checkpoints=False), schedule="slanted",
                     layer_decay=2.6)
    assert seen == [(0.01, 2.6)]  # the configuration's layer_decay reaches the optimiser
    rates = result.fit.history["lr"].tolist()  # the output side's rate after each epoch's last step
    assert rates == sorted(rates, reverse=True) and rates[-1] < 0.01 / 3  # past the rise, falling towards 0
    plain = experiment.checkpoint_path(experiment.job("lstm", prepared, params), None)
    assert experiment.checkpoint_path(experiment.job("lstm", prepared, params, layer_decay=1.0,
                                                     schedule="constant"), None) == plain  # older keys still match
    assert experiment.checkpoint_path(experiment.job("lstm", prepared, params, layer_decay=2.6), None) != plain
    assert experiment.checkpoint_path(experiment.job("lstm", prepared, params, schedule="slanted"), None) != plain
