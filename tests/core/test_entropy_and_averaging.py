"""Entropy minimisation on reviews without labels and weight averaging: the entropy against its formula, the
combined unlabelled loss against its parts, the moving average against its recurrence, and trainings with each
(the averaged weights are what is validated and kept, and a stopped training resumes to the same result)."""
import math

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


def _fit(seed=3, callbacks=(), unlabelled=True, **settings):
    return fit_with_unlabelled(4, seed=seed, callbacks=callbacks, unlabelled=unlabelled, **settings)


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
