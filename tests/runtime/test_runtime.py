"""The runtime plugs in from the side: the core imports none of it, and with all of it off a training gives
the same model on the same machine (only slower)."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from sentiment_lib import experiment
from sentiment_lib.runtime import Runtime

from tiny_data import tiny_params, tiny_prepared

CORE = ("text", "batching", "models", "train", "metrics", "adversarial", "language_model")


def test_the_core_imports_none_of_the_runtime():
    code = ("import sys\n"
            + "".join(f"import sentiment_lib.{name}\n" for name in CORE)
            + "print(sorted(m for m in sys.modules if m.startswith('sentiment_lib.runtime')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("name", ["lstm", "bilstm_pool", "attention_lstm"])
def test_with_the_runtime_off_a_training_gives_the_same_model(name, isolated_dirs):
    torch.set_num_threads(1)
    prepared = tiny_prepared(n_train=96, n_val=32, n_test=40)
    params = tiny_params(epochs=2, hidden_size=12, embed_dim=16, lr=0.01, batch_size=16, embeddings="random")
    job = experiment.job(name, prepared, params)
    fast = experiment.train(job, device="cpu", runtime=Runtime())
    plain = experiment.train(job, device="cpu", runtime=Runtime.plain())
    assert fast.model.recurrence == "dense" and plain.model.recurrence == "packed"
    assert fast.fit.best_epoch == plain.fit.best_epoch
    np.testing.assert_allclose(fast.fit.history["val_loss"], plain.fit.history["val_loss"], rtol=1e-4)
    for (key, a), (_, b) in zip(fast.model.state_dict().items(), plain.model.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4, msg=key)
    np.testing.assert_allclose(fast.test_prob, plain.test_prob, atol=1e-4)
    assert fast.test["accuracy"] == plain.test["accuracy"]


def test_the_environment_turns_the_runtime_off_and_refuses_other_values(monkeypatch):
    monkeypatch.setenv("SENTIMENT_RUNTIME", "plain")
    assert Runtime.from_environment() == Runtime.plain()
    assert Runtime.plain().processes(4) == 1 and Runtime().processes(4) == 4
    monkeypatch.setenv("SENTIMENT_RUNTIME", "fast")
    with pytest.raises(ValueError, match="plain"):
        Runtime.from_environment()
    monkeypatch.delenv("SENTIMENT_RUNTIME")
    assert Runtime.from_environment() == Runtime()


def test_the_runtime_s_callbacks_and_what_a_cpu_gets():
    from sentiment_lib.runtime.checkpoint import Checkpoint
    from sentiment_lib.runtime.memory import KeepFreedMemory

    kinds = [type(c) for c in Runtime().callbacks(torch.device("cpu"), checkpoint="x.pt")]
    assert kinds == [KeepFreedMemory, Checkpoint]  # the checkpoint is written before any caller's callback runs
    assert Runtime().callbacks(torch.device("meta")) == []
    assert Runtime.plain().callbacks(torch.device("cpu"), checkpoint="x.pt") == []
