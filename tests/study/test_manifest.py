"""metrics.json as an interface: identifier keys, a label apart, every accuracy with its interval, choices that
name recorded models, and the label view the notebooks read."""
import json

import pytest

from sentiment_lib import manifest, rundir
from sentiment_lib.uncertainty import accuracy_interval


def test_identifiers_are_lower_case_words_and_digits():
    assert manifest.identifier("attention_lstm 64 (language-model start + AT)") == \
        "attention_lstm_64_language_model_start_plus_at"
    assert manifest.identifier("lstm, last padded step") == "lstm_last_padded_step"
    assert manifest.identifier("lstm") == "lstm"
    with pytest.raises(ValueError, match="name it"):
        manifest.identifier(" (—) ")


def test_entries_carry_their_label_and_interval_and_refuse_a_shared_key():
    rows = [{"model": "nbsvm (256 tokens)", "accuracy": 0.9, "val_accuracy": float("nan")},
            {"model": "final model (05)", "id": "final", "accuracy": 0.91}]
    entries = manifest.model_entries(rows, n_test=1000)
    assert list(entries) == ["nbsvm_256_tokens", "final"]
    assert entries["nbsvm_256_tokens"]["label"] == "nbsvm (256 tokens)"
    assert entries["nbsvm_256_tokens"]["val_accuracy"] is None  # NaN is no JSON
    low, high = accuracy_interval(900, 1000)
    assert (entries["nbsvm_256_tokens"]["accuracy_low"], entries["nbsvm_256_tokens"]["accuracy_high"]) == (low, high)
    assert low < 0.9 < high
    with pytest.raises(ValueError, match="share the identifier"):
        manifest.model_entries([{"model": "a b"}, {"model": "a-b"}], None)


def test_a_run_s_manifest_round_trips_through_the_label_view_and_passes_the_check():
    rundir.record("smoke", "data", {"subset_sizes": {"train": 10, "val": 5, "test": 200}})
    manifest.record_models("smoke", [{"model": "attention_lstm", "accuracy": 0.85, "val_loss": 0.3},
                                     {"model": "attention_lstm + nbsvm (0.5 / 0.5)", "accuracy": 0.87},
                                     {"model": "final model (05): networks + nbsvm", "id": "final", "accuracy": 0.88}])
    manifest.record_choices("smoke", "04", {"best_network": "attention_lstm",
                                            "blend": "attention_lstm + nbsvm (0.5 / 0.5)",
                                            "criterion": "validation loss"})
    manifest.record_choices("smoke", "05", {"final": "final model (05): networks + nbsvm", "study_confirms_04": True})
    written = rundir.read_manifest("smoke")
    json.dumps(written)  # plain JSON
    assert written["choices"]["04"] == {"best_network": "attention_lstm", "blend": "attention_lstm_plus_nbsvm_0_5_0_5",
                                        "criterion": "validation loss"}
    assert written["choices"]["05"] == {"final": "final", "study_confirms_04": True}
    assert manifest.check(written) == []
    assert manifest.recorded_choices("smoke")["04"]["blend"] == "attention_lstm + nbsvm (0.5 / 0.5)"
    assert manifest.recorded_models("smoke")["attention_lstm"]["val_loss"] == 0.3
    assert manifest.label_of(written, "final") == "final model (05): networks + nbsvm"


def test_the_check_names_what_breaks_the_interface():
    broken = {"models": {"Best Model": {"accuracy": 0.9}, "lstm": {"label": "lstm", "accuracy": 0.8,
                                                                    "accuracy_low": 0.81, "accuracy_high": 0.9}},
              "choices": {"05": {"final": "gone"}}}
    problems = "\n".join(manifest.check(broken))
    assert "'Best Model' is not an identifier" in problems and "lacks ['label', 'accuracy_low'" in problems
    assert "outside its interval" in problems and "'gone' is not a key of models" in problems
    assert "no 'final' entry" in problems


def test_readers_take_the_recorded_interval_and_compute_one_only_for_older_runs():
    recorded = {"accuracy": 0.9, "accuracy_low": 0.1, "accuracy_high": 0.95}
    assert manifest.interval(recorded, 1000) == (0.1, 0.95)  # what the run wrote, not recomputed
    assert manifest.interval({"accuracy": 0.9}, 1000) == accuracy_interval(900, 1000)
    assert manifest.interval({"accuracy": 0.9}, None) is None and manifest.interval({}, 1000) is None


def test_a_notebook_s_rerun_replaces_the_models_it_recorded_before_and_no_other():
    rundir.record("smoke", "data", {"subset_sizes": {"test": 100}})
    manifest.record_models("smoke", [{"model": "baseline", "accuracy": 0.8}], notebook="03")
    manifest.record_models("smoke", [{"model": "lstm", "accuracy": 0.81},
                                     {"model": "lstm + nbsvm (0.45 / 0.55)", "accuracy": 0.85}], notebook="04")
    # 04 again, after a change that gives its average another weight: the old average must not linger
    manifest.record_models("smoke", [{"model": "lstm", "accuracy": 0.81},
                                     {"model": "lstm + nbsvm (0.50 / 0.50)", "accuracy": 0.86}], notebook="04")
    models = rundir.read_manifest("smoke")["models"]
    assert sorted(models) == ["baseline", "lstm", "lstm_plus_nbsvm_0_50_0_50"]
    assert models["baseline"]["notebook"] == "03" and models["lstm"]["notebook"] == "04"
    assert manifest.check(rundir.read_manifest("smoke")) == []
