"""Models: shapes, padding never entering the recurrence, attention masks, pooling, config validation."""
import pytest
import torch

from sentiment_lib.models import (MODELS, AttentionLSTM, BagOfEmbeddings, BiLSTM, BiLSTMPool, GRUClassifier,
                                  LSTMClassifier, ModelConfig, RNNClassifier, StackedLSTM, build_model,
                                  count_parameters, masked_mean_max_pool)

VOCAB = 30


def padded_batch(lengths, width=None, seed=0):
    """tokens (B, width) with random real ids in [2, VOCAB) and PAD=0 after each length; lengths (B,)."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(lengths)
    width = width or int(lengths.max())
    tokens = torch.randint(2, VOCAB, (len(lengths), width), generator=g)
    tokens[torch.arange(width)[None, :] >= lengths[:, None]] = 0
    return tokens, lengths


def model(name, **overrides):
    torch.manual_seed(0)
    values = dict(name=name, vocab_size=VOCAB, embed_dim=8, hidden_size=6)
    return build_model(ModelConfig(**{**values, **overrides})).eval()


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("num_classes, shape", [(2, (4,)), (3, (4, 3))])
def test_every_model_gives_one_logit_per_review_or_one_per_class(name, num_classes, shape):
    tokens, lengths = padded_batch([7, 3, 1, 5])
    logits = model(name, num_classes=num_classes)(tokens, lengths)
    assert logits.shape == shape
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", list(MODELS))
def test_extra_trailing_padding_does_not_change_any_output(name):
    tokens, lengths = padded_batch([6, 2, 4])
    wider = torch.cat([tokens, torch.zeros(3, 40, dtype=torch.long)], dim=1)
    m = model(name)
    with torch.no_grad():
        torch.testing.assert_close(m(tokens, lengths), m(wider, lengths))


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("change, message", [
    (lambda t, n: (t, torch.tensor([7, 0, 1, 5])), "lengths must be between 1 and T=7.*drop reviews"),
    (lambda t, n: (t, torch.tensor([8, 3, 1, 5])), "lengths must be between 1 and T=7"),
    (lambda t, n: (t.clone().fill_(VOCAB), n), r"Token ids must be in \[0, 30\).*another vocabulary"),
    (lambda t, n: (t, n[:3]), r"Expected tokens \(B, T\) and lengths \(B,\)"),
    (lambda t, n: (t.float(), n), "integer tensors"),
])
def test_an_impossible_batch_names_the_fix(name, change, message):
    tokens, lengths = change(*padded_batch([7, 3, 1, 5]))
    with pytest.raises(ValueError, match=message):
        model(name)(tokens, lengths)


def test_reading_the_padded_last_step_lets_padding_change_the_output():
    tokens, lengths = padded_batch([6, 2, 4])
    wider = torch.cat([tokens, torch.zeros(3, 40, dtype=torch.long)], dim=1)
    m = model("lstm", read_padded_last_step=True)
    with torch.no_grad():
        assert not torch.allclose(m(tokens, lengths), m(wider, lengths))


def test_named_classes_are_presets_of_the_generic_recurrent_model():
    cases = {LSTMClassifier: ("lstm", False, "last", 1), BiLSTM: ("lstm", True, "last", 1),
             BiLSTMPool: ("lstm", True, "pool", 1), AttentionLSTM: ("lstm", False, "attention", 1),
             StackedLSTM: ("lstm", False, "last", 2), GRUClassifier: ("gru", False, "last", 1),
             RNNClassifier: ("rnn", False, "last", 1)}
    for cls, (cell, bidirectional, readout, layers) in cases.items():
        m = cls(VOCAB, embed_dim=4, hidden_size=3)
        assert (m.cell, m.bidirectional, m.readout, m.rnn.num_layers) == (cell, bidirectional, readout, layers)
    assert isinstance(build_model(ModelConfig("BiLSTM-Pool", VOCAB)), BiLSTMPool)


def test_stacked_lstm_has_dropout_between_layers():
    m = build_model(ModelConfig("stacked_lstm", VOCAB, num_layers=3, dropout=0.25))
    assert m.rnn.num_layers == 3 and m.rnn.dropout == 0.25


def test_masked_mean_max_pool_ignores_padded_steps():
    outputs = torch.tensor([[[1.0, -2.0], [3.0, 4.0], [100.0, 100.0]],
                            [[-5.0, 6.0], [-100.0, 100.0], [100.0, -100.0]]])  # (B=2, T=3, H=2)
    pooled = masked_mean_max_pool(outputs, torch.tensor([2, 1]))
    expected = torch.tensor([[2.0, 1.0, 3.0, 4.0], [-5.0, 6.0, -5.0, 6.0]])  # [mean, max]
    torch.testing.assert_close(pooled, expected)


def test_attention_weights_sum_to_one_over_real_tokens_and_are_zero_on_padding():
    tokens, lengths = padded_batch([7, 3, 1, 5], width=10)
    logits, weights = model("attention_lstm")(tokens, lengths, return_attention=True)
    assert logits.shape == (4,) and weights.shape == (4, 10)
    real = torch.arange(10)[None, :] < lengths[:, None]
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(4))
    assert (weights[~real] == 0).all() and (weights[real] > 0).all()


def test_return_attention_on_a_model_without_attention_names_the_fix():
    tokens, lengths = padded_batch([3, 2])
    with pytest.raises(ValueError, match="attention_lstm"):
        model("bilstm")(tokens, lengths, return_attention=True)


@pytest.mark.parametrize("overrides, fix", [
    (dict(name="transformer"), "Known models: lstm, bilstm"),
    (dict(hidden_size=0), "hidden_size=128"),
    (dict(embed_dim=-1), "embed_dim=100"),
    (dict(dropout=1.0), r"dropout=0.3"),
    (dict(dropout=-0.1), r"\[0, 1\)"),
    (dict(vocab_size=2), "PAD and UNK"),
    (dict(num_classes=1), "num_classes=2"),
    (dict(name="stacked_lstm", num_layers=1), "num_layers=2"),
    (dict(name="bilstm", bidirectional=False), "bidirectional=True"),
    (dict(name="bilstm_pool", read_padded_last_step=True), "readout='last'"),
    (dict(name="bag_of_embeddings", bidirectional=True), "leave bidirectional"),
])
def test_invalid_configs_raise_errors_that_name_the_fix(overrides, fix):
    values = dict(name="lstm", vocab_size=VOCAB, embed_dim=8, hidden_size=6)
    with pytest.raises(ValueError, match=fix):
        build_model(ModelConfig(**{**values, **overrides}))


def test_count_parameters_counts_trainable_scalars_only():
    m = BagOfEmbeddings(10, embed_dim=4, hidden_size=3)
    assert count_parameters(m) == 10 * 4 + (4 * 3 + 3) + (3 * 1 + 1)
    m.embedding.weight.requires_grad_(False)
    assert count_parameters(m) == (4 * 3 + 3) + (3 * 1 + 1)


def test_model_config_round_trips_through_a_plain_dict():
    config = ModelConfig("gru", VOCAB, embed_dim=8, hidden_size=6, dropout=0.1, num_classes=3)
    assert ModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="Unknown ModelConfig fields"):
        ModelConfig.from_dict({**config.to_dict(), "hidden": 3})
