"""Virtual adversarial training: the divergence it minimises, the direction its power iteration finds, and
training with it on reviews without labels (reproducible, refused without them)."""
import numpy as np
import pytest
import torch

from sentiment_lib import adversarial as adv
from sentiment_lib.batching import EncodedSplit, make_loader
from sentiment_lib.models import ModelConfig, build_model
from sentiment_lib.train import TrainConfig, _stream, fit

from tiny_data import tiny_prepared


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


def _model_and_batch(name="bilstm_pool", num_classes=2):
    torch.manual_seed(0)
    model = build_model(ModelConfig(name=name, vocab_size=40, embed_dim=8, hidden_size=6, num_classes=num_classes))
    tokens = torch.randint(2, 40, (6, 9))
    lengths = torch.tensor([9, 7, 5, 4, 2, 1])
    tokens[torch.arange(9)[None, :] >= lengths[:, None]] = 0
    return model.eval(), tokens, lengths  # eval: no dropout, so every pass sees the same network


def test_the_power_iteration_finds_a_direction_that_moves_the_prediction_more_than_chance():
    model, tokens, lengths = _model_and_batch()
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
    model, tokens, lengths = _model_and_batch(num_classes=4)  # multi-class: softmax divergence
    model.train()
    adv.virtual_adversarial_loss(model, tokens, lengths, epsilon=0.5).backward()
    assert model.embedding.weight.grad is not None and model.embedding.weight.grad.abs().sum() > 0
    assert not model.embedding._forward_hooks  # the hooks are gone afterwards
    with pytest.raises(ValueError, match="epsilon > 0 and xi > 0"):
        adv.virtual_adversarial_loss(model, tokens, lengths, epsilon=0.0)


def _unlabelled(prepared, n=80):
    ids = [np.asarray(x) for x in prepared.splits["train"].ids[:n]]
    return EncodedSplit(ids, np.full(n, -1))  # labels a loss would choke on: VAT must not read them


def _fit(vat, seed=3, unlabelled=True):
    prepared = tiny_prepared(n_train=96, n_val=48, n_test=16)
    loaders = {k: make_loader(prepared.splits[k], 32, 64, "head", shuffle=k == "train", seed=seed)
               for k in ("train", "val")}
    extra = make_loader(_unlabelled(prepared), 32, 64, "head", shuffle=True, seed=seed, binary=False)
    torch.manual_seed(seed)
    model = build_model(ModelConfig(name="bilstm_pool", vocab_size=len(prepared.vocab), embed_dim=8, hidden_size=6))
    return fit(model, loaders["train"], loaders["val"],
               TrainConfig(epochs=3, lr=1e-2, patience=None, seed=seed, device="cpu", progress=False, vat=vat,
                           num_threads=1), unlabelled=extra if unlabelled else None)


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
    loader = make_loader(_unlabelled(tiny_prepared(), n=40), 16, 64, "head", shuffle=True, seed=0, binary=False)
    first = [b.index.tolist() for _, b in zip(range(3), _stream(loader, 2))]
    _ = [b for _, b in zip(range(7), _stream(loader, 1))]  # another epoch read in between
    assert [b.index.tolist() for _, b in zip(range(3), _stream(loader, 2))] == first  # as a resumed run reads it
    assert [b.index.tolist() for _, b in zip(range(3), _stream(loader, 3))] != first
    cycled = [b for _, b in zip(range(8), _stream(loader, 1))]  # 3 batches per pass: it goes round
    assert sorted(i for b in cycled[:3] for i in b.index.tolist()) == list(range(40))
