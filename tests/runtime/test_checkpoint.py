"""A training killed at any epoch (SIGKILL, in a real subprocess) and started again ends exactly where an
uninterrupted one ends; a finished training is reused; a changed input never resumes an old checkpoint."""
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TRAIN = textwrap.dedent("""
    import json, sys, time
    sys.path.insert(0, {tests!r})
    import torch
    torch.set_num_threads(1)
    from tiny_data import tiny_params, tiny_prepared
    from sentiment_lib import experiment
    from sentiment_lib.train import Callback
    pause = float(sys.argv[1])
    prepared = tiny_prepared(n_train=96, n_val=32, n_test=40)
    params = tiny_params(epochs=4, patience=4, hidden_size=16, embed_dim=32, lr=0.01, batch_size=16)

    class Report(Callback):
        def on_fit_start(self, state):  # the epochs a resumed training had run
            for row in state.rows:
                print("epoch", int(row["epoch"]), flush=True)

        def on_epoch_end(self, state, val):
            print("epoch", len(state.rows), flush=True)
            time.sleep(pause)  # the window in which the parent kills this process

    one = experiment.job("bilstm_pool", prepared, params)
    run = experiment.train(experiment.Job(**{{**vars(one), "progress": False}}), device="cpu", callbacks=[Report()])
    print(json.dumps({{"test": run.test, "val_loss": run.fit.history["val_loss"].tolist(),
                      "best_epoch": run.fit.best_epoch, "resumed": run.fit.resumed,
                      "probabilities": run.test_prob.round(7).tolist()}}), flush=True)
""")


def _train(env, pause=0.0, kill_after_epoch=None):
    """Run the training in a fresh process; SIGKILL it right after ``kill_after_epoch`` finished. Returns the
    printed result (or None when killed) and the epochs it reported."""
    child = subprocess.Popen([sys.executable, "-c", TRAIN.format(tests=str(Path(__file__).resolve().parents[1])), str(pause)],
                             stdout=subprocess.PIPE, text=True, env=env)
    epochs, result = [], None
    for line in child.stdout:
        if line.startswith("epoch"):
            epochs.append(int(line.split()[1]))
            if epochs[-1] == kill_after_epoch:
                child.send_signal(signal.SIGKILL)
                break
        elif line.startswith("{"):
            result = json.loads(line)
    child.wait(timeout=300)
    return result, epochs


@pytest.mark.slow  # fresh Python processes, one killed at each of several points
def test_a_killed_training_continues_to_the_same_result(tmp_path):
    base = {**os.environ}
    uninterrupted, _ = _train({**base, "SENTIMENT_ARTIFACTS": str(tmp_path / "straight")})
    assert uninterrupted["resumed"] is None and len(uninterrupted["val_loss"]) == 4

    env = {**base, "SENTIMENT_ARTIFACTS": str(tmp_path / "killed")}
    killed, seen = _train(env, pause=2, kill_after_epoch=1)  # killed after its first epoch
    assert killed is None and seen == [1]
    killed, seen = _train(env, pause=2, kill_after_epoch=3)  # resumed, replays epoch 1, killed after 3
    assert killed is None and seen == [1, 2, 3]
    resumed, seen = _train(env)
    assert seen == [1, 2, 3, 4] and resumed["resumed"] == "from epoch 4"
    for key in ("test", "val_loss", "best_epoch", "probabilities"):
        assert resumed[key] == uninterrupted[key], key

    reused, seen = _train(env)  # finished: the kept model, no training
    assert reused["resumed"] == "finished" and seen == [1, 2, 3, 4]
    assert reused["test"] == uninterrupted["test"]
    checkpoints = list((tmp_path / "killed" / "smoke" / "checkpoints").glob("*.pt"))
    assert len(checkpoints) == 1 and not list(checkpoints[0].parent.glob(".*tmp"))  # nothing half-written


def test_the_checkpoint_key_changes_with_every_input_of_the_training():
    import numpy as np

    from sentiment_lib import experiment, rundir
    from tiny_data import tiny_params, tiny_prepared

    prepared, params = tiny_prepared(), tiny_params()
    job = experiment.job("lstm", prepared, params)
    key = experiment.checkpoint_path(job, None)
    assert key == experiment.checkpoint_path(experiment.job("lstm", prepared, params, label="other name"), None)
    others = [
        experiment.checkpoint_path(experiment.job("lstm", prepared, params, lr=0.02), None),
        experiment.checkpoint_path(experiment.job("lstm", prepared, params, seed=7), None),
        experiment.checkpoint_path(experiment.job("lstm", rundir.without_stopwords(prepared), params), None),
        experiment.checkpoint_path(experiment.job("lstm", tiny_prepared(seed=1), params), None),
        experiment.checkpoint_path(job, "bfloat16"),
        experiment.checkpoint_path(experiment.job("lstm", prepared, params, padded_batches=True), None),
        experiment.checkpoint_path(experiment.job(
            "lstm", prepared, params, targets={k: np.zeros(len(s), dtype=int) for k, s in prepared.splits.items()},
            num_classes=2), None),
    ]
    assert key not in others and len(set(others)) == len(others)


def test_only_a_bidirectional_start_depends_on_the_backward_language_model():
    import dataclasses

    from sentiment_lib import experiment
    from tiny_data import tiny_params, tiny_prepared

    params = tiny_params()

    def keys(backward_fingerprint):
        prepared = tiny_prepared()
        prepared = dataclasses.replace(prepared, params={**prepared.params, "lm_fingerprint": "forward",
                                                         "lm_backward_fingerprint": backward_fingerprint})
        jobs = [experiment.job("attention_lstm", prepared, params, language_model=True, bidirectional=both)
                for both in (None, True)]
        return [experiment.checkpoint_path(one, None) for one in jobs]

    (one_way, both_ways), (one_way_again, both_ways_again) = keys("backward A"), keys("backward B")
    assert one_way == one_way_again  # a one-direction start reads the forward model only
    assert both_ways != both_ways_again and both_ways != one_way


SOURCE, CHECKSUM = os.environ.get("IMDB_SOURCE"), os.environ.get("IMDB_SHA256")  # before conftest hides them


def _chain(env, *only, kill_when=None):
    """``python -m sentiment_lib run --profile smoke --only …`` in its own process group; with ``kill_when``
    (a function of nothing), SIGKILL the runner and its kernel as soon as it returns true."""
    import time

    command = [sys.executable, "-m", "sentiment_lib", "run", "--profile", "smoke", "--no-html", "--only", *only]
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    while child.poll() is None:
        if kill_when is not None and kill_when():
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            return None
        time.sleep(0.05)
    return child.returncode


@pytest.mark.slow  # the real smoke chain (02, 03) three times, killed twice
@pytest.mark.skipif(not SOURCE, reason="needs the IMDB archive (IMDB_SOURCE, as .ci/run sets it)")
def test_a_killed_run_of_the_chain_continues_to_the_same_metrics(tmp_path):
    import time

    base = {**os.environ, "IMDB_SOURCE": SOURCE, "IMDB_SHA256": CHECKSUM or "", "SENTIMENT_PROGRESS": "0",
            "MPLBACKEND": "Agg", "SENTIMENT_DATA": str(tmp_path / "data")}
    straight = {**base, "SENTIMENT_ARTIFACTS": str(tmp_path / "a"), "SENTIMENT_REPORTS": str(tmp_path / "ra")}
    assert _chain(straight, "02", "03") == 0
    killed = {**base, "SENTIMENT_ARTIFACTS": str(tmp_path / "b"), "SENTIMENT_REPORTS": str(tmp_path / "rb")}
    checkpoints = tmp_path / "b" / "smoke" / "checkpoints"
    started = {}

    def two_seconds_into_02():  # a notebook executes in the run directory, and is published when it finishes
        if (tmp_path / "b" / "smoke" / "executed" / "02_preprocessing.ipynb").exists():
            started.setdefault("at", time.perf_counter())
        return "at" in started and time.perf_counter() - started["at"] > 2

    report = tmp_path / "rb" / "smoke"
    assert _chain(killed, "02", "03", kill_when=two_seconds_into_02) is None  # while 02 prepares the data
    assert not report.exists() or not list(report.iterdir())  # nothing half-run reached the report
    assert _chain(killed, "02", "03", kill_when=lambda: len(list(checkpoints.glob("*.pt"))) >= 2) is None  # in 03
    assert (report / "02_preprocessing.ipynb").exists() and not (report / "03_baseline.ipynb").exists()
    assert (tmp_path / "b" / "smoke" / "run.lock").exists()  # left by the killed runner, taken over next
    assert _chain(killed, "02", "03") == 0
    assert (report / "03_baseline.ipynb").exists()  # the resumed run completed it
    a = json.loads((tmp_path / "a" / "smoke" / "metrics.json").read_text())["models"]
    b = json.loads((tmp_path / "b" / "smoke" / "metrics.json").read_text())["models"]
    assert set(a) == set(b)
    for name in a:
        for metric in ("accuracy", "f1", "roc_auc", "val_loss", "epochs_run", "best_epoch"):
            assert a[name][metric] == b[name][metric], (name, metric)
    assert any(row.get("resumed") for row in b.values())  # the first trainings came from their checkpoints
    assert not any(row.get("resumed") for row in a.values())
