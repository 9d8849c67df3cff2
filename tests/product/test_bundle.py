"""Model bundles: safe loading, identical predictions after a round trip, clear errors."""
import numpy as np
import pytest
import torch

from sentiment_lib.bundle import Bundle, Ensemble, load_bundle, save_bundle, save_ensemble
from sentiment_lib.models import ModelConfig, build_model
from sentiment_lib.text import Vocab, tokenize

TEXTS = ["A wonderful, moving film. I loved it!", "Dull plot and terrible acting; a waste of time.",
         "Not bad at all <br /> the music is great", "boring boring boring"]
PREPROCESSING = {"max_len": 6, "truncation": "head+tail", "remove_stopwords": False}


def make_bundle(name="attention_lstm"):
    vocab = Vocab.build(tokenize(t) for t in TEXTS[:3])  # "boring" stays out of vocabulary
    config = ModelConfig(name, len(vocab), embed_dim=8, hidden_size=6)
    torch.manual_seed(0)
    return Bundle(build_model(config).eval(), config, vocab, dict(PREPROCESSING))


def save(bundle, path, metrics=None):
    return save_bundle(path, bundle.model, bundle.model_config, bundle.vocab, bundle.preprocessing,
                       metrics if metrics is not None else {"accuracy": np.float64(0.75), "curve": np.arange(3)})


def test_round_trip_gives_identical_predictions_and_loads_with_weights_only(tmp_path):
    bundle = make_bundle()
    path = save(bundle, tmp_path / "models" / "best.pt")
    raw = torch.load(path, weights_only=True)
    assert raw["vocab"] == bundle.vocab.itos and raw["metrics"] == {"accuracy": 0.75, "curve": [0, 1, 2]}
    loaded = load_bundle(path)
    assert not loaded.model.training
    assert loaded.model_config == bundle.model_config and loaded.preprocessing == PREPROCESSING
    expected = bundle.predict(TEXTS)
    assert expected.shape == (4,) and ((expected > 0) & (expected < 1)).all()
    np.testing.assert_array_equal(loaded.predict(TEXTS), expected)
    assert loaded.name == "attention_lstm" and loaded.named_members == [("attention_lstm", loaded)]  # no name saved
    named = load_bundle(save_bundle(tmp_path / "named.pt", bundle.model, bundle.model_config, bundle.vocab,
                                    bundle.preprocessing, name="trial 6 attention_lstm"))
    assert named.name == "trial 6 attention_lstm" and named.named_members[0][0] == "trial 6 attention_lstm"


def test_predictions_follow_input_order_whatever_the_batching(tmp_path):
    bundle = make_bundle("bilstm_pool")
    forward = bundle.predict(TEXTS, batch_size=3)
    np.testing.assert_allclose(bundle.predict(TEXTS[::-1], batch_size=2), forward[::-1], rtol=1e-6)


def test_saving_leaves_no_temporary_files_and_a_failed_save_leaves_nothing(tmp_path):
    bundle = make_bundle()
    save(bundle, tmp_path / "a.pt")
    with pytest.raises(TypeError, match="plain numbers"):
        save(bundle, tmp_path / "b.pt", metrics={"model": object()})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt"]


def test_missing_bundle_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"No model bundle at .*make run"):
        load_bundle(tmp_path / "missing.pt")


def test_a_file_that_is_not_a_bundle_names_the_fix(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("not a model")
    with pytest.raises(ValueError, match=r"not a model bundle saved by save_bundle.*rerun the notebook"):
        load_bundle(text)
    listed = tmp_path / "list.pt"
    torch.save([1, 2, 3], listed)
    with pytest.raises(ValueError, match="not a model bundle"):
        load_bundle(listed)
    partial = tmp_path / "partial.pt"
    torch.save({"format_version": 1, "model_config": {}}, partial)
    with pytest.raises(ValueError, match=r"lacks \['state_dict'"):
        load_bundle(partial)


def test_weights_that_do_not_fit_the_configuration_name_the_fix(tmp_path):
    path = save(make_bundle(), tmp_path / "a.pt")
    payload = torch.load(path, weights_only=True)
    payload["model_config"]["hidden_size"] = 7  # the weights are for hidden size 6
    torch.save(payload, path)
    with pytest.raises(ValueError, match="weights do not fit its model configuration.*rerunning the notebook"):
        load_bundle(path)


@pytest.mark.parametrize("texts, message", [
    ([], "non-empty list"),
    (["great film", "   ", ""], r"indices \[1, 2\] are empty"),
    (["great film", "!!! <br />"], r"indices \[1\] contain no words"),
])
def test_predict_rejects_empty_input_naming_the_indices(texts, message):
    with pytest.raises(ValueError, match=message):
        make_bundle().predict(texts)


def test_attention_returns_the_truncated_tokens_and_weights_summing_to_one():
    tokens, weights = make_bundle().attention(TEXTS[1] + " boring")
    words = tokenize(TEXTS[1] + " boring")
    assert tokens == words[:1] + words[-5:]  # head+tail: a quarter of 6 from the head, the rest from the tail
    assert tokens[-1] == "boring"  # out-of-vocabulary words are shown as written
    assert weights.shape == (6,) and weights.sum() == pytest.approx(1.0, abs=1e-6)


def test_attention_on_a_model_without_it_names_the_fix():
    with pytest.raises(ValueError, match="attention_lstm"):
        make_bundle("lstm").attention(TEXTS[0])


def test_save_requires_the_preprocessing_settings(tmp_path):
    bundle = make_bundle()
    with pytest.raises(ValueError, match="truncation"):
        save_bundle(tmp_path / "x.pt", bundle.model, bundle.model_config, bundle.vocab, {"max_len": 6},
                    {})


def make_members():
    """Two models over one vocabulary that read different parts of a review."""
    first, second = make_bundle("attention_lstm"), make_bundle("bilstm_pool")
    second.vocab = first.vocab
    second.preprocessing = {"max_len": 4, "truncation": "head", "remove_stopwords": False}
    return [("trial 3 attention_lstm", first), ("trial 0 bilstm_pool", second)]


def save_members(path, members, metrics=None):
    return save_ensemble(path, [(n, b.model, b.model_config, b.preprocessing) for n, b in members],
                         members[0][1].vocab, metrics)


def test_an_ensemble_predicts_the_mean_of_its_members_each_with_its_own_truncation(tmp_path):
    members = make_members()
    path = save_members(tmp_path / "final.pt", members, {"accuracy": 0.9})
    loaded = load_bundle(path)
    assert isinstance(loaded, Ensemble) and loaded.names == ["trial 3 attention_lstm", "trial 0 bilstm_pool"]
    assert loaded.metrics == {"accuracy": 0.9} and loaded.vocab.itos == members[0][1].vocab.itos
    singles = [b.predict(TEXTS) for _, b in members]
    assert not np.allclose(singles[0], singles[1])  # the average is of two different opinions
    np.testing.assert_allclose(loaded.predict(TEXTS), (singles[0] + singles[1]) / 2, rtol=1e-6)
    assert [m.preprocessing["max_len"] for m in loaded.members] == [6, 4]
    assert all(not m.model.training for m in loaded.members)
    with pytest.raises(ValueError, match="ensemble.*attention_lstm"):
        loaded.attention(TEXTS[0])
    with pytest.raises(ValueError, match=r"indices \[1\] are empty"):
        loaded.predict(["good", " "])


def test_an_ensemble_needs_two_members_of_one_tokenisation_with_distinct_names(tmp_path):
    members = make_members()
    with pytest.raises(ValueError, match="at least two models.*save_bundle"):
        save_members(tmp_path / "a.pt", members[:1])
    with pytest.raises(ValueError, match="names must differ"):
        save_members(tmp_path / "a.pt", [members[0], ("trial 3 attention_lstm", members[1][1])])
    four = ModelConfig("lstm", len(members[0][1].vocab), embed_dim=8, hidden_size=6, num_classes=4)
    with pytest.raises(ValueError, match="different numbers of classes"):
        save_ensemble(tmp_path / "a.pt", [("a", members[0][1].model, members[0][1].model_config, PREPROCESSING),
                                          ("b", build_model(four), four, PREPROCESSING)], members[0][1].vocab)
    members[1][1].preprocessing = {**members[1][1].preprocessing, "remove_stopwords": True}
    with pytest.raises(ValueError, match="REMOVE_STOPWORDS"):
        save_members(tmp_path / "a.pt", members)
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_a_damaged_ensemble_names_the_fix(tmp_path):
    path = save_members(tmp_path / "final.pt", make_members())
    payload = torch.load(path, weights_only=True)
    del payload["members"][1]["state_dict"]
    torch.save(payload, path)
    with pytest.raises(ValueError, match=r"member 1 lacks \['state_dict'\]"):
        load_bundle(path)
    payload["members"] = payload["members"][:1]
    torch.save(payload, path)
    with pytest.raises(ValueError, match="at least two models"):
        load_bundle(path)


def test_a_multiclass_ensemble_averages_class_probabilities(tmp_path):
    vocab = make_bundle().vocab
    configs = [ModelConfig(name, len(vocab), embed_dim=8, hidden_size=6, num_classes=4)
               for name in ("lstm", "bag_of_embeddings")]
    torch.manual_seed(0)
    members = [(c.name, build_model(c).eval(), c, dict(PREPROCESSING)) for c in configs]
    loaded = load_bundle(save_ensemble(tmp_path / "e.pt", members, vocab))
    prob = loaded.predict(TEXTS)
    assert prob.shape == (4, 4) and np.allclose(prob.sum(axis=1), 1.0, atol=1e-5)
    singles = [Bundle(m, c, vocab, dict(PREPROCESSING)).predict(TEXTS) for _, m, c, _ in members]
    np.testing.assert_allclose(prob, (singles[0] + singles[1]) / 2, rtol=1e-5)


def test_an_edited_ensemble_with_clashing_members_is_refused_on_load(tmp_path):
    path = save_members(tmp_path / "final.pt", make_members())
    payload = torch.load(path, weights_only=True)
    payload["members"][1]["name"] = payload["members"][0]["name"]
    torch.save(payload, path)
    with pytest.raises(ValueError, match="member names repeat"):
        load_bundle(path)
    payload["members"][1]["name"] = "other"
    payload["members"][1]["preprocessing"]["remove_stopwords"] = True
    torch.save(payload, path)
    with pytest.raises(ValueError, match="with and without stopword removal"):
        load_bundle(path)


# --------------------------------------------------------------------------------------------
# A linear partner (notebook 05's final model: the networks averaged with a token-level NBSVM)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nbsvm():
    from sentiment_lib import linear

    from tiny_data import tiny_prepared

    prepared = tiny_prepared(n_train=200, n_val=60, n_test=60)
    return prepared, linear.linear_reference(prepared, "nbsvm", 12, "head+tail", seed=0)


def test_an_nbsvm_export_scores_like_the_fitted_reference(nbsvm):
    from sentiment_lib import linear
    from sentiment_lib.partner import LinearPartner

    prepared, reference = nbsvm
    export = reference.export
    assert export["max_len"] == 12 and len(export["ngrams"]) == len(export["weights"]) > 10
    assert any(" " in g for g in export["ngrams"])  # bigrams too
    partner = LinearPartner(export["name"], export["ngrams"], export["weights"], export["intercept"],
                            export["max_len"], export["truncation"], weight_on_network=0.5)
    got = partner.probabilities(prepared.splits["test"], prepared.vocab.itos)
    np.testing.assert_allclose(got, reference.test_prob, atol=1e-5)  # the plain-data copy is the same model
    assert linear.linear_reference(prepared, "nbsvm", None).export is None  # whole reviews: needs raw text
    assert linear.linear_reference(prepared, "tfidf", 12).export is None


def test_an_nbsvm_on_every_token_exports_an_uncut_partner_that_scores_like_it(nbsvm, tmp_path):
    from sentiment_lib import linear
    from sentiment_lib.batching import EncodedSplit

    prepared, _ = nbsvm
    reference = linear.linear_reference(prepared, "nbsvm", linear.ALL_TOKENS, "head+tail", seed=0)
    assert reference.export["max_len"] is None  # no cut
    config = ModelConfig("lstm", len(prepared.vocab), embed_dim=8, hidden_size=6)
    torch.manual_seed(0)
    model = build_model(config).eval()
    network = Bundle(model, config, prepared.vocab, dict(PREPROCESSING))
    loaded = load_bundle(save_bundle(tmp_path / "uncut.pt", model, config, prepared.vocab, PREPROCESSING,
                                     partner=reference.export, partner_weight=0.4))
    assert loaded.partner.max_len is None
    test = prepared.splits["test"]
    assert max(len(ids) for ids in test.ids) > PREPROCESSING["max_len"]  # the partner reads more than the network
    np.testing.assert_allclose(loaded.partner.probabilities(test, prepared.vocab.itos), reference.test_prob, atol=1e-5)
    np.testing.assert_allclose(loaded.predict_split(test), 0.4 * network.predict_split(test) + 0.6 * reference.test_prob,
                               atol=1e-5)
    texts = prepared.texts("test")[:5].tolist()  # from raw text, every token reaches the partner
    encoded = EncodedSplit([prepared.vocab.encode(t.split()) for t in texts], np.zeros(5, dtype=np.int64))
    np.testing.assert_allclose(loaded.predict(texts), loaded.predict_split(encoded), atol=1e-6)


@pytest.mark.parametrize("bad", [0, "all", True, 2.5])
def test_a_partner_with_a_bad_reading_is_refused_naming_the_fix(nbsvm, tmp_path, bad):
    prepared, reference = nbsvm
    config = ModelConfig("lstm", len(prepared.vocab), embed_dim=8, hidden_size=6)
    with pytest.raises(ValueError, match="not a valid reading .*None for every token.*export unchanged"):
        save_bundle(tmp_path / "a.pt", build_model(config).eval(), config, prepared.vocab, PREPROCESSING,
                    partner={**reference.export, "max_len": bad}, partner_weight=0.5)
    assert not (tmp_path / "a.pt").exists()


def test_a_bundle_with_a_linear_partner_predicts_the_average_and_loads_with_weights_only(nbsvm, tmp_path):
    from sentiment_lib.batching import EncodedSplit

    prepared, reference = nbsvm
    config = ModelConfig("attention_lstm", len(prepared.vocab), embed_dim=8, hidden_size=6)
    torch.manual_seed(0)
    network = Bundle(build_model(config).eval(), config, prepared.vocab, dict(PREPROCESSING))
    path = save_bundle(tmp_path / "final.pt", network.model, config, prepared.vocab, PREPROCESSING,
                       partner=reference.export, partner_weight=0.3)
    raw = torch.load(path, weights_only=True)
    assert raw["format_version"] == 2 and raw["partner"]["weight_on_network"] == 0.3
    loaded = load_bundle(path)
    test = prepared.splits["test"]
    expected = 0.3 * network.predict_split(test) + 0.7 * reference.test_prob
    np.testing.assert_allclose(loaded.predict_split(test), expected, atol=1e-5)
    texts = prepared.texts("test")[:5].tolist()
    encoded = EncodedSplit([prepared.vocab.encode(t.split()) for t in texts], np.zeros(5, dtype=np.int64))
    np.testing.assert_allclose(loaded.predict(texts), loaded.predict_split(encoded), atol=1e-6)
    (name, alone), = loaded.named_members  # the member table scores the network without its partner
    assert alone.partner is None
    np.testing.assert_allclose(alone.predict_split(test), network.predict_split(test), atol=1e-6)

    members = [(f"m{i}", build_model(config).eval(), config, dict(PREPROCESSING)) for i in range(2)]
    ensemble = load_bundle(save_ensemble(tmp_path / "ens.pt", members, prepared.vocab, partner=reference.export,
                                         partner_weight=0.6))
    plain = load_bundle(save_ensemble(tmp_path / "plain.pt", members, prepared.vocab))
    assert plain.partner is None and torch.load(tmp_path / "plain.pt", weights_only=True)["format_version"] == 1
    np.testing.assert_allclose(ensemble.predict_split(test),
                               0.6 * plain.predict_split(test) + 0.4 * reference.test_prob, atol=1e-5)


def test_a_bad_or_damaged_partner_is_refused_naming_the_fix(nbsvm, tmp_path):
    prepared, reference = nbsvm
    config = ModelConfig("lstm", len(prepared.vocab), embed_dim=8, hidden_size=6)
    model = build_model(config).eval()
    args = (model, config, prepared.vocab, PREPROCESSING)
    with pytest.raises(ValueError, match="weight on the network, in \\[0, 1\\]"):
        save_bundle(tmp_path / "a.pt", *args, partner=reference.export, partner_weight=1.5)
    with pytest.raises(ValueError, match="the partner is None .*only linear.linear_reference"):
        save_bundle(tmp_path / "a.pt", *args, partner=None, partner_weight=0.5)  # e.g. a TF-IDF's export
    with pytest.raises(ValueError, match="not a LinearReference"):
        save_bundle(tmp_path / "a.pt", *args, partner=reference, partner_weight=0.5)
    four = ModelConfig("lstm", len(prepared.vocab), embed_dim=8, hidden_size=6, num_classes=4)
    with pytest.raises(ValueError, match="predicts 4 classes"):
        save_bundle(tmp_path / "a.pt", build_model(four), four, prepared.vocab, PREPROCESSING,
                    partner=reference.export, partner_weight=0.5)
    with pytest.raises(ValueError, match="Only an NBSVM"):
        save_bundle(tmp_path / "a.pt", *args, partner={**reference.export, "kind": "tfidf"}, partner_weight=0.5)
    with pytest.raises(ValueError, match="do not match"):
        save_bundle(tmp_path / "a.pt", *args, partner={**reference.export, "weights": reference.export["weights"][:-1]},
                    partner_weight=0.5)
    assert not (tmp_path / "a.pt").exists()
    path = save_bundle(tmp_path / "ok.pt", *args, partner=reference.export, partner_weight=0.5)
    payload = torch.load(path, weights_only=True)
    partner = payload.pop("partner")
    torch.save(payload, path)
    with pytest.raises(ValueError, match="format 2 needs its linear partner"):  # never silently the network alone
        load_bundle(path)
    torch.save({**payload, "format_version": 1, "partner": partner}, path)
    with pytest.raises(ValueError, match="format 1 has no linear partner"):
        load_bundle(path)
    payload["partner"] = partner
    del payload["partner"]["intercept"]
    torch.save(payload, path)
    with pytest.raises(ValueError, match="partner lacks \\['intercept'\\]"):
        load_bundle(path)
    payload["format_version"] = 3
    torch.save(payload, path)
    with pytest.raises(ValueError, match="format 3.*update sentiment_lib"):
        load_bundle(path)
