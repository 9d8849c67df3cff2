"""The language model of notebook 02: it learns a made-up language (held-out perplexity falls), it starts a
classifier with exactly its weights, a mismatched classifier is refused naming the fix, and the prepared
data keep it."""
import dataclasses

import numpy as np
import pytest
import torch

from sentiment_lib import language_model as lm
from sentiment_lib.models import AttentionLSTM, BiLSTM
from sentiment_lib.rundir import load_prepared, save_prepared

from tiny_data import tiny_prepared


@pytest.fixture(scope="module")
def pretrained():
    prepared = tiny_prepared(n_train=400)
    encoded = [ids for split in prepared.splits.values() for ids in split.ids] * 3
    state, report = lm.pretrain(encoded, len(prepared.vocab), 16, 24, epochs=2, seed=0)
    return prepared, state, report


def test_held_out_perplexity_falls_and_the_curve_is_recorded(pretrained):
    prepared, state, report = pretrained
    curve = [point["heldout_perplexity"] for point in report.curve]
    assert len(curve) >= 5 and curve[-1] < 0.7 * curve[0]  # learnt something about the made-up language
    assert report.train_tokens > 0 and report.tokens_per_second > 0 and report.hidden_size == 24
    assert curve[0] > len(prepared.vocab) / 2  # untrained: no better than guessing among the words


def test_a_classifier_starts_with_the_language_models_weights(pretrained):
    prepared, state, _ = pretrained
    model = AttentionLSTM(len(prepared.vocab), embed_dim=16, hidden_size=24)
    lm.start_from_language_model(model, state)
    assert torch.equal(model.embedding.weight, state["embedding.weight"])
    assert torch.equal(model.rnn.weight_hh_l0, state["rnn.weight_hh_l0"])
    with pytest.raises(ValueError, match="HIDDEN_SIZE=24"):
        lm.start_from_language_model(AttentionLSTM(len(prepared.vocab), embed_dim=16, hidden_size=8), state)
    with pytest.raises(ValueError, match="backward language model"):
        lm.start_from_language_model(BiLSTM(len(prepared.vocab), embed_dim=16, hidden_size=24), state)
    with pytest.raises(ValueError, match="LM_EPOCHS"):
        lm.start_from_language_model(model, None)


def test_a_backward_model_on_the_forward_embedding_starts_a_bidirectional_classifier(pretrained):
    prepared, state, _ = pretrained
    encoded = [ids for split in prepared.splits.values() for ids in split.ids] * 3
    vectors = state["embedding.weight"].numpy()
    backward, report = lm.pretrain(encoded, len(prepared.vocab), 16, 24, epochs=2, seed=0, vectors=vectors,
                                   backward=True, train_embedding=False)
    curve = [point["heldout_perplexity"] for point in report.curve]
    assert curve[-1] < 0.7 * curve[0]  # it learnt the language read right to left
    assert torch.equal(backward["embedding.weight"], state["embedding.weight"])  # the embedding stayed put
    both = lm.with_backward(state, backward)
    assert lm.sizes(both) == lm.sizes(state)
    model = AttentionLSTM(len(prepared.vocab), embed_dim=16, hidden_size=24, bidirectional=True)
    lm.start_from_language_model(model, both)
    assert torch.equal(model.rnn.weight_hh_l0, state["rnn.weight_hh_l0"])
    assert torch.equal(model.rnn.weight_ih_l0_reverse, backward["rnn.weight_ih_l0"])
    assert torch.equal(model.rnn.bias_hh_l0_reverse, backward["rnn.bias_hh_l0"])
    assert not torch.equal(model.rnn.weight_hh_l0_reverse, model.rnn.weight_hh_l0)
    # the forward model alone is what sampling and a one-direction classifier read
    assert lm.sample(both, prepared.vocab, ["good"], length=4, seed=1) == lm.sample(state, prepared.vocab, ["good"],
                                                                                      length=4, seed=1)
    one_way = AttentionLSTM(len(prepared.vocab), embed_dim=16, hidden_size=24)
    lm.start_from_language_model(one_way, both)
    assert torch.equal(one_way.rnn.weight_ih_l0, state["rnn.weight_ih_l0"])


def test_the_backward_model_predicts_the_previous_token():
    counting = [np.arange(2, 12)] * 8000  # a language that counts up: 2 3 4 … 11, then PAD
    forward, _ = lm.pretrain(counting, 200, 8, 16, epochs=2, seed=0)  # 200 words: 2…11 in the softmax's head
    backward, report = lm.pretrain(counting, 200, 8, 16, epochs=2, seed=0, vectors=forward["embedding.weight"].numpy(),
                                   backward=True, train_embedding=False)
    assert report.direction == "backward"
    with torch.no_grad():  # after 2 3 4 5 6 comes 7; read backwards, after 11 10 9 8 7 comes 6
        for state, prompt, expected in ((forward, [2, 3, 4, 5, 6], 7), (backward, [11, 10, 9, 8, 7], 6)):
            model = lm.load(state)
            outputs, _ = model(torch.tensor([prompt]))
            assert int(model.log_probs(outputs[:, -1:]).argmax()) == expected


def test_a_report_with_its_backward_report_survives_json_and_the_cache(pretrained, tmp_path):
    import json

    _, state, forward = pretrained
    report = dataclasses.replace(forward, backward=dataclasses.replace(forward, direction="backward"))
    as_json = lambda r: json.dumps(r.as_dict())  # noqa: E731 (the curve starts with NaN, which == refuses)
    assert as_json(lm.LanguageModelReport.from_dict(json.loads(as_json(report)))) == as_json(report)
    summary = report.summary()
    assert "curve" not in summary and summary["backward"]["direction"] == "backward"
    assert summary["heldout_perplexity"] == report.curve[-1]["heldout_perplexity"]
    calls = []

    def train():
        calls.append(1)
        return state, report

    first = lm._cached(tmp_path, "model.pt", train)
    again = lm._cached(tmp_path, "model.pt", train)
    assert len(calls) == 1 and not first[1].cached and again[1].cached
    assert as_json(again[1].backward) == as_json(report.backward)
    assert all(torch.equal(again[0][k], v) for k, v in state.items())


def test_a_backward_model_with_its_own_embedding_is_refused(pretrained):
    prepared, state, _ = pretrained
    encoded = [ids for split in prepared.splits.values() for ids in split.ids]
    drifted, _ = lm.pretrain(encoded, len(prepared.vocab), 16, 24, epochs=1, seed=0,
                             vectors=state["embedding.weight"].numpy(), backward=True)
    with pytest.raises(ValueError, match="train_embedding=False"):
        lm.with_backward(state, drifted)
    with pytest.raises(ValueError, match="give the vectors"):
        lm.pretrain(encoded, len(prepared.vocab), 16, 24, epochs=1, seed=0, train_embedding=False)


def test_samples_and_the_run_directory_keep_it(pretrained, tmp_path):
    prepared, state, _ = pretrained
    text = lm.sample(state, prepared.vocab, ["good", "w1"], length=6, seed=1)
    assert text.startswith("good w1 ") and len(text.split()) == 8
    assert text == lm.sample(state, prepared.vocab, ["good", "w1"], length=6, seed=1)  # seeded
    prepared.language_model = state
    save_prepared(tmp_path / "prepared", prepared)  # prepared_dir(<folder>) is <folder>/prepared
    loaded = load_prepared(tmp_path)
    assert all(torch.equal(loaded.language_model[k], v) for k, v in state.items())
    assert loaded.params["lm_fingerprint"] is not None


def test_too_little_text_is_refused():
    with pytest.raises(ValueError, match="too few"):
        lm.pretrain([np.array([2, 3])], 10, 4, 4, epochs=1, seed=0)
    with pytest.raises(ValueError, match="LM_EPOCHS"):
        lm.pretrain([np.array([2, 3])], 10, 4, 4, epochs=0, seed=0)
