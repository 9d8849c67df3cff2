"""Entropy minimisation on reviews without labels and weight averaging: the entropy against its formula, the
combined unlabelled loss against its parts, the moving average against its recurrence, and trainings with each
(the averaged weights are what is validated and kept, and a stopped training resumes to the same result)."""
import math

import pandas as pd
import pytest
import torch
from torch import nn

from sentiment_lib import adversarial as adv
from sentiment_lib.runtime.checkpoint import Checkpoint
from sentiment_lib.train import Callback, TrainConfig, evaluate, moving_average

from tiny_data import fit_with_unlabelled, tiny_network_and_batch

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_entropy_matches_its_formula_and_its_extremes():
    logits = torch.tensor([0.0, 3.0, -1.5])
    p = torch.sigmoid(logits)
    assert adv.entropy(logits).item() == pytest.approx((-(p * p.log() + (1 - p) * (1 - p).log())).mean().item(),
                                                       rel=1e-5)
    assert adv.entropy(torch.zeros(4)).item() == pytest.approx(math.log(2), rel=1e-6)  # the least sure
    assert adv.entropy(torch.full((4,), 40.0)).item() < 1e-12  # sure
    assert adv.entropy(torch.zeros(3, 5)).item() == pytest.approx(math.log(5), rel=1e-6)  # uniform over 5 classes


@pytest.mark.parametrize("num_classes", [2, 4])
def test_the_unlabelled_loss_is_vat_plus_the_weighted_entropy(num_classes):
    model, tokens, lengths = tiny_network_and_batch(num_classes)
    torch.manual_seed(5)
    both = adv.unlabelled_loss(model, tokens, lengths, vat=0.5, entropy_weight=2.0)
    torch.manual_seed(5)  # the same random start of the power iteration
    vat = adv.virtual_adversarial_loss(model, tokens, lengths, 0.5)
    with torch.no_grad():
        spread = adv.entropy(model(tokens, lengths))
    assert both.item() == pytest.approx(vat.item() + 2.0 * spread.item(), rel=1e-5)
    assert adv.unlabelled_loss(model, tokens, lengths, entropy_weight=1.0).item() == pytest.approx(spread.item(),
                                                                                                   rel=1e-5)
    assert not model.embedding._forward_hooks  # the hooks are gone afterwards


def test_steps_on_the_entropy_term_make_the_predictions_surer():
    model, tokens, lengths = tiny_network_and_batch()
    with torch.no_grad():
        before = adv.entropy(model(tokens, lengths)).item()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(10):
        optimizer.zero_grad()
        adv.unlabelled_loss(model, tokens, lengths, entropy_weight=1.0).backward()
        optimizer.step()
    with torch.no_grad():
        assert adv.entropy(model(tokens, lengths)).item() < 0.9 * before


def test_the_unlabelled_loss_refuses_nothing_to_do_and_negative_sizes():
    model, tokens, lengths = tiny_network_and_batch()
    for vat, weight in [(0.0, 0.0), (-0.1, 1.0), (0.5, -1.0)]:
        with pytest.raises(ValueError, match="vat > 0 or entropy_weight > 0"):
            adv.unlabelled_loss(model, tokens, lengths, vat=vat, entropy_weight=weight)
    with pytest.raises(ValueError, match="entropy .* must be >= 0"):
        TrainConfig(entropy=-1.0)
    with pytest.raises(ValueError, match="average .* must be >= 0"):
        TrainConfig(average=-1.0)


def test_the_moving_average_follows_its_recurrence():
    layer = nn.Linear(2, 1, bias=False)
    average = moving_average(layer, epochs=0.5, steps_per_epoch=4)  # decay 1 - 1/2
    seen = []
    for value in (1.0, 3.0, -1.0):
        with torch.no_grad():
            layer.weight.fill_(value)
        average.update_parameters(layer)
        seen.append(average.module.weight[0, 0].item())
    assert seen == pytest.approx([1.0, 2.0, 0.5])  # the first update copies; then halfway each step


class _Stop(Callback):
    """Stops a training after ``epoch`` epochs, as a killed process would (after the checkpoint's save)."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, state, val):
        if len(state.rows) == self.epoch:
            raise KeyboardInterrupt


def _fit(seed=3, callbacks=(), unlabelled=True, epochs=4, **settings):
    return fit_with_unlabelled(epochs, seed=seed, callbacks=callbacks, unlabelled=unlabelled, **settings)


def test_training_with_entropy_minimisation_learns_is_reproducible_and_differs():
    (with_it, _, _), (again, _, _), (without, _, _) = _fit(entropy=1.0), _fit(entropy=1.0), _fit()
    assert with_it.history["val_loss"].iloc[-1] < with_it.history["val_loss"].iloc[0]
    assert with_it.history["val_loss"].tolist() == again.history["val_loss"].tolist()
    assert with_it.history["train_loss"].tolist() != without.history["train_loss"].tolist()
    with pytest.raises(ValueError, match="unlabelled=loader"):
        _fit(entropy=1.0, unlabelled=False)


def test_weight_averaging_validates_and_keeps_the_averaged_weights():
    averaged, model, loaders = _fit(average=1.0)
    plain, _, _ = _fit()
    # the same steps, so the same training loss; what is validated differs
    assert averaged.history["train_loss"].tolist() == plain.history["train_loss"].tolist()
    assert averaged.history["val_loss"].tolist() != plain.history["val_loss"].tolist()
    # the model ends holding the kept averaged weights: they score the recorded best validation loss
    assert evaluate(model, loaders["val"])["loss"] == pytest.approx(averaged.best_val_loss, rel=1e-6)


def test_a_stopped_training_with_weight_averaging_resumes_to_the_same_result(tmp_path):
    straight, straight_model, _ = _fit(average=1.0, entropy=1.0)
    path = tmp_path / "run.pt"
    with pytest.raises(KeyboardInterrupt):
        _fit(average=1.0, entropy=1.0, callbacks=[Checkpoint(path), _Stop(2)])
    resumed, resumed_model, _ = _fit(average=1.0, entropy=1.0, callbacks=[Checkpoint(path)])
    assert resumed.resumed == "from epoch 3"
    assert resumed.history["val_loss"].tolist() == straight.history["val_loss"].tolist()
    for (name, a), (_, b) in zip(straight_model.state_dict().items(), resumed_model.state_dict().items()):
        assert torch.equal(a, b), name


def _same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.values(), b.values())) and list(a) == list(b)


# Validation reviews with random labels: the validation loss rises as the network learns, and the weights stop
# before their average — at epoch 7 of 8, while the average runs to the last (seed 4); both early, at 3 and 4 (seed 6).
@pytest.mark.parametrize("seed, stops", [(4, (8, 7)), (6, (4, 3))])
def test_one_training_keeps_the_averaged_weights_and_the_weights_themselves_as_two_trainings_would(seed, stops):
    settings = dict(seed=seed, epochs=8, vat=0.5, patience=1, noisy_val=True)
    twin, twin_model, _ = _fit(average=1.0, also_raw=True, **settings)
    averaged, averaged_model, _ = _fit(average=1.0, **settings)
    raw, raw_model, _ = _fit(**settings)
    assert (twin.epochs_run, twin.raw.epochs_run) == stops  # each network stopped by its own patience
    for kept, alone in [(twin, averaged), (twin.raw, raw)]:
        assert (kept.best_epoch, kept.best_val_loss, kept.epochs_run, kept.stopped_early) == \
            (alone.best_epoch, alone.best_val_loss, alone.epochs_run, alone.stopped_early)
        columns = [c for c in alone.history.columns if c != "seconds"]
        pd.testing.assert_frame_equal(kept.history[columns], alone.history[columns])
    assert _same_weights(twin_model.state_dict(), averaged_model.state_dict())
    assert _same_weights(twin.raw_state, raw_model.state_dict())
    assert twin.raw.raw is None and averaged.raw is None
    assert 0 < twin.raw.seconds <= twin.seconds  # the training's time when each stopped
    with pytest.raises(ValueError, match="set average > 0"):
        TrainConfig(also_raw=True)


def test_a_stopped_training_that_keeps_both_resumes_to_the_same_two_results(tmp_path):
    # killed after epoch 7, where the weights stopped and their average goes on (seed 4 above)
    settings = dict(seed=4, epochs=8, average=1.0, also_raw=True, vat=0.5, patience=1, noisy_val=True)
    straight, _, _ = _fit(**settings)
    path = tmp_path / "run.pt"
    with pytest.raises(KeyboardInterrupt):
        _fit(callbacks=[Checkpoint(path), _Stop(7)], **settings)
    resumed, _, _ = _fit(callbacks=[Checkpoint(path)], **settings)
    assert resumed.resumed == "from epoch 8" and (resumed.epochs_run, resumed.raw.epochs_run) == (8, 7)
    for a, b in [(straight, resumed), (straight.raw, resumed.raw)]:
        assert (a.best_epoch, a.best_val_loss) == (b.best_epoch, b.best_val_loss)
        assert a.history["val_loss"].tolist() == b.history["val_loss"].tolist()
    assert _same_weights(straight.raw_state, resumed.raw_state)
    again, _, _ = _fit(callbacks=[Checkpoint(path)], **settings)  # finished: read back, not trained
    assert again.resumed == "finished" and again.raw.best_val_loss == straight.raw.best_val_loss
    with pytest.raises(ValueError, match="delete it to train again"):  # a checkpoint of the other kind
        _fit(callbacks=[Checkpoint(path)], **dict(settings, also_raw=False))


def _to_older_layout(path):
    """Rewrite the checkpoint at ``path`` in the flat layout written before tracks (``best_*`` at the top)."""
    saved = torch.load(path, weights_only=True)
    track = saved.pop("track")
    saved.update({k: track[k] for k in ("best_loss", "best_epoch", "best_state", "best_metrics",
                                        "epochs_without_gain", "stopped_early")})
    torch.save(saved, path)


def test_a_checkpoint_written_before_tracks_reads_back_as_its_finished_training(tmp_path):
    path = tmp_path / "run.pt"
    first, _, _ = _fit(epochs=3, average=1.0, callbacks=[Checkpoint(path)])
    _to_older_layout(path)
    again, _, _ = _fit(epochs=3, average=1.0, callbacks=[Checkpoint(path)])
    assert again.resumed == "finished"
    assert (again.best_epoch, again.best_val_loss, again.epochs_run) == (first.best_epoch, first.best_val_loss, 3)
    assert again.history["val_loss"].tolist() == first.history["val_loss"].tolist()


class _Scripted:
    """Stands in for ``train.evaluate``: the real evaluation (its random draws included), with the loss replaced by
    a script per network in the order ``fit`` first validates them (the kept network first)."""

    def __init__(self, *scripts):
        self.scripts, self.seen, self.calls = scripts, [], {}

    def __call__(self, network, *args, **kwargs):
        val = evaluate(network, *args, **kwargs)
        if id(network) not in self.seen:
            self.seen.append(id(network))
        which = self.seen.index(id(network))
        epoch = self.calls[which] = self.calls.get(which, 0) + 1
        return {**val, "loss": self.scripts[which][epoch - 1]}


def test_when_the_average_stops_first_the_weights_train_on_and_both_match_their_own_trainings(monkeypatch, tmp_path):
    import sentiment_lib.train as train_module

    averaged_losses = [0.5, 0.4, 0.45, 0.46, 0.47, 0.48]  # stops after epoch 3 (patience 1)
    raw_losses = [0.6, 0.55, 0.5, 0.45, 0.4, 0.35]  # improves to the last epoch
    settings = dict(epochs=6, vat=0.5, patience=1)

    def run(*scripts, **more):
        monkeypatch.setattr(train_module, "evaluate", _Scripted(*scripts))
        return _fit(**settings, **more)

    twin, twin_model, _ = run(averaged_losses, raw_losses, average=1.0, also_raw=True)
    averaged, averaged_model, _ = run(averaged_losses, average=1.0)
    raw, raw_model, _ = run(raw_losses)
    assert (twin.epochs_run, twin.best_epoch, twin.stopped_early) == (3, 2, True)
    assert (twin.raw.epochs_run, twin.raw.best_epoch, twin.raw.stopped_early) == (6, 6, False)
    assert not twin.history.isna().any().any() and twin.raw.history["val_loss"].tolist() == raw_losses
    for kept, alone in [(twin, averaged), (twin.raw, raw)]:
        assert kept.history["train_loss"].tolist() == alone.history["train_loss"].tolist()
    assert _same_weights(twin_model.state_dict(), averaged_model.state_dict())
    assert _same_weights(twin.raw_state, raw_model.state_dict())

    path = tmp_path / "run.pt"  # killed after epoch 4: the average had stopped, the weights had not
    with pytest.raises(KeyboardInterrupt):
        run(averaged_losses, raw_losses, average=1.0, also_raw=True, callbacks=[Checkpoint(path), _Stop(4)])
    # after the restore only the weights are validated: theirs is the one script
    resumed, _, _ = run(raw_losses[4:], average=1.0, also_raw=True, callbacks=[Checkpoint(path)])
    assert (resumed.resumed, resumed.raw.resumed) == ("finished", "from epoch 5")
    assert resumed.best_val_loss == twin.best_val_loss and resumed.raw.history.equals(twin.raw.history.assign(
        seconds=resumed.raw.history["seconds"]))
    assert _same_weights(resumed.raw_state, twin.raw_state)


def test_a_checkpoint_written_before_tracks_resumes_an_unfinished_training(tmp_path):
    straight, straight_model, _ = _fit(epochs=4, average=1.0)
    path = tmp_path / "run.pt"
    with pytest.raises(KeyboardInterrupt):
        _fit(epochs=4, average=1.0, callbacks=[Checkpoint(path), _Stop(2)])
    _to_older_layout(path)
    resumed, resumed_model, _ = _fit(epochs=4, average=1.0, callbacks=[Checkpoint(path)])
    assert resumed.resumed == "from epoch 3" and resumed.epochs_run == 4
    assert resumed.history["val_loss"].tolist() == straight.history["val_loss"].tolist()
    assert _same_weights(resumed_model.state_dict(), straight_model.state_dict())
