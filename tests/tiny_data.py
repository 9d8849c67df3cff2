"""Tiny runs for the tests: ``tiny_prepared()`` builds a run's prepared data from a made-up language (a few
sentiment words among neutral ones), small enough that a training or an Optuna trial takes a fraction of a
second; ``tiny_params()`` the ``smoke`` profile at matching sizes; ``wait_for`` polls a condition."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from sentiment_lib import profiles
from sentiment_lib.batching import EncodedSplit
from sentiment_lib.rundir import Prepared, prepared_dir, save_prepared
from sentiment_lib.text import PAD_TOKEN, UNK_TOKEN, Vocab

POSITIVE = ["good", "great", "superb", "loved", "wonderful"]
NEGATIVE = ["bad", "awful", "boring", "hated", "dull"]
NEUTRAL = [f"w{i}" for i in range(30)]


def _reviews(n: int, rng: np.random.Generator) -> tuple[list[list[str]], np.ndarray]:
    labels = np.arange(n) % 2
    reviews = []
    for label in labels:
        words = list(rng.choice(NEUTRAL, size=int(rng.integers(4, 30))))
        cue = POSITIVE if label == 1 else NEGATIVE
        for _ in range(int(rng.integers(1, 4))):
            words.insert(int(rng.integers(0, len(words) + 1)), str(rng.choice(cue)))
        reviews.append([str(w) for w in words])
    return reviews, labels


def tiny_prepared(n_train: int = 64, n_val: int = 32, n_test: int = 32, seed: int = 0,
                  profile: str = "smoke", embed_dim: int | None = 32) -> Prepared:
    """A complete ``Prepared`` (vocabulary, encoded splits, reviews table) of made-up reviews, with word
    vectors (len(vocab), ``embed_dim``) as 02 writes them (random here; ``embed_dim=None``: none)."""
    rng = np.random.default_rng(seed)
    vocab = Vocab([PAD_TOKEN, UNK_TOKEN, *POSITIVE, *NEGATIVE, *NEUTRAL])
    splits, frames = {}, []
    for subset, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        tokens, labels = _reviews(n, rng)
        ratings = np.where(labels == 1, 8, 3)
        splits[subset] = EncodedSplit([vocab.encode(t) for t in tokens], labels, ratings)
        frames.append(pd.DataFrame({"subset": subset, "split": "train" if subset != "test" else "test",
                                    "id": np.arange(n, dtype=np.int32), "rating": ratings.astype(np.int8),
                                    "label": labels.astype(np.int8), "text": [" ".join(t) for t in tokens]}))
    params = {"profile": profile, "remove_stopwords": False, "vocab_size": 4000, "min_freq": 1,
              "embeddings": "random" if embed_dim is None else "word2vec", "embed_dim": embed_dim}
    vectors = None
    if embed_dim is not None:
        vectors = rng.normal(0.0, 0.5, size=(len(vocab), embed_dim)).astype(np.float32)
        vectors[0] = 0.0
    return Prepared(params, vocab, splits, pd.concat(frames, ignore_index=True), vectors)


def save_tiny_prepared(profile: str = "smoke", **options) -> Prepared:
    """Write ``tiny_prepared()`` to the profile's run directory (``$SENTIMENT_ARTIFACTS/<profile>``)."""
    prepared = tiny_prepared(profile=profile, **options)
    save_prepared(prepared_dir(profile), prepared)
    return prepared


def tiny_params(**overrides) -> profiles.Params:
    """The smoke profile with the sizes that bound the search space pinned (the tests stay fast and
    comparable whatever the profile table says), and ``overrides`` (e.g. ``trial_epochs=2``). No language model
    (``lm_epochs=0``), as in :func:`tiny_prepared`: a test that searches its start says so. Trainings run in the
    test's process (``processes=1``): tests/test_parallel.py covers worker processes."""
    values = dict(max_len=128, hidden_size=32, embed_dim=32, n_trials=3, trial_epochs=1, epochs=2, patience=2,
                  seed=42, lm_epochs=0, processes=1)
    values.update(overrides)
    return profiles.resolve("smoke", **values)


def wait_for(predicate, timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate()`` until it is true or ``timeout`` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def tiny_network_and_batch(num_classes: int = 2):
    """A tiny BiLSTM-pooling network in eval mode (no dropout: every pass sees the same network) and a batch of
    6 padded reviews: (model, tokens (6, 9), lengths (6,)). For the losses of :mod:`sentiment_lib.adversarial`."""
    import torch

    from sentiment_lib.models import ModelConfig, build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(name="bilstm_pool", vocab_size=40, embed_dim=8, hidden_size=6,
                                    num_classes=num_classes))
    tokens = torch.randint(2, 40, (6, 9))
    lengths = torch.tensor([9, 7, 5, 4, 2, 1])
    tokens[torch.arange(9)[None, :] >= lengths[:, None]] = 0
    return model.eval(), tokens, lengths


def unlabelled_reviews(prepared: Prepared, n: int = 80) -> EncodedSplit:
    """The first ``n`` training reviews with labels -1, which a loss would choke on: nothing may read them."""
    ids = [np.asarray(x) for x in prepared.splits["train"].ids[:n]]
    return EncodedSplit(ids, np.full(n, -1))


def fit_with_unlabelled(epochs: int, seed: int = 3, callbacks=(), unlabelled: bool = True, noisy_val: bool = False,
                        **settings):
    """``train.fit`` of a tiny BiLSTM-pooling network on :func:`tiny_prepared` reviews, with a loader of
    :func:`unlabelled_reviews` (or none, ``unlabelled=False``) and ``TrainConfig`` ``settings`` (``vat``,
    ``entropy``, ``average``, ``also_raw``, ``patience``, ``lr``). ``noisy_val``: the validation reviews get
    random labels, so that the validation loss rises as the network learns (early stopping has work to do).
    Returns (the fit's result, the model, the train and val loaders)."""
    import torch

    from sentiment_lib.batching import make_loader
    from sentiment_lib.models import ModelConfig, build_model
    from sentiment_lib.train import TrainConfig, fit

    prepared = tiny_prepared(n_train=96, n_val=48, n_test=16)
    splits = dict(prepared.splits)
    if noisy_val:
        splits["val"] = splits["val"].with_labels(np.random.default_rng(seed).integers(0, 2, len(splits["val"])))
    loaders = {k: make_loader(splits[k], 32, 64, "head", shuffle=k == "train", seed=seed) for k in ("train", "val")}
    extra = make_loader(unlabelled_reviews(prepared), 32, 64, "head", shuffle=True, seed=seed, binary=False)
    torch.manual_seed(seed)
    model = build_model(ModelConfig(name="bilstm_pool", vocab_size=len(prepared.vocab), embed_dim=8, hidden_size=6))
    result = fit(model, loaders["train"], loaders["val"],
                 TrainConfig(**{**dict(epochs=epochs, lr=1e-2, patience=None, seed=seed, device="cpu",
                                       progress=False, num_threads=1), **settings}),
                 callbacks=callbacks, unlabelled=extra if unlabelled else None)
    return result, model, loaders
