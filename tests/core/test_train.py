"""Training loop: learning, evaluation without side effects, order, determinism, checkpoints, stopping."""
import numpy as np
import pandas as pd
import pytest
import torch

from sentiment_lib.batching import EncodedSplit, make_loader
from sentiment_lib.models import ModelConfig, build_model
from sentiment_lib import train as training
from sentiment_lib.train import HISTORY_COLUMNS, Callback, TrainConfig, evaluate, fit, make_scheduler, predict_proba

VOCAB, SIGNAL = 20, 5


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def synthetic_split(n, seed, signal_at_start=False, invert=False, max_tokens=12):
    """Reviews of 3..max_tokens random ids; label 1 iff token SIGNAL occurs (at position 0/1 when
    ``signal_at_start``); ``invert`` flips the labels (a task that contradicts the normal one)."""
    rng = np.random.default_rng(seed)
    words = [t for t in range(2, VOCAB) if t != SIGNAL]
    ids, labels = [], []
    for i in range(n):
        seq = rng.choice(words, size=rng.integers(3, max_tokens + 1))
        label = i % 2
        if label:
            seq[rng.integers(0, 2) if signal_at_start else rng.integers(0, len(seq))] = SIGNAL
        ids.append(seq.astype(np.int32))
        labels.append(1 - label if invert else label)
    return EncodedSplit(ids, np.array(labels))


def loaders(train, val, padded=False, seed=0):
    """Fresh loaders (their samplers count epochs). ``padded``: every batch padded to 64 steps."""
    extra = dict(bucket=False, pad_to_max_len=True) if padded else {}
    return (make_loader(train, 32, 64, shuffle=True, seed=seed, **extra),
            make_loader(val, 64, 64, **extra))


def new_model(name="lstm", seed=0, **overrides):
    torch.manual_seed(seed)
    return build_model(ModelConfig(name, VOCAB, embed_dim=16, hidden_size=16, **overrides))


def quiet(**overrides):
    return TrainConfig(**{**dict(epochs=4, lr=1e-2, patience=None, progress=False, device="cpu"), **overrides})


def test_packed_baseline_learns_while_reading_the_padded_last_step_stays_at_chance():
    train, val = synthetic_split(512, 0, signal_at_start=True), synthetic_split(256, 1, signal_at_start=True)
    packed = fit(new_model(), *loaders(train, val, padded=True), quiet(epochs=5))
    padded = fit(new_model(read_padded_last_step=True), *loaders(train, val, padded=True), quiet(epochs=5))
    assert packed.best_val_metrics["accuracy"] > 0.9
    assert padded.best_val_metrics["accuracy"] < 0.65


def test_history_has_one_row_per_epoch_with_every_column():
    result = fit(new_model("gru"), *loaders(synthetic_split(128, 0), synthetic_split(64, 1)), quiet(epochs=2))
    assert list(result.history.columns) == HISTORY_COLUMNS
    assert result.history["epoch"].tolist() == [1, 2] and result.epochs_run == 2
    assert result.history.notna().all().all() and (result.history["seconds"] > 0).all()
    assert result.seconds >= result.history["seconds"].sum()


def test_evaluate_leaves_parameters_gradients_and_mode_unchanged():
    model = new_model("bilstm_pool", dropout=0.5).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    first = evaluate(model, make_loader(synthetic_split(96, 0), 32, 64))
    second = evaluate(model, make_loader(synthetic_split(96, 0), 32, 64))
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert all(p.grad is None for p in model.parameters())
    assert model.training  # mode restored
    assert first["loss"] == second["loss"]  # dropout off while evaluating
    assert set(first) >= {"loss", "accuracy", "precision", "recall", "f1", "roc_auc", "prob", "labels"}


def test_evaluate_and_predict_proba_return_the_split_s_original_order():
    split = synthetic_split(70, 3)
    model = new_model("attention_lstm")
    loader = make_loader(split, 16, 64)  # bucketed: batches sorted by length
    assert sorted(i for b in loader for i in b.index.tolist()) == list(range(70))
    assert [i for b in loader for i in b.index.tolist()] != list(range(70))
    expected = []
    with torch.no_grad():
        for ids in split.ids:
            tokens = torch.as_tensor(ids, dtype=torch.long)[None]
            expected.append(torch.sigmoid(model.eval()(tokens, torch.tensor([len(ids)]))).item())
    np.testing.assert_allclose(predict_proba(model, loader), expected, rtol=1e-5, atol=1e-6)
    result = evaluate(model, loader)
    np.testing.assert_allclose(result["prob"], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(result["labels"], split.labels)


def test_same_seed_gives_identical_history():
    train, val = synthetic_split(128, 0), synthetic_split(64, 1)
    runs = [fit(new_model("bilstm_pool", dropout=0.3), *loaders(train, val), quiet(epochs=2, seed=7))
            for _ in range(2)]
    pd.testing.assert_frame_equal(runs[0].history.drop(columns="seconds"),
                                  runs[1].history.drop(columns="seconds"))


def test_best_checkpoint_is_restored_and_early_stopping_stops():
    # Training on inverted labels makes the validation loss rise after the first epoch.
    train, val = synthetic_split(256, 0, invert=True), synthetic_split(128, 1)
    model = new_model()
    snapshots = {}

    class Remember(Callback):
        def on_epoch_end(self, state, val_metrics):
            snapshots[len(state.rows)] = {k: v.clone() for k, v in state.model.state_dict().items()}

    result = fit(model, *loaders(train, val), quiet(epochs=10, patience=2), callbacks=[Remember()])
    assert result.stopped_early and result.epochs_run == result.best_epoch + 2 < 10
    assert result.best_epoch == int(result.history["val_loss"].idxmin()) + 1
    for name, value in model.state_dict().items():
        assert torch.equal(value, snapshots[result.best_epoch][name]), name
    assert evaluate(model, loaders(train, val)[1])["loss"] == pytest.approx(result.best_val_loss, rel=1e-6)


def test_an_exception_from_a_callback_propagates_and_every_callback_sees_the_end():
    class Pruned(Exception):
        pass

    class Prune(Callback):
        def on_epoch_end(self, state, val_metrics):
            assert 0.0 <= val_metrics["accuracy"] <= 1.0
            raise Pruned(len(state.rows))

    class Watch(Callback):
        calls: list = []

        def on_fit_start(self, state):
            self.calls.append("start")

        def after_step(self):
            self.calls.append("step")

        def on_fit_end(self, state):
            self.calls.append("end")

    watch = Watch()
    with pytest.raises(Pruned):
        fit(new_model(), *loaders(synthetic_split(64, 0), synthetic_split(32, 1)), quiet(), callbacks=[watch, Prune()])
    assert watch.calls[0] == "start" and watch.calls[-1] == "end"
    assert watch.calls.count("step") == 2  # 64 reviews in batches of 32, one epoch


def test_multiclass_models_train_with_cross_entropy_and_give_class_probabilities():
    split = synthetic_split(96, 0)
    three = EncodedSplit(split.ids, np.array([i % 3 for i in range(96)]))
    model = new_model("bag_of_embeddings", num_classes=3)
    train = make_loader(three, 32, 64, shuffle=True, binary=False)
    result = fit(model, train, make_loader(three, 32, 64, binary=False), quiet(epochs=1))
    assert np.isfinite(result.best_val_loss)
    prob = predict_proba(model, make_loader(three, 32, 64, binary=False))
    assert prob.shape == (96, 3)
    np.testing.assert_allclose(prob.sum(axis=1), 1.0, rtol=1e-5)


def test_bfloat16_autocast_trains_on_cpu():
    result = fit(new_model(), *loaders(synthetic_split(64, 0), synthetic_split(32, 1)),
                 quiet(epochs=1, amp_dtype="bfloat16"))
    assert np.isfinite(result.history["val_loss"]).all()


def test_warm_up_then_constant_or_linear_decay():
    def rates(decay):
        optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        scheduler = make_scheduler(optimizer, warmup_steps=4, total_steps=10, decay=decay)
        out = []
        for _ in range(10):
            out.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        return out

    np.testing.assert_allclose(rates("constant"), [0.25, 0.5, 0.75, 1, 1, 1, 1, 1, 1, 1])
    # Linear: from 1 at the first step after warm-up down to 1/6 at the last step (0 would be step 10).
    np.testing.assert_allclose(rates("linear"), [0.25, 0.5, 0.75, 1, 1, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6])


def test_discriminative_rates_divide_the_rate_by_the_decay_per_layer_towards_the_input():
    model = build_model(ModelConfig("attention_lstm", VOCAB, embed_dim=4, hidden_size=4))
    groups = training.parameter_groups(model, 1e-2, 2.0)
    assert [g["lr"] for g in groups] == [1e-2, 5e-3, 2.5e-3]  # readout and head, the LSTM, the embedding
    by_id = {id(p): g["lr"] for g in groups for p in g["params"]}
    every = list(model.parameters())
    assert len(by_id) == len(every) == sum(len(g["params"]) for g in groups)  # each in exactly one group
    assert all(by_id[id(p)] == 2.5e-3 for p in model.embedding.parameters())
    assert all(by_id[id(p)] == 5e-3 for p in model.rnn.parameters())
    assert all(by_id[id(p)] == 1e-2 for p in model.head.parameters())
    assert [g["lr"] for g in training.parameter_groups(model, 1e-2, 1.0)] == [1e-2]
    with pytest.raises(ValueError, match="layer_decay=1"):
        training.parameter_groups(torch.nn.Linear(3, 1), 1e-2, 2.6)


def test_groups_at_one_rate_train_exactly_as_one_group_and_a_larger_decay_moves_the_embedding_less(monkeypatch):
    def trained(layer_decay):
        torch.manual_seed(0)
        model = build_model(ModelConfig("lstm", VOCAB, embed_dim=8, hidden_size=8))
        start = model.embedding.weight.detach().clone()
        config = TrainConfig(epochs=2, lr=1e-2, patience=None, seed=0, progress=False, layer_decay=layer_decay)
        fit(model, *loaders(synthetic_split(96, 0), synthetic_split(32, 1)), config)
        return model, (model.embedding.weight.detach() - start).norm().item()

    one_group, moved = trained(1.0)
    split = training.parameter_groups

    def three_groups_at_one_rate(model, lr, layer_decay=1.0):  # the grouped path, every group at lr
        return [{**group, "lr": lr} for group in split(model, lr, 2.0)]

    monkeypatch.setattr(training, "parameter_groups", three_groups_at_one_rate)
    grouped, _ = trained(1.0)
    monkeypatch.undo()
    for a, b in zip(one_group.state_dict().values(), grouped.state_dict().values()):
        assert torch.equal(a, b)
    _, moved_less = trained(10.0)
    assert moved_less < moved / 3


@pytest.mark.parametrize("overrides, message", [
    (dict(epochs=0), "epochs"), (dict(layer_decay=0.5), "2.6"), (dict(lr=0), "lr=1e-3"), (dict(patience=0), "None"),
    (dict(grad_clip=0.0), "None"), (dict(amp_dtype="float16"), "bfloat16"), (dict(decay="cosine"), "linear"),
])
def test_invalid_train_configs_raise(overrides, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**overrides)
