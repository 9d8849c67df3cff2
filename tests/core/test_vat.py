"""Virtual adversarial training: the divergence it minimises, the direction its power iteration finds, and
training with it on reviews without labels (reproducible, refused without them)."""
import numpy as np
import pytest
import torch

from sentiment_lib import adversarial as adv
from sentiment_lib.batching import make_loader
from sentiment_lib.train import TrainConfig, _stream

from tiny_data import fit_with_unlabelled, tiny_network_and_batch, tiny_prepared, unlabelled_reviews


def test_the_divergence_is_zero_for_the_same_prediction_and_matches_the_textbook_formula():
    clean, moved = torch.tensor([0.3, -2.0, 4.0]), torch.tensor([1.0, -1.0, 3.0])
    assert adv._kl_from_logits(clean, clean).item() == pytest.approx(0.0, abs=1e-7)
    p, q = torch.sigmoid(clean), torch.sigmoid(moved)
    bernoulli = (p * torch.log(p / q) + (1 - p) * torch.log((1 - p) / (1 - q))).mean()
    assert adv._kl_from_logits(clean, moved).item() == pytest.approx(bernoulli.item(), rel=1e-5)
    clean4, moved4 = torch.randn(5, 4), torch.randn(5, 4)
    categorical = torch.nn.functional.kl_div(torch.log_softmax(moved4, -1), torch.log_softmax(clean4, -1),
                                             log_target=True, reduction="batchmean")
    assert adv._kl_from_logits(clean4, moved4).item() == pytest.approx(categorical.item(), rel=1e-5)


def test_the_power_iteration_finds_a_direction_that_moves_the_prediction_more_than_chance():
    model, tokens, lengths = tiny_network_and_batch()
    torch.manual_seed(1)
    found = adv.virtual_adversarial_loss(model, tokens, lengths, epsilon=0.5).item()
    with adv.captured(model.embedding) as seen, torch.no_grad():
        clean = model(tokens, lengths)
    mask = torch.arange(9)[None, :] < lengths[:, None]
    chance = []
    for seed in range(20):  # random directions of the same size
        torch.manual_seed(100 + seed)
        r = adv.perturbation(seen["embedded"], torch.randn(6, 9, 8), mask, 0.5)
        with adv.perturbed(model.embedding, r), torch.no_grad():
            chance.append(adv._kl_from_logits(clean, model(tokens, lengths)).item())
    assert found > 0 and found > 2 * np.mean(chance)


def test_the_loss_trains_every_parameter_it_reaches_and_reads_no_label():
    model, tokens, lengths = tiny_network_and_batch(num_classes=4)  # multi-class: softmax divergence
    model.train()
    adv.virtual_adversarial_loss(model, tokens, lengths, epsilon=0.5).backward()
    assert model.embedding.weight.grad is not None and model.embedding.weight.grad.abs().sum() > 0
    assert not model.embedding._forward_hooks  # the hooks are gone afterwards
    with pytest.raises(ValueError, match="epsilon > 0 and xi > 0"):
        adv.virtual_adversarial_loss(model, tokens, lengths, epsilon=0.0)


def _fit(vat, seed=3, unlabelled=True):
    return fit_with_unlabelled(3, seed=seed, unlabelled=unlabelled, vat=vat)[0]


def test_training_with_vat_learns_is_reproducible_and_differs_from_clean_training():
    with_vat, again, clean = _fit(0.5), _fit(0.5), _fit(0.0)
    assert with_vat.history["val_loss"].iloc[-1] < with_vat.history["val_loss"].iloc[0]
    assert with_vat.history["val_loss"].tolist() == again.history["val_loss"].tolist()
    assert with_vat.history["train_loss"].tolist() != clean.history["train_loss"].tolist()


def test_vat_without_unlabelled_reviews_or_with_a_negative_size_is_refused():
    with pytest.raises(ValueError, match="unlabelled=loader"):
        _fit(0.5, unlabelled=False)
    with pytest.raises(ValueError, match="vat .* must be >= 0"):
        TrainConfig(vat=-0.1)


def test_each_epoch_reads_its_own_order_whatever_came_before_and_cycles():
    loader = make_loader(unlabelled_reviews(tiny_prepared(), n=40), 16, 64, "head", shuffle=True, seed=0,
                         binary=False)
    first = [b.index.tolist() for _, b in zip(range(3), _stream(loader, 2))]
    _ = [b for _, b in zip(range(7), _stream(loader, 1))]  # another epoch read in between
    assert [b.index.tolist() for _, b in zip(range(3), _stream(loader, 2))] == first  # as a resumed run reads it
    assert [b.index.tolist() for _, b in zip(range(3), _stream(loader, 3))] != first
    cycled = [b for _, b in zip(range(8), _stream(loader, 1))]  # 3 batches per pass: it goes round
    assert sorted(i for b in cycled[:3] for i in b.index.tolist()) == list(range(40))
