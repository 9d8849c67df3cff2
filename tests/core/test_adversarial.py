"""Adversarial training on the embeddings: the perturbation has the size asked, points up the loss and
spares padding; every model exposes one embedding call; a step with it trains, is reproducible and is refused
for a model without an embedding layer."""
import pytest
import torch
from torch import nn

from sentiment_lib import adversarial as adv
from sentiment_lib import experiment
from sentiment_lib.batching import make_loader
from sentiment_lib.models import MODELS, ModelConfig, build_model
from sentiment_lib.train import TrainConfig, fit

from tiny_data import tiny_params, tiny_prepared


def test_the_perturbation_has_the_asked_size_along_the_gradient_and_spares_padding():
    torch.manual_seed(0)
    embedded, grad = torch.randn(3, 5, 4) * 2.0, torch.randn(3, 5, 4)
    lengths = torch.tensor([5, 3, 1])
    mask = torch.arange(5)[None, :] < lengths[:, None]
    r = adv.perturbation(embedded, grad, mask, 0.5)
    assert r.shape == embedded.shape and not r.requires_grad
    assert torch.all(r[~mask] == 0)
    for i, n in enumerate(lengths.tolist()):
        rms = embedded[i, :n].pow(2).sum(-1).mean().sqrt()
        assert torch.isclose(r[i].norm(), 0.5 * rms, rtol=1e-5)  # epsilon word-vector lengths
        cosine = torch.nn.functional.cosine_similarity(r[i, :n].flatten(), grad[i, :n].flatten(), dim=0)
        assert cosine > 0.999  # along the loss gradient: the direction that raises the loss fastest
    assert torch.all(adv.perturbation(embedded, grad, mask, 0.0) == 0)
    with pytest.raises(ValueError, match="epsilon must be >= 0"):
        adv.perturbation(embedded, grad, mask, -1.0)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_embeds_once_in_batch_layout_and_a_perturbation_changes_its_output(name):
    torch.manual_seed(0)
    model = build_model(ModelConfig(name=name, vocab_size=30, embed_dim=6, hidden_size=5)).eval()
    tokens = torch.randint(2, 30, (4, 7))
    lengths = torch.tensor([7, 5, 2, 1])
    tokens[torch.arange(7)[None, :] >= lengths[:, None]] = 0
    with adv.captured(adv.embedding_of(model)) as found:
        clean = model(tokens, lengths)
    assert found["embedded"].shape == (4, 7, 6) and torch.equal(found["ids"], tokens)
    r = torch.zeros(4, 7, 6)
    r[0, 0] = 5.0
    with adv.perturbed(model.embedding, r):
        moved = model(tokens, lengths)
    assert not torch.isclose(moved[0], clean[0])
    assert torch.allclose(moved[1:], clean[1:])  # only review 0 was perturbed
    with adv.perturbed(model.embedding, torch.zeros(4, 7, 6)):
        assert torch.allclose(model(tokens, lengths), clean)
    with pytest.raises(ValueError, match="does not match"), adv.perturbed(model.embedding, torch.zeros(2, 7, 6)):
        model(tokens, lengths)
    assert not model.embedding._forward_hooks  # removed, also after the error


def test_the_perturbation_raises_the_loss_and_the_step_adds_both_gradients():
    from sentiment_lib.batching import Batch
    from sentiment_lib.train import classification_loss

    torch.manual_seed(0)
    model = build_model(ModelConfig(name="attention_lstm", vocab_size=40, embed_dim=8, hidden_size=6, dropout=0.0))
    tokens = torch.randint(2, 40, (6, 9))
    lengths = torch.tensor([9, 8, 5, 3, 2, 1])
    tokens[torch.arange(9)[None, :] >= lengths[:, None]] = 0
    labels = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    batch = Batch(tokens, lengths, labels, torch.arange(6))

    def loss_with(r=None):
        model.zero_grad()
        if r is None:
            loss = classification_loss(model(tokens, lengths), labels)
        else:
            with adv.perturbed(model.embedding, r):
                loss = classification_loss(model(tokens, lengths), labels)
        loss.backward()
        return float(loss.detach()), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    with adv.captured(model.embedding) as found:
        clean = classification_loss(model(tokens, lengths), labels)
    clean.backward()
    mask = torch.arange(9)[None, :] < lengths[:, None]
    r = adv.perturbation(found["embedded"], found["embedded"].grad, mask, 0.25)
    clean_loss, clean_grads = loss_with()
    perturbed_loss, perturbed_grads = loss_with(r)
    assert perturbed_loss > clean_loss  # pushed up the loss (no dropout here: the same network both times)
    assert loss_with(-r)[0] < clean_loss  # and the opposite way lowers it: the sign is the gradient's

    model.zero_grad()
    logits, loss = adv.adversarial_step(model, batch, classification_loss, 0.25)
    assert float(loss.detach()) == pytest.approx(clean_loss)
    for name, p in model.named_parameters():  # the step's gradient is the clean one plus the adversarial one
        torch.testing.assert_close(p.grad, clean_grads[name] + perturbed_grads[name], rtol=1e-5, atol=1e-6)
    assert not model.embedding._forward_hooks


def _fit(adversarial: float, seed: int = 0):
    prepared = tiny_prepared(n_train=96, n_val=32, n_test=8)
    loaders = {k: make_loader(prepared.splits[k], 32, 64, "head", shuffle=k == "train", seed=seed)
               for k in ("train", "val")}
    torch.manual_seed(seed)
    model = build_model(ModelConfig(name="bilstm_pool", vocab_size=len(prepared.vocab), embed_dim=8, hidden_size=6))
    result = fit(model, loaders["train"], loaders["val"],
                 TrainConfig(epochs=3, lr=1e-2, patience=None, seed=seed, device="cpu", progress=False,
                             adversarial=adversarial, num_threads=1))
    return model, result


def test_adversarial_training_learns_is_reproducible_and_differs_from_clean_training():
    model_a, with_at = _fit(0.5)
    model_b, again = _fit(0.5)
    _, clean = _fit(0.0)
    assert with_at.history["val_loss"].iloc[-1] < with_at.history["val_loss"].iloc[0]  # it learns
    assert with_at.history["val_loss"].tolist() == again.history["val_loss"].tolist()  # same seed, same run
    assert all(torch.equal(a, b) for a, b in zip(model_a.state_dict().values(), model_b.state_dict().values()))
    assert with_at.history["train_loss"].tolist() != clean.history["train_loss"].tolist()
    with pytest.raises(ValueError, match="adversarial .* must be >= 0"):
        TrainConfig(adversarial=-0.1)


def test_a_model_without_an_embedding_layer_is_refused_naming_the_fix():
    with pytest.raises(ValueError, match="adversarial=0"):
        adv.embedding_of(nn.Linear(3, 1))


def test_the_checkpoint_key_changes_with_adversarial_training(isolated_dirs):
    prepared, params = tiny_prepared(), tiny_params()
    key = experiment.checkpoint_path(experiment.job("lstm", prepared, params), None)
    assert experiment.checkpoint_path(experiment.job("lstm", prepared, params, adversarial=0.0), None) == key
    assert experiment.checkpoint_path(experiment.job("lstm", prepared, params, adversarial=0.5), None) != key
