"""The same seed on the same machine gives the same numbers: a small model trained twice, each time in a fresh
process, agrees in every metric, every epoch of its history and every weight."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TRAIN = textwrap.dedent("""
    import hashlib, json, sys
    sys.path.insert(0, {tests!r})
    import torch
    torch.set_num_threads(1)
    from tiny_data import tiny_params, tiny_prepared
    from sentiment_lib import experiment
    from sentiment_lib.runtime import Runtime
    prepared = tiny_prepared(n_train=96, n_val=32, n_test=40)
    params = tiny_params(epochs=3, hidden_size=16, embed_dim=32, lr=0.01, batch_size=16)
    run = experiment.train(experiment.job("bilstm_pool", prepared, params), device="cpu",
                           runtime=Runtime(checkpoints=False))
    weights = hashlib.sha256(b"".join(t.detach().numpy().tobytes() for t in run.model.state_dict().values()))
    print(json.dumps({{"test": run.test, "history": run.fit.history.drop(columns=["seconds"]).to_dict("list"),
                      "best_epoch": run.fit.best_epoch, "weights": weights.hexdigest(),
                      "probabilities": run.test_prob.tolist()}}))
""")


@pytest.mark.slow  # two fresh Python processes
def test_the_same_seed_in_fresh_processes_gives_the_same_numbers():
    tests = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONHASHSEED": "random"}  # hash seeds differ between the two processes
    outputs = [json.loads(subprocess.run([sys.executable, "-c", TRAIN.format(tests=tests)], capture_output=True,
                                         text=True, check=True, env=env, timeout=300).stdout.strip().splitlines()[-1])
               for _ in range(2)]
    assert outputs[0] == outputs[1]
    assert len(outputs[0]["history"]["val_loss"]) >= 1 and outputs[0]["test"]["accuracy"] > 0.5
