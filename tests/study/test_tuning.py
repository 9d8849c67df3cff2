"""The Optuna study: search space, objective and pruning, storage, resume (also after a kill), summaries,
the final model and the worker command. Tiny made-up data: a trial trains in well under a second."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import torch
from optuna.trial import TrialState
from sklearn.metrics import log_loss

from sentiment_lib import config, experiment, final_model, language_model, manifest, plans, profiles, scoring
from sentiment_lib.runtime import Runtime
from sentiment_lib.tuning import space, storage
from sentiment_lib.tuning import study as studies
from sentiment_lib.__main__ import main
from sentiment_lib.bundle import load_bundle

from tiny_data import save_tiny_prepared, tiny_params, tiny_prepared, wait_for

TESTS = Path(__file__).resolve().parents[1]
FAST = dict(device="cpu", threads=1)  # one torch thread: two threads on a busy 2-core machine crawl


@pytest.fixture(autouse=True)
def restore_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def prepared():
    return tiny_prepared()


def sqlite_url(tmp_path: Path, name: str = "study.db") -> str:
    return f"sqlite:///{tmp_path / name}"


def snapshot(trial: optuna.trial.FrozenTrial) -> tuple:
    return trial.number, trial.state, trial.params, trial.value, trial.datetime_start, trial.datetime_complete


# --------------------------------------------------------------------------------------------
# Search space
# --------------------------------------------------------------------------------------------


def test_search_space_is_bounded_by_the_profile():
    for profile in profiles.PROFILES:
        params = profiles.resolve(profile)
        spec = space.search_space_spec(params)
        assert set(spec) >= {"model", "num_layers", "hidden_size", "embed_dim", "dropout", "lr", "max_len",
                             "truncation", "batch_size"}
        assert max(spec["hidden_size"]["choices"]) == params.hidden_size
        assert max(spec["embed_dim"]["choices"]) == params.embed_dim
        assert max(spec["max_len"]["choices"]) == params.max_len
        assert set(spec["model"]["choices"]) == set(space.MODEL_CHOICES)
        assert set(spec["truncation"]["choices"]) == {"head", "tail", "head+tail"}
        assert spec["lr"]["log"] is True
        assert [n for n in space.SPACE_ORDER if n in spec] == list(spec)
    small = space.search_space_spec(tiny_params(hidden_size=32, max_len=128, embed_dim=32))
    assert small["hidden_size"]["choices"] == [8, 16, 32]
    assert small["embed_dim"]["choices"] == [16, 32]
    assert small["max_len"]["choices"] == [32, 64, 128]


def test_pretrained_vectors_are_a_choice_and_embed_dim_is_searched_only_without_them(prepared):
    params = tiny_params(embed_dim=32)
    spec = space.search_space_spec(params)
    assert spec["embeddings"]["choices"] == ["word2vec", "random"]
    assert spec["embed_dim"]["when"] == {"embeddings": "random"}
    assert "embeddings" not in space.search_space_spec(tiny_params(embeddings="random"))
    common = {"model": "bilstm_pool", "num_layers": 1, "hidden_size": 8, "dropout": 0.1, "lr": 1e-3,
              "max_len": 64, "truncation": "head", "batch_size": 32, "adversarial": 0.0}
    with_vectors = space.search_space(optuna.trial.FixedTrial({**common, "embeddings": "word2vec"}), params)
    assert "embed_dim" not in with_vectors  # not suggested, so not recorded as a parameter
    settings = space.trial_configuration(with_vectors, params, len(prepared.vocab))
    assert settings.pretrained and settings.model.embed_dim == params.embed_dim
    from_scratch = space.search_space(
        optuna.trial.FixedTrial({**common, "embeddings": "random", "embed_dim": 16}), params)
    settings = space.trial_configuration(from_scratch, params, len(prepared.vocab))
    assert not settings.pretrained and settings.model.embed_dim == 16
    with pytest.raises(ValueError, match="embeddings must be one of"):
        space.trial_configuration({**common, "embeddings": "glove"}, params, len(prepared.vocab))


def test_a_language_model_start_is_searched_for_one_layer_lstms_and_trains(prepared):
    params = tiny_params(lm_epochs=1, lm_hidden=16)
    spec = space.search_space_spec(params)
    assert spec["language_model"] == {"choices": [False, True],
                                      "when": {"model": ["lstm", "attention_lstm"], "num_layers": 1}}
    order = list(spec)
    assert order.index("language_model") < order.index("hidden_size") < order.index("embeddings")
    assert spec["hidden_size"]["unless"] == spec["embeddings"]["unless"] == {"language_model": True}
    assert "language_model" not in space.search_space_spec(tiny_params(lm_epochs=0))
    common = {"dropout": 0.1, "lr": 1e-3, "max_len": 64, "truncation": "head", "batch_size": 32, "adversarial": 0.25}
    point = space.search_space(optuna.trial.FixedTrial(
        {"model": "attention_lstm", "num_layers": 1, "language_model": True, **common}), params)
    assert point["language_model"] is True and not {"hidden_size", "embeddings", "embed_dim"} & set(point)
    own = space.search_space(optuna.trial.FixedTrial(
        {"model": "lstm", "num_layers": 1, "language_model": False, "hidden_size": 8, "embeddings": "word2vec",
         **common}), params)
    assert own["hidden_size"] == 8 and own["embeddings"] == "word2vec"
    for model, layers in (("bilstm", 1), ("lstm", 2)):  # not asked: the language model cannot start these
        asked = space.search_space(optuna.trial.FixedTrial(
            {"model": model, "num_layers": layers, "hidden_size": 8, "embeddings": "word2vec", **common}), params)
        assert "language_model" not in asked
    with pytest.raises(ValueError, match="one-layer lstm or attention_lstm"):
        space.trial_configuration({"model": "gru", "language_model": True}, params, len(prepared.vocab))
    assert space.values_for_model("attention_lstm", params, spec)["language_model"] is False

    configuration = space.trial_configuration(point, params, len(prepared.vocab), epochs=1)
    assert configuration.language_model and configuration.model.hidden_size == 16 and configuration.adversarial == 0.25
    assert configuration.model.embed_dim == params.embed_dim and configuration.pretrained  # as 04 builds it
    encoded = [ids for split in prepared.splits.values() for ids in split.ids] * 20  # enough text for its batches
    state, _ = language_model.pretrain(encoded, len(prepared.vocab), params.embed_dim, 16, epochs=1, seed=0)
    with_lm = dataclasses.replace(prepared, language_model=state,
                                  params={**prepared.params, "lm_fingerprint": "tiny"})
    run = experiment.train(experiment.Job(configuration, with_lm, params, "ladder", score_test=False, threads=1),
                           device="cpu", runtime=Runtime(checkpoints=False))
    assert run.embeddings == "language model" and run.fit.epochs_run == 1
    with pytest.raises(ValueError, match="has none: rerun notebooks/02_preprocessing.ipynb with LM_EPOCHS >= 1"):
        studies.run_study(prepared, params, 1, storage="sqlite://", **FAST)  # no language model in this run
    setup = studies.study_setup(with_lm, params, "val_loss")
    assert setup["language_model_fingerprint"] == "tiny"
    assert "language_model_fingerprint" not in studies.study_setup(prepared, tiny_params(), "val_loss")


def test_trial_settings_build_the_04_models():
    params = tiny_params()
    two_layer_lstm = space.trial_configuration({"model": "lstm", "num_layers": 2, "hidden_size": 16}, params, 50)
    assert two_layer_lstm.model.name == "stacked_lstm"
    assert two_layer_lstm.model.hidden_size == 16
    defaults = space.trial_configuration({"model": "gru"}, params, 50)
    assert (defaults.max_len, defaults.truncation, defaults.lr) == (params.max_len, params.truncation, params.lr)
    assert defaults.adversarial == 0.0 and space.search_space_spec(params)["adversarial"]["choices"][0] == 0.0
    assert space.trial_configuration({"model": "gru", "adversarial": 0.5}, params, 50).adversarial == 0.5
    with pytest.raises(ValueError, match="names no model"):
        space.trial_configuration({"hidden_size": 8}, params, 50)


def test_storage_defaults_to_sqlite_in_the_run_dir(monkeypatch):
    monkeypatch.delenv("OPTUNA_STORAGE", raising=False)
    url = storage.study_storage("smoke")
    assert url == f"sqlite:///{config.run_dir('smoke') / 'optuna.db'}"
    assert config.run_dir("smoke").is_dir()
    monkeypatch.setenv("OPTUNA_STORAGE", "postgresql://u:secret@db:5432/optuna")  # the README's form
    assert storage.study_storage("smoke") == "postgresql+psycopg2://u:secret@db:5432/optuna"  # the installed driver
    assert storage.study_storage("smoke", "sqlite:///x.db") == "sqlite:///x.db"
    assert "secret" not in storage.safe_url("postgresql://u:secret@db:5432/optuna")


@pytest.mark.parametrize("url, message", [
    ("study.db", "is not a database URL. Use sqlite:///path/to/study.db"), ("notaurl", "is not a database URL"),
    ("sqlite:/x.db", "is not a database URL"), ("postgres://u@db/optuna", "write postgresql://"),
    ("sqlite:///no/such/folder/study.db", "which does not exist: create the folder"),
    ("sqlite://", "names no database file"), ("oracle://u@db/x", "does not install a driver"),
])
def test_a_malformed_storage_url_names_the_accepted_forms(url, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        storage.study_storage("smoke", url)


def test_a_study_is_never_added_to_another_profiles_database_unasked(monkeypatch):
    quick_db = config.study_db_path("quick")
    quick_db.parent.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("OPTUNA_STORAGE", f"sqlite:///{quick_db}")
    with pytest.raises(ValueError, match="is the quick run's own study database; a smoke study does not belong"):
        storage.study_storage("smoke")
    assert storage.study_storage("quick") == f"sqlite:///{quick_db}"


# --------------------------------------------------------------------------------------------
# Sampler and pruner
# --------------------------------------------------------------------------------------------


def test_seeded_sampler_gives_the_same_trials(prepared, tmp_path):
    params = tiny_params()
    first = [studies.run_study(prepared, params, 1, storage=sqlite_url(tmp_path, f"{i}.db"), seed=seed, **FAST)
             for i, seed in enumerate((7, 7, 8))]
    params_of = [study.trials[0].params for study in first]
    assert params_of[0] == params_of[1]
    assert params_of[0] != params_of[2]


def test_trial_seeding_draws_distinct_startup_trials():
    """A sampler seeded once repeats its startup trials in every process; trial-seeding does not."""
    def draws(seed: int, n: int) -> list[dict]:
        study = optuna.create_study(sampler=studies.TrialSeededTPESampler(seed, n_startup_trials=10))
        out = []
        for _ in range(n):
            trial = study.ask()
            out.append({"x": trial.suggest_float("x", 0, 1), "m": trial.suggest_categorical("m", list("abcdef"))})
            study.tell(trial, 0.0)
        return out

    assert draws(3, 4) == draws(3, 4)
    assert len({json.dumps(d, sort_keys=True) for d in draws(3, 4)}) == 4


def test_successive_halving_lets_only_the_best_half_past_the_first_epoch():
    study = optuna.create_study(direction="minimize", pruner=studies.make_pruner(8))
    verdicts = []
    for loss in (0.40, 0.30, 0.50, 0.20, 0.60, 0.35):
        trial = study.ask()
        trial.report(loss, 1)
        verdicts.append(trial.should_prune())
        if verdicts[-1]:
            study.tell(trial, state=TrialState.PRUNED)
        else:
            trial.report(loss - 0.1, 3)
            study.tell(trial, loss - 0.1)
    # asynchronous: each trial is compared with those that reached epoch 1 before it (top half kept)
    assert verdicts == [False, False, True, False, True, False]


def test_the_tuning_budget_benchmark_compares_the_pruned_study_with_an_exhaustive_one(prepared):
    from benchmarks.tuning_budget import run_one

    params = tiny_params(trial_epochs=3)
    # 8 trials: with very few, ASHA may rightly prune none (when each new trial beats the earlier ones)
    halving = run_one(prepared, params, studies.make_pruner(8), 8, seed=0)
    full = run_one(prepared, params, optuna.pruners.NopPruner(), 8, seed=0)
    assert full["epochs"] == 24 and full["pruned"] == 0 and full["complete"] == 8
    assert halving["epochs"] < full["epochs"] and halving["pruned"] >= 1
    assert halving["complete"] + halving["pruned"] == 8 and np.isfinite(halving["best val loss"])


def test_objective_reports_each_epoch_and_is_pruned(prepared, tmp_path):
    """A pruner that stops everything: each trial is pruned after its first epoch, with its curve kept."""
    study = studies.run_study(prepared, tiny_params(trial_epochs=2), 2, storage=sqlite_url(tmp_path),
                             pruner=optuna.pruners.ThresholdPruner(upper=0.0), **FAST)
    assert [t.state for t in study.trials] == [TrialState.PRUNED] * 2
    for trial in study.trials:
        assert list(trial.intermediate_values) == [1]
        assert trial.user_attrs["val_loss_by_epoch"] == [trial.intermediate_values[1]]
        assert len(trial.user_attrs["val_accuracy_by_epoch"]) == 1
    assert studies.study_summary(study)["states"] == {"PRUNED": 2}


def test_the_last_epoch_is_never_pruned(prepared, tmp_path):
    study = studies.run_study(prepared, tiny_params(trial_epochs=1), 1, storage=sqlite_url(tmp_path),
                             pruner=optuna.pruners.ThresholdPruner(upper=0.0), **FAST)
    trial = study.trials[0]
    assert trial.state == TrialState.COMPLETE
    assert trial.value == pytest.approx(trial.user_attrs["val_loss"])
    assert 0.0 <= trial.user_attrs["val_accuracy"] <= 1.0
    assert trial.user_attrs["n_params"] > 0 and trial.user_attrs["epochs_run"] == 1


def test_a_diverged_trial_is_pruned_not_fatal(prepared, tmp_path, monkeypatch):
    def diverge(*args, **kwargs):
        raise FloatingPointError("Validation loss is nan at epoch 1: training diverged.")

    monkeypatch.setattr(experiment, "fit", diverge)
    study = studies.run_study(prepared, tiny_params(), 2, storage=sqlite_url(tmp_path), **FAST)
    assert [t.state for t in study.trials] == [TrialState.PRUNED] * 2
    assert "diverged" in study.trials[0].user_attrs
    assert studies.trials_frame(study)["diverged"].all()


def test_accuracy_metric_is_maximised(prepared, tmp_path):
    study = studies.run_study(prepared, tiny_params(), 1, storage=sqlite_url(tmp_path), metric="val_accuracy",
                             **FAST)
    trial = study.trials[0]
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert trial.value == pytest.approx(trial.user_attrs["val_accuracy"])
    with pytest.raises(ValueError, match="metric must be one of"):
        studies.run_study(prepared, tiny_params(), 1, storage=sqlite_url(tmp_path), metric="f1", **FAST)


# --------------------------------------------------------------------------------------------
# Storage and resume
# --------------------------------------------------------------------------------------------


def test_rerun_continues_the_study_without_redoing_trials(prepared, tmp_path):
    params = tiny_params()
    url = sqlite_url(tmp_path)
    first = studies.run_study(prepared, params, 2, storage=url, **FAST)
    before = [snapshot(t) for t in first.trials]
    assert len(studies.finished_trials(first)) == 2

    resumed = studies.run_study(prepared, params, 3, storage=url, **FAST)
    trials = resumed.trials
    assert len(trials) == 3 and len(studies.finished_trials(resumed)) == 3
    assert [snapshot(t) for t in trials[:2]] == before  # kept as they were, not rerun

    again = studies.run_study(prepared, params, 3, storage=url, **FAST)  # nothing missing: nothing runs
    assert [snapshot(t) for t in again.trials] == [snapshot(t) for t in trials]

    # Resuming gives the study an uninterrupted run gives (trial-seeded sampler, seeded training).
    straight = studies.run_study(prepared, params, 3, storage=sqlite_url(tmp_path, "straight.db"), **FAST)
    assert [(t.params, t.value) for t in straight.trials] == [(t.params, t.value) for t in trials]


def test_values_for_model_puts_a_04_model_in_the_search_space_terms():
    params = tiny_params(hidden_size=32, embed_dim=32, max_len=128, lr=1e-3, dropout=0.3, batch_size=64)
    stacked = space.values_for_model("stacked_lstm", params)
    assert stacked == {"model": "lstm", "num_layers": 2, "hidden_size": 32, "embeddings": "word2vec",
                       "dropout": 0.3, "lr": 1e-3, "max_len": 128, "truncation": params.truncation,
                       "batch_size": 64, "adversarial": 0.0}  # no embed_dim: a word2vec start has the vectors' width
    assert space.values_for_model("gru", tiny_params(embeddings="random"))["embed_dim"] == 32
    with pytest.raises(ValueError, match="not searched"):
        space.values_for_model("rnn", params)
    with pytest.raises(ValueError, match="outside the search space"):
        space.values_for_model("gru", tiny_params(lr=0.5))
    # 04's recorded settings win over the profile's (04 may have run with -p LR …, -p EMBEDDINGS random …)
    ran = {"hidden_size": 16, "dropout": 0.1, "lr": 3e-3, "batch_size": 32, "max_len": 64, "truncation": "tail",
           "embeddings": "random", "embed_dim": 16}
    assert space.values_for_model("stacked_lstm", params, settings=ran) == {
        "model": "lstm", "num_layers": 2, **ran, "adversarial": 0.0}
    assert space.values_for_model("gru", params, settings={"adversarial": 0.25})["adversarial"] == 0.25
    with pytest.raises(ValueError, match="hidden_size=512 lies outside"):
        space.values_for_model("gru", params, settings={"hidden_size": 512})
    with pytest.raises(ValueError, match="virtual adversarial training"):  # a setting the study does not search
        space.values_for_model("gru", params, settings={"adversarial": 0.25, "vat": 0.25})
    for unsearched in ({"entropy": 1.0}, {"average": 1.0}):  # entropy minimisation, weight averaging
        with pytest.raises(ValueError, match="weight averaging, which this study does not search"):
            space.values_for_model("gru", params, settings={"adversarial": 0.25, **unsearched})
    assert space.values_for_model("gru", params, settings={"vat": 0.0, "entropy": 0.0, "average": 0.0}
                                  )["adversarial"] == 0.0


def _recorded(configuration, embeddings="word2vec", val_loss=0.3, **row):
    """A manifest row as 04 records it (``ModelRun.row()``'s ``val_loss`` and ``settings``)."""
    run = experiment.ModelRun("x", None, configuration, {}, None, 0, embeddings)
    return {"val_loss": val_loss, "roc_auc": 0.9, "settings": run.settings(), **row}


def test_04s_language_model_ladder_network_is_a_point_whose_retraining_is_04s_own_training(prepared):
    params = tiny_params(lm_epochs=1, lm_hidden=16)
    vocab = len(prepared.vocab)
    ladder = experiment.configuration_for("attention_lstm", params, vocab, hidden_size=16,
                                          lr=language_model.FINE_TUNE_LR, language_model=True, adversarial=0.25)
    values = space.values_for_model("attention_lstm 16 (language-model start + AT)", params,
                                    settings=_recorded(ladder, "language model")["settings"])
    assert values["model"] == "attention_lstm" and values["language_model"] is True
    assert values["adversarial"] == 0.25 and values["lr"] == language_model.FINE_TUNE_LR
    assert not {"hidden_size", "embeddings", "embed_dim"} & set(values)  # the language model fixes them
    # the configuration 05 retrains is the one 04 trained: the same checkpoint, reused instead of trained again
    assert space.trial_configuration(values, params, vocab, epochs=params.epochs, patience=params.patience) == ladder
    for name, options in (("stacked_lstm", {}), ("gru", {"hidden_size": 8})):  # and so for 04's other networks
        trained = experiment.configuration_for(name, params, vocab, **options)
        point = space.values_for_model(name, params, settings=_recorded(trained)["settings"])
        assert space.trial_configuration(point, params, vocab, epochs=params.epochs,
                                         patience=params.patience) == trained
    with pytest.raises(ValueError, match="does not search"):  # a run whose 02 trained no language model
        space.values_for_model("x", tiny_params(lm_epochs=0), settings={"architecture": "lstm",
                                                                        "embeddings": "language model"})


def test_the_study_starts_from_04s_lowest_validation_loss_that_the_space_expresses(prepared):
    params = tiny_params(lm_epochs=1, lm_hidden=16)
    vocab = len(prepared.vocab)
    build = lambda name, **o: experiment.configuration_for(name, params, vocab, **o)  # noqa: E731
    recorded = {
        "nbsvm": {"val_loss": None, "roc_auc": 0.9},  # linear references and averages: no validation loss
        "rnn": _recorded(build("rnn"), val_loss=0.1),  # not searched
        "lstm, last padded step": _recorded(build("lstm", read_padded_last_step=True),
                                            val_loss=0.05),
        "attention_lstm (4 rating buckets)": _recorded(build("attention_lstm", num_classes=4),
                                                       val_loss=0.01),
        "gru": _recorded(build("gru"), val_loss=0.35),
        "attention_lstm 16 (language-model start + AT)": _recorded(
            build("attention_lstm", hidden_size=16, language_model=True, adversarial=0.25),
            "language model", val_loss=0.2),
    }
    name, values = space.start_point(recorded, params)
    assert name == "attention_lstm 16 (language-model start + AT)" and values["language_model"] is True
    both_ways = "attention_lstm 16 (bidirectional start + AT)"  # the study searches one direction: never the start
    recorded[both_ways] = _recorded(build("attention_lstm", hidden_size=16, language_model=True, adversarial=0.25,
                                          bidirectional=True), "language model", val_loss=0.15)
    assert space.start_point(recorded, params)[0] == name
    with pytest.raises(ValueError, match="both directions"):
        space.values_for_model(both_ways, params, settings=recorded[both_ways]["settings"])
    without_lm = space.start_point(recorded, tiny_params(lm_epochs=0))  # that run's space has no LM start
    assert without_lm[0] == "gru"
    # rows recorded before settings named the architecture: by name (a variant's name is no model: skipped)
    old = {"bilstm_pool": {"val_loss": 0.3, "roc_auc": 0.9, "settings": {"hidden_size": 16}},
           "attention_lstm (4 rating buckets)": {"val_loss": 0.1, "roc_auc": None, "settings": {}}}
    assert space.start_point(old, params) == ("bilstm_pool", space.values_for_model("bilstm_pool", params,
                                                                                  settings={"hidden_size": 16}))
    assert space.start_point({"nbsvm": {"val_loss": None}}, params) is None


def test_the_space_table_says_in_words_what_is_searched_and_when():
    spec = {"model": {"choices": ["attention_lstm"]},
            "language_model": {"choices": [False, True], "when": {"model": ["lstm", "attention_lstm"], "num_layers": 1}},
            "hidden_size": {"choices": [16, 32], "unless": {"language_model": True}},
            "lr": {"low": 3e-4, "high": 1e-2, "log": True}, "dropout": {"low": 0.0, "high": 0.5, "log": False}}
    table = space.space_table(spec)
    assert list(table.index) == list(spec) and list(table.columns) == ["searched", "values", "asked"]
    assert table.loc["model"].tolist() == ["no", "attention_lstm", "always"]
    assert table.loc["language_model"].tolist() == ["yes", "no, yes",
                                                    "only if model = lstm or attention_lstm and num_layers = 1"]
    assert table.loc["hidden_size"].tolist() == ["yes", "16, 32", "unless language_model = yes"]
    assert table.loc["lr", "values"] == "0.0003 to 0.01, log scale" and table.loc["dropout", "values"] == "0 to 0.5"
    assert (table["searched"] == "yes").sum() == len(space.searched_dimensions(spec))


def test_the_study_searches_the_training_of_04s_chosen_network(prepared, tmp_path, monkeypatch):
    params = tiny_params(lm_epochs=1, lm_hidden=16)
    vocab = len(prepared.vocab)
    ladder = experiment.configuration_for("attention_lstm", params, vocab, hidden_size=16,
                                          lr=language_model.FINE_TUNE_LR, language_model=True, adversarial=0.25)
    recorded = {"gru": _recorded(experiment.configuration_for("gru", params, vocab), val_loss=0.35),
                "attention_lstm 16 (language-model start + AT)": _recorded(ladder, "language model", val_loss=0.2)}
    name, start, spec = space.study_plan(params, recorded)
    assert name == "attention_lstm 16 (language-model start + AT)"
    assert space.searched_dimensions(spec) == ["dropout", "lr", "batch_size", "adversarial"]
    assert spec["model"] == {"choices": ["attention_lstm"]} and spec["language_model"] == {"choices": [True]}
    assert set(space.EPSILON_CHOICES) <= set(spec["adversarial"]["choices"])
    assert spec["lr"]["low"] <= language_model.FINE_TUNE_LR <= spec["lr"]["high"]
    assert space.values_for_model(name, params, spec, settings=recorded[name]["settings"]) == start  # a point of it
    # every point of the space is 04's network with other training settings
    trial = optuna.trial.FixedTrial({**start, "lr": 3e-3, "dropout": 0.1, "batch_size": 32, "adversarial": 1.0})
    point = space.trial_configuration(space.search_space(trial, params, spec), params, vocab, epochs=params.epochs,
                                      patience=params.patience)
    assert point == dataclasses.replace(ladder, lr=3e-3, batch_size=32, adversarial=1.0,
                                        model=dataclasses.replace(ladder.model, dropout=0.1))
    # nothing recorded: the whole space, no start; the run directory's manifest is read by default
    monkeypatch.setenv("SENTIMENT_ARTIFACTS", str(tmp_path))
    assert space.study_plan(params) == (None, None, space.search_space_spec(params))
    manifest.record_models(params.profile, [{"model": n, **row} for n, row in recorded.items()])
    assert space.study_plan(params)[0] == name


def test_a_new_study_starts_from_the_given_configurations_once(prepared, tmp_path):
    params = tiny_params()
    url = sqlite_url(tmp_path)
    start = space.values_for_model("attention_lstm", params)
    study = studies.run_study(prepared, params, 2, storage=url, start_from=[start], **FAST)
    first = study.trials[0]
    assert first.params == start and first.user_attrs["start_from"] is True
    assert "start_from" not in study.trials[1].user_attrs  # then the sampler's own proposals
    other = space.values_for_model("gru", params)  # e.g. 04 rerun since: a study with trials ignores it
    resumed = studies.run_study(prepared, params, 3, storage=url, start_from=[start, other], **FAST)
    assert len(resumed.trials) == 3
    assert sum(t.user_attrs.get("start_from", False) for t in resumed.trials) == 1  # not enqueued again


def test_a_study_made_with_other_settings_is_refused(prepared, tmp_path):
    url = sqlite_url(tmp_path)
    studies.run_study(prepared, tiny_params(trial_epochs=1), 1, storage=url, **FAST)
    with pytest.raises(ValueError, match="trial_epochs"):
        studies.run_study(prepared, tiny_params(trial_epochs=2), 2, storage=url, **FAST)
    other_vocab = tiny_prepared(seed=1)
    other_vocab.vocab.itos.append("extra")  # a different vocabulary
    other_vocab.vocab.stoi["extra"] = len(other_vocab.vocab.itos) - 1
    with pytest.raises(ValueError, match="vocab_fingerprint"):
        studies.run_study(other_vocab, tiny_params(trial_epochs=1), 2, storage=url, **FAST)
    other_vectors = tiny_prepared()
    other_vectors.embeddings = other_vectors.embeddings * 2  # 02 rerun with other pre-training, same vocabulary
    with pytest.raises(ValueError, match="vectors_fingerprint"):
        studies.run_study(other_vectors, tiny_params(trial_epochs=1), 2, storage=url, **FAST)
    with pytest.raises(ValueError, match="needs maximize"):
        studies.run_study(prepared, tiny_params(trial_epochs=1), 2, storage=url, metric="val_accuracy", **FAST)
    # Another study name in the same database is fine.
    study = studies.run_study(prepared, tiny_params(trial_epochs=2), 1, storage=url, study_name="other", **FAST)
    assert len(study.trials) == 1


CHILD = """
import pathlib, sys, time
sys.path.insert(0, {tests!r})
from tiny_data import tiny_prepared, tiny_params
from sentiment_lib.tuning import study as studies

from sentiment_lib import experiment
real_fit, calls = experiment.fit, []

def fit_that_hangs_in_the_third_trial(*args, **kwargs):
    calls.append(1)
    if len(calls) == 3:
        pathlib.Path({marker!r}).touch()
        time.sleep(600)
    return real_fit(*args, **kwargs)

experiment.fit = fit_that_hangs_in_the_third_trial
studies.run_study(tiny_prepared(), tiny_params(), 4, storage={url!r}, device="cpu", threads=1,
                 heartbeat_interval=1, grace_period=2)
"""


@pytest.mark.slow  # two worker subprocesses, one killed: ~10 s
@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_a_killed_run_loses_no_finished_trial(prepared, tmp_path):
    url, marker = sqlite_url(tmp_path), tmp_path / "third-trial-started"
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD.format(tests=str(TESTS), marker=str(marker), url=url)))
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    try:
        started = wait_for(lambda: marker.exists() or child.poll() is not None, timeout=180)
        assert started and marker.exists(), f"the child never reached its third trial:\n{child.communicate()[0]}"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    killed = optuna.load_study(study_name="sentiment-smoke", storage=url)
    states = {t.number: t.state for t in killed.trials}
    assert states == {0: TrialState.COMPLETE, 1: TrialState.COMPLETE, 2: TrialState.RUNNING}
    finished_before = [snapshot(t) for t in killed.trials[:2]]
    interrupted_params = killed.trials[2].params

    time.sleep(3.5)  # past the 2 s grace period: the next run sees trial 2 as stale
    resumed = studies.run_study(prepared, tiny_params(), 4, storage=url, heartbeat_interval=1, grace_period=2,
                               **FAST)
    trials = resumed.trials
    assert [snapshot(t) for t in trials[:2]] == finished_before
    assert trials[2].state == TrialState.FAIL  # the killed trial, failed by the heartbeat check
    retry = trials[3]
    assert optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(retry) == 2
    assert retry.params == interrupted_params and retry.state in studies.FINISHED
    assert len(studies.finished_trials(resumed)) == 4
    assert studies.study_summary(resumed)["states"] == {"COMPLETE": 4, "FAIL": 1}


# --------------------------------------------------------------------------------------------
# Reading a study; the final model
# --------------------------------------------------------------------------------------------


def test_summary_and_frames(prepared, tmp_path):
    study = studies.run_study(prepared, tiny_params(trial_epochs=2), 3, storage=sqlite_url(tmp_path), **FAST)
    summary = studies.study_summary(study)
    assert summary["n_finished"] == 3 and summary["metric"] == "val_loss" and summary["direction"] == "minimize"
    best = study.best_trial
    assert summary["best_trial"] == best.number and summary["best_params"] == best.params
    assert summary["best_val_accuracy"] == best.user_attrs["val_accuracy"]
    json.dumps(summary)  # plain data, for metrics.json

    frame = studies.trials_frame(study)
    assert list(frame.index) == [0, 1, 2]
    assert {"state", "value", "model", "lr", "max_len", "val_accuracy", "n_params"} <= set(frame.columns)
    assert list(frame["epochs_reported"]) == [len(t.intermediate_values) for t in study.trials]
    shown = studies.trials_shown(frame)
    assert list(shown.columns[:3]) == ["state", "value", "val_accuracy"]
    assert not {"val_loss", "model_name", "seconds", "diverged", "epochs_reported"} & set(shown.columns)
    varying = [c for c in frame.columns if frame[c].nunique(dropna=False) > 1]
    assert set(shown.columns) - {"state", "value", "val_accuracy"} == set(varying) - {
        "state", "value", "val_accuracy", "val_loss", "model_name", "seconds", "diverged", "epochs_reported"}
    assert all(str(shown[c].dtype) == "Int64" for c in ("best_epoch", "epochs_run", "n_params") if c in shown.columns)
    one_model = studies.trials_shown(frame.assign(model="attention_lstm"))
    assert "model" not in one_model.columns  # one value in every trial: the search-space table shows it

    loaded = storage.load_study("smoke", storage=sqlite_url(tmp_path))
    assert len(loaded.trials) == 3
    with pytest.raises(KeyError, match="No study"):
        storage.load_study("smoke", storage=sqlite_url(tmp_path), study_name="absent")


def test_retrain_best_and_save_the_final_model(prepared):
    params = tiny_params(epochs=2)
    best = {"model": "bilstm_pool", "num_layers": 1, "hidden_size": 8, "embed_dim": 16, "dropout": 0.1,
            "lr": 5e-3, "max_len": 32, "truncation": "tail", "batch_size": 32}
    trial = finished_trial(best, 0.5)
    [run] = final_model.retrain_trials(prepared, params, [trial], device="cpu", progress=False, threads=1)
    assert run.model_config.name == "bilstm_pool" and run.model_config.hidden_size == 8
    assert run.fit.epochs_run <= 2 and 1 <= run.fit.best_epoch <= run.fit.epochs_run
    assert run.preprocessing == {"max_len": 32, "truncation": "tail", "remove_stopwords": False,
                                 "precision": "float32"}
    assert run.test is None and run.trial is trial and run.name == "trial 0 bilstm_pool"
    path = final_model.save_final_model("smoke", [run], prepared.vocab, {"val_loss": run.fit.best_val_loss})
    assert path == config.final_model_path("smoke")
    bundle = load_bundle(path)
    assert bundle.preprocessing["truncation"] == "tail"
    assert bundle.predict(["good great film", "bad dull film"]).shape == (2,)


def test_the_best_configuration_is_retrained_from_other_seeds(prepared):
    params = tiny_params(epochs=1, seed=7)
    best = {"model": "lstm", "num_layers": 1, "hidden_size": 8, "embed_dim": 16, "dropout": 0.1, "lr": 5e-3,
            "max_len": 32, "truncation": "tail", "batch_size": 32}
    trial = finished_trial(best, 0.5, number=3)
    options = dict(device="cpu", progress=False, threads=1, runtime=Runtime(checkpoints=False))
    [first] = final_model.retrain_trials(prepared, params, [trial], **options)
    others = final_model.retrain_with_seeds(prepared, params, trial, 3, **options)
    assert [r.name for r in others] == ["trial 3 lstm (seed 8)", "trial 3 lstm (seed 9)"]
    assert all(r.configuration == first.configuration and r.trial is trial for r in others)
    # each seed's retraining is that seed's own training: what retrain_trials gives with SEED=8
    [eight] = final_model.retrain_trials(prepared, params.replace(seed=8), [trial], **options)
    weights = lambda run: torch.cat([t.flatten() for t in run.model.state_dict().values()])  # noqa: E731
    assert torch.equal(weights(eight), weights(others[0]))
    assert not torch.equal(weights(first), weights(others[0]))  # and not the SEED one again
    assert final_model.retrain_with_seeds(prepared, params, trial, 1, **options) == []
    assert len(final_model.retrain_with_seeds(prepared, tiny_params(epochs=1, best_seeds=2), trial,
                                              **options)) == 1  # default: the profile's BEST_SEEDS
    with pytest.raises(ValueError, match="BEST_SEEDS"):
        final_model.retrain_with_seeds(prepared, params, trial, 0, **options)


def finished_trial(params: dict, value: float, number: int = 0) -> optuna.trial.FrozenTrial:
    """A complete trial with these parameters (each a one-choice distribution) and validation loss
    ``value``, as a study would hold it."""
    dist = {k: optuna.distributions.CategoricalDistribution([v]) for k, v in params.items()}
    trial = optuna.trial.create_trial(params=params, distributions=dist, value=value, user_attrs={"val_loss": value})
    trial.number = number
    return trial


def study_of(values: list[tuple[dict, float | None]], direction: str = "minimize") -> optuna.Study:
    """An in-memory study holding the given (params, value) trials; value None: a pruned trial."""
    study = optuna.create_study(direction=direction)
    dist = {"model": optuna.distributions.CategoricalDistribution(["lstm", "gru", "bilstm"]),
            "lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)}
    for p, value in values:
        state = TrialState.PRUNED if value is None else TrialState.COMPLETE
        study.add_trial(optuna.trial.create_trial(params=p, distributions=dist, value=value, state=state))
    return study


def test_top_trials_are_the_best_distinct_complete_configurations():
    a, b, c = ({"model": "lstm", "lr": 1e-3}, {"model": "gru", "lr": 1e-3}, {"model": "bilstm", "lr": 3e-3})
    study = study_of([(a, 0.30), (b, 0.25), (a, 0.28), (c, None), (c, 0.40)])
    assert [t.number for t in final_model.top_trials(study, 3)] == [1, 2, 4]  # a's better run counts, once
    tied = study_of([(a, 0.30), (b, 0.25), (c, float("inf")), (a, 0.25)])
    assert [t.number for t in final_model.top_trials(tied, 3)] == [1, 3]  # ties: the earlier trial first; inf is no result
    assert [t.number for t in final_model.top_trials(study, 1)] == [study.best_trial.number]
    assert len(final_model.top_trials(study, 10)) == 3  # fewer configurations than asked: all of them
    maximised = study_of([(a, 0.80), (b, 0.90), (c, 0.85)], direction="maximize")
    assert [t.number for t in final_model.top_trials(maximised, 2)] == [1, 2]
    with pytest.raises(ValueError, match="no complete trial.*N_TRIALS"):
        final_model.top_trials(study_of([(a, None)]), 2)
    with pytest.raises(ValueError, match="ENSEMBLE"):
        final_model.top_trials(study, 0)


def test_an_ensemble_final_model_averages_its_retrained_members(prepared):
    from sentiment_lib.bundle import Ensemble

    params = tiny_params(epochs=1)
    base = {"num_layers": 1, "hidden_size": 8, "embed_dim": 16, "dropout": 0.1, "lr": 5e-3, "batch_size": 32}
    configs = [{**base, "model": "bag_of_embeddings", "max_len": 32, "truncation": "tail"},
               {**base, "model": "lstm", "max_len": 64, "truncation": "head"}]
    trials = [finished_trial(p, v, number) for number, (p, v) in enumerate(zip(configs, (0.4, 0.5)))]
    members = final_model.retrain_trials(prepared, params, trials, device="cpu", progress=False, threads=1)
    assert [m.name for m in members] == ["trial 0 bag_of_embeddings", "trial 1 lstm"]
    [alone] = final_model.retrain_trials(prepared, params, trials[:1], device="cpu", progress=False, threads=1,
                                         runtime=Runtime(checkpoints=False))
    for name, tensor in alone.model.state_dict().items():  # the first member is what ENSEMBLE=1 would give
        assert torch.equal(tensor, members[0].model.state_dict()[name]), name

    frame = final_model.members_frame(members)
    assert list(frame.index) == [m.name for m in members]
    assert list(frame["trial_val_loss"]) == [0.4, 0.5] and list(frame["max_len"]) == [32, 64]
    assert list(frame.columns[:5]) == ["val_loss", "val_accuracy", "best_epoch", "epochs_run", "trial_val_loss"]
    assert list(frame.columns[5:8]) == ["model", "num_layers", "hidden_size"]  # then search-space order
    assert list(frame["val_loss"]) == [m.fit.best_val_loss for m in members]
    shown = final_model.members_shown(members)
    assert list(shown.columns[5:]) == ["model", "max_len", "truncation"]  # what differs between the two
    assert list(shown.columns[:5]) == list(frame.columns[:5])  # "num_layers" and the rest: the same in both, left out

    path = final_model.save_final_model("smoke", members, prepared.vocab)
    loaded = load_bundle(path)
    assert isinstance(loaded, Ensemble) and loaded.names == frame.index.tolist()
    singles = [load_bundle(final_model.save_final_model("smoke", [m], prepared.vocab)) for m in members]
    assert [b.name for b in singles] == [m.name for m in members]  # a single final model keeps its trial's name
    texts = ["good great film", "bad dull film"]
    separate = [b.predict(texts) for b in singles]
    assert abs(separate[0] - separate[1]).max() > 1e-4
    assert loaded.predict(texts) == pytest.approx((separate[0] + separate[1]) / 2, rel=1e-6)

    # forward selection on validation, from each member's own saved-bundle probabilities
    val = prepared.splits["val"]
    alone_val = [b.predict_split(val) for b in singles]
    kept, steps, on_val = final_model.select_members(members, prepared)
    best = min(range(2), key=lambda i: log_loss(val.labels, alone_val[i]))
    assert kept[0] is members[best] and steps["candidate"].iloc[0] == members[best].name
    assert steps["val_loss"].iloc[0] == pytest.approx(log_loss(val.labels, alone_val[best]))
    assert steps["val_loss"].iloc[1] == pytest.approx(log_loss(val.labels, (alone_val[0] + alone_val[1]) / 2))
    assert [m.name for m in kept] == list(steps["candidate"][steps["kept"]])
    assert len(kept) == (2 if steps["val_loss"].iloc[1] < steps["val_loss"].iloc[0] else 1)
    saved = final_model.save_final_model("smoke", kept, prepared.vocab)  # its validation scores: what select gave
    pd.testing.assert_frame_equal(on_val, scoring.score_members(saved, prepared, subset="val")[2])
    with pytest.raises(ValueError, match="retrain_trials"):
        final_model.select_members([], prepared)

    test = {"accuracy": 0.75, "precision": 0.7, "recall": 0.8, "f1": 0.74, "roc_auc": 0.8}
    row = final_model.final_model_row(members, test)
    assert row["architecture"] == "bag_of_embeddings + lstm" and row["trials"] == [0, 1]
    assert row["parameters"] == sum(sum(p.numel() for p in m.model.parameters()) for m in members)
    assert row["epochs_run"] == [1, 1] and row["accuracy"] == 0.75 and row["candidates"] == [0, 1]
    json.dumps(row)
    one = final_model.final_model_row(members[1:], test, candidates=members)  # one kept of two retrained
    assert one["trials"] == [1] and one["candidates"] == [0, 1] and one["architecture"] == "lstm"
    assert one["train_seconds"] == pytest.approx(members[1].fit.seconds, abs=0.1)
    assert one["candidates_train_seconds"] == pytest.approx(sum(m.fit.seconds for m in members), abs=0.1)
    assert one["parameters"] == sum(p.numel() for p in members[1].model.parameters())
    with pytest.raises(ValueError, match="retrain_trials"):
        final_model.save_final_model("smoke", [], prepared.vocab)
    with pytest.raises(ValueError, match="repeat one.*top_trials"):
        final_model.retrain_trials(prepared, params, [trials[0], trials[0]], device="cpu", progress=False, threads=1)


def test_a_diverging_member_names_its_trial(prepared, monkeypatch):
    def diverge(*args, **kwargs):
        raise FloatingPointError("Validation loss is nan at epoch 1: training diverged.")

    monkeypatch.setattr(experiment, "train", diverge)
    trial = finished_trial({"model": "lstm", "lr": 0.5}, 0.3, number=7)
    with pytest.raises(FloatingPointError, match="trial 7 .*diverged.*smaller ENSEMBLE"):
        final_model.retrain_trials(prepared, tiny_params(), [trial], device="cpu")


# --------------------------------------------------------------------------------------------
# Worker command
# --------------------------------------------------------------------------------------------


def test_worker_command_runs_trials_of_the_stored_study(tmp_path, capsys):
    save_tiny_prepared("smoke", embed_dim=24)  # 02's vectors are 24 wide, not the profile's 32: the worker uses 02's
    url = sqlite_url(tmp_path)
    common = ["--profile", "smoke", "--storage", url, "--device", "cpu", "--threads", "1"]
    assert main(["tune", *common, "--trials", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["n_finished"] == 2
    assert main(["tune", *common, "--worker-trials", "1", "--study", "sentiment-smoke"]) == 0
    assert json.loads(capsys.readouterr().out)["n_finished"] == 3


def test_worker_command_without_prepared_data_names_the_fix(capsys):
    assert main(["tune", "--profile", "smoke", "--trials", "1"]) == 2
    assert "make run PROFILE=smoke" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# One training path
# --------------------------------------------------------------------------------------------


def test_a_trial_and_a_retraining_train_what_notebook_04_trains(prepared, tmp_path):
    """04's model as a study's starting point gives, as a trial, the validation loss that 04's job gives for
    TRIAL_EPOCHS without early stopping, and retrained, the very weights 04's job gives: one training path."""
    torch.set_num_threads(1)
    params = tiny_params(trial_epochs=2, epochs=2, hidden_size=16, embed_dim=32)
    start = space.values_for_model("attention_lstm", params)
    found = studies.run_study(prepared, params, 1, storage=sqlite_url(tmp_path), start_from=[start], **FAST)
    [trial] = found.trials
    no_checkpoints = Runtime(checkpoints=False)
    as_trial = experiment.train(experiment.job("attention_lstm", prepared, params, epochs=2, patience=None),
                                device="cpu", runtime=no_checkpoints)
    assert trial.user_attrs["val_loss"] == as_trial.fit.best_val_loss
    assert trial.user_attrs["val_loss_by_epoch"] == list(as_trial.fit.history["val_loss"])
    assert trial.user_attrs["n_params"] == as_trial.parameters
    [retrained] = final_model.retrain_trials(prepared, params, [trial], device="cpu", progress=False, threads=1)
    in_04 = experiment.train(experiment.job("attention_lstm", prepared, params), device="cpu",
                             runtime=no_checkpoints)
    for name, tensor in in_04.model.state_dict().items():
        assert torch.equal(tensor, retrained.model.state_dict()[name]), name
    assert retrained.preprocessing == in_04.preprocessing and retrained.test is None


def test_04s_ladder_networks_come_back_from_their_checkpoints_as_candidates(prepared):
    from sentiment_lib.batching import EncodedSplit

    params = tiny_params(lm_hidden=16, ladder_epochs=1, vat=0.25, processes=1)
    encoded = [ids for split in prepared.splits.values() for ids in split.ids] * 20
    state, _ = language_model.pretrain(encoded, len(prepared.vocab), params.embed_dim, 16, epochs=1, seed=0)
    with_lm = dataclasses.replace(prepared, language_model=state, params={**prepared.params, "lm_fingerprint": "tiny"},
                                  unlabelled=EncodedSplit(list(prepared.splits["train"].ids[:32]), np.full(32, -1)))
    trained_in_04 = experiment.by_name(experiment.train_many(list(plans.ladder_jobs(with_lm, params).values()),
                                                             device="cpu"))
    trained_in_04 = [trained_in_04[label] for label in plans.ladder_labels(with_lm, params).values()]
    back = final_model.ladder_candidates(with_lm, params, "cpu")
    assert [r.name for r in back] == [r.name for r in trained_in_04] and len(back) == 6  # with the unlabelled rungs
    assert [r.name for r in back] == list(plans.ladder_labels(with_lm, params).values())  # in the ladder's order
    assert all(r.fit.resumed == "finished" and r.test is None for r in back)  # read back, not scored on test
    assert [r.fit.best_val_loss for r in back] == [r.fit.best_val_loss for r in trained_in_04]
    test = {"accuracy": 0.75, "precision": 0.7, "recall": 0.8, "f1": 0.74, "roc_auc": 0.8}
    row = final_model.final_model_row(back[:1], test, candidates=back)
    assert row["trials"] == [] and row["members"] == [back[0].name] and row["candidates"] == [r.name for r in back]
    assert final_model.ladder_candidates(prepared, params, "cpu") == []  # no language model: no ladder
