"""parallel: independent trainings side by side in worker processes of one thread each."""
import os
import tempfile

import numpy as np
import pytest
import torch

from sentiment_lib import experiment
from sentiment_lib.runtime import Runtime, parallel
from sentiment_lib.runtime.memory import keep_freed_memory, step_hook

from tiny_data import tiny_params, tiny_prepared


def whoami(shared, task):
    """A task: what it was given, and where and how it ran (module level: a worker imports it by name)."""
    return {"shared": shared, "task": task, "pid": os.getpid(), "threads": torch.get_num_threads(),
            "progress": os.environ.get("SENTIMENT_PROGRESS"),
            "freed_mib": _freed_memory_mib()}


def _freed_memory_mib() -> int:
    """The freed memory (MiB) a training's step hook here would keep with a 1024 MiB budget."""
    limit = step_hook(torch.device("cpu"), limit_mib=1024).limit // 2 ** 20
    keep_freed_memory(False)  # leave this process's allocator as it was
    return limit


def fail_on_two(shared, task):
    if task == 2:
        raise ValueError("task 2 is broken")
    return task


def test_worker_count():
    assert parallel.worker_count(0, 5, "cuda") == 1  # one device, one process
    assert parallel.worker_count(0, 1) == 1 and parallel.worker_count(4, 1) == 1  # one task: here
    assert parallel.worker_count(3, 10) == 3 and parallel.worker_count(3, 2) == 2  # never more than the tasks
    assert parallel.worker_count(0, 100) == parallel.usable_cores()
    assert parallel.worker_count(1, 100) == 1
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="PROCESSES must be an integer >= 0"):
            parallel.worker_count(bad, 3)


def test_tasks_run_in_workers_with_one_thread_and_come_back_in_order():
    results = parallel.run_in_workers(whoami, ["a", "b", "c"], shared={"data": [1, 2]}, processes=2)
    assert [r["task"] for r in results] == ["a", "b", "c"]
    assert all(r["shared"] == {"data": [1, 2]} for r in results)
    pids = {r["pid"] for r in results}
    assert os.getpid() not in pids and len(pids) <= 2  # none ran here; at most two workers
    assert all(r["threads"] == 1 and r["progress"] == "0" for r in results)
    assert all(r["freed_mib"] == 512 for r in results)  # two workers: half the kept freed memory each


def test_one_process_runs_the_tasks_here_in_order():
    results = parallel.run_in_workers(whoami, [1, 2], shared=None, processes=1)
    assert [r["task"] for r in results] == [1, 2] and {r["pid"] for r in results} == {os.getpid()}
    assert all(r["freed_mib"] == 1024 for r in results)  # alone, this process keeps the whole budget


def test_an_error_in_a_task_is_raised_here():
    with pytest.raises(ValueError, match="task 2 is broken"):
        parallel.run_in_workers(fail_on_two, [1, 2, 3, 4], shared=None, processes=2)


def test_a_training_in_a_worker_is_the_one_thread_training_here():
    """What a worker trains depends on the training alone: the same weights and test probabilities as the same
    training run in this process with one thread, in the order given, each training's own params kept."""
    prepared = tiny_prepared(n_train=64, n_val=32, n_test=32)
    params = tiny_params(epochs=2, hidden_size=8, embed_dim=16, lr=0.01, batch_size=16, embeddings="random",
                         processes=2)
    no_checkpoints = Runtime(checkpoints=False)

    def jobs(params):
        return [experiment.job("lstm", prepared, params), experiment.job("bilstm_pool", prepared, params),
                experiment.job("lstm", prepared, params, seed=7, label="lstm (seed 7)")]

    side_by_side = experiment.train_many(jobs(params), device="cpu", runtime=no_checkpoints)
    assert [r.name for r in side_by_side] == ["lstm", "bilstm_pool", "lstm (seed 7)"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        here = experiment.train_many(jobs(params.replace(processes=1)), device="cpu", runtime=no_checkpoints)
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(side_by_side, here):
        assert a.configuration == b.configuration and a.fit.epochs_run == b.fit.epochs_run
        for (name, x), (_, y) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
            assert torch.equal(x, y), name
        assert np.array_equal(a.test_prob, b.test_prob)
    first = torch.cat([t.flatten() for t in side_by_side[0].model.state_dict().values()])
    seven = torch.cat([t.flatten() for t in side_by_side[2].model.state_dict().values()])
    assert not torch.equal(first, seven)  # the third job trained with its own seed


def test_workers_receive_the_data_without_the_review_texts():
    """Training reads the encoded splits only: what workers receive drops the reviews' texts (a copy; the
    notebook's own data keeps them), and training in this process gets the data untouched."""
    prepared = tiny_prepared()
    assert "text" in prepared.reviews.columns
    sent = experiment._without_texts(prepared, workers=True)
    assert "text" not in sent.reviews.columns and "text" in prepared.reviews.columns
    assert list(sent.reviews["label"]) == list(prepared.reviews["label"])
    assert sent.splits is prepared.splits and sent.vocab is prepared.vocab
    assert experiment._without_texts(prepared, workers=False) is prepared


def test_a_diverging_training_is_named(monkeypatch):
    prepared = tiny_prepared()
    params = tiny_params(processes=1)

    def diverge(*args, **kwargs):
        raise FloatingPointError("Validation loss is nan at epoch 1: training diverged.")

    monkeypatch.setattr(experiment, "train", diverge)
    with pytest.raises(FloatingPointError, match="^lstm \\(seed 9\\): Validation loss is nan"):
        experiment.train_many([experiment.job("lstm", prepared, params, label="lstm (seed 9)")], device="cpu")


def test_the_shared_inputs_file_is_removed_after_the_tasks_and_after_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert [r["shared"] for r in parallel.run_in_workers(whoami, [1, 2], shared="data", processes=2)] == ["data"] * 2
    with pytest.raises(ValueError, match="task 2 is broken"):
        parallel.run_in_workers(fail_on_two, [1, 2, 3], shared=None, processes=2)
    assert list(tmp_path.iterdir()) == []
