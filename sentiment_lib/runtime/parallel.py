"""Independent trainings side by side: worker processes with one thread each.

A recurrent network's training on a CPU is a long chain of small matrix products (one per time step), which a
second thread barely speeds up, while two one-thread trainings side by side each run about as fast as alone
(docs/measurements.md, "Trainings side by side"). So where a notebook trains
several models that do not depend on each other (04's architectures, the seeds of a spread, the ablations, the
ladder's rows), :func:`run_in_workers` runs them in ``processes`` worker processes, one thread each, and
returns their results in the order given.

- ``processes`` (the ``PROCESSES`` parameter, :func:`worker_count`): 0 is one per core (at most one per task),
  1 runs every task in the calling process one after another, with torch's default threads (the way a GPU or
  a one-core machine runs them).
- A task's result depends only on its inputs and its thread count, never on which worker ran it or what ran
  beside it: a worker always computes with 1 thread, so the same seed on the same machine gives the same
  numbers with 2 workers or 16. (With ``processes=1`` the calling process keeps its threads, so its numbers
  are those of a 2-thread run: a little different, as any change of thread count makes them.)
- Every worker keeps its share of the freed memory a training may keep for speed
  (:func:`sentiment_lib.runtime.memory.share_freed_memory`), so side by side the process tree stays near one training's
  peak.
- Workers are fresh interpreters (``spawn``: no inherited OpenMP or file state); what every task needs
  (``shared``, e.g. the run's prepared data) is pickled once into a temporary file that each worker reads
  (passed as bytes, the pickle would stay alive beside its unpickled copy for the worker's whole life: the
  executor keeps its initialiser's arguments), the tasks' own arguments and results travel pickled. An error
  in a task is raised here, with the worker's traceback, after the other workers are stopped.
"""
from __future__ import annotations

import os
import pickle
import tempfile
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from multiprocessing import get_context
from typing import Any, Callable, Sequence

from tqdm.auto import tqdm

from ..profiles import check_processes

_SHARED: Any = None  # what every task of this worker needs: set once by _start_worker


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it, else ``os.cpu_count()``)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def worker_count(processes: int, tasks: int, device_type: str = "cpu") -> int:
    """How many processes run ``tasks`` tasks: 1 on a GPU (one device, one process) or for a single task;
    ``processes`` when given (> 0); else one per usable core. Never more than ``tasks``."""
    check_processes(processes)
    if device_type != "cpu" or tasks <= 1:
        return 1
    wanted = processes if processes > 0 else usable_cores()
    return max(1, min(wanted, tasks))


def _start_worker(shared_path: str, environment: dict[str, str], workers: int) -> None:
    """Worker initialiser: one thread, its share of the kept freed memory, no progress bars, the caller's
    settings, the shared inputs (unpickled from ``shared_path``)."""
    global _SHARED
    os.environ.update(environment)
    import torch

    from .memory import share_freed_memory

    torch.set_num_threads(1)
    share_freed_memory(workers)
    with open(shared_path, "rb") as f:
        _SHARED = pickle.load(f)


def _call(function: Callable[[Any, Any], Any], task: bytes) -> bytes:
    return pickle.dumps(function(_SHARED, pickle.loads(task)), protocol=pickle.HIGHEST_PROTOCOL)


def run_in_workers(function: Callable[[Any, Any], Any], tasks: Sequence[Any], shared: Any, processes: int = 0, *,
                   device_type: str = "cpu", desc: str = "trainings", progress: bool = False) -> list[Any]:
    """``[function(shared, task) for task in tasks]``, computed by :func:`worker_count` processes.

    ``function`` must be importable by name (a module-level function); ``shared``, every task and every result
    must pickle. With one process the calls run here, in order. ``progress`` shows a bar over finished tasks.
    """
    tasks = list(tasks)
    workers = worker_count(processes, len(tasks), device_type)
    if workers == 1:
        return [function(shared, task) for task in tqdm(tasks, desc=desc, disable=not progress, leave=False)]
    # settings the tasks read from the environment (precision, device, where the run directory is), as here;
    # progress bars off (a worker's bar would interleave with the others')
    environment = {k: v for k, v in os.environ.items() if k.startswith("SENTIMENT_") or k.startswith("IMDB_")}
    environment["SENTIMENT_PROGRESS"] = "0"
    with tempfile.TemporaryDirectory(prefix="sentiment-workers-") as folder:
        shared_path = os.path.join(folder, "shared.pickle")
        with open(shared_path, "wb") as f:
            pickle.dump(shared, f, protocol=pickle.HIGHEST_PROTOCOL)
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"), initializer=_start_worker,
                                   initargs=(shared_path, environment, workers))
        return _collect(pool, function, tasks, workers, desc, progress)


def _collect(pool: ProcessPoolExecutor, function: Callable[[Any, Any], Any], tasks: list[Any], workers: int,
             desc: str, progress: bool) -> list[Any]:
    """Submit ``tasks`` to ``pool``, wait for them (stopping the pool at the first error or an interrupt) and
    return their results in order; the pool is shut down either way."""
    try:
        futures = [pool.submit(_call, function, pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL))
                   for task in tasks]
        with tqdm(total=len(futures), desc=f"{desc} ({workers} processes)", disable=not progress, leave=False) as bar:
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                bar.update(len(done))
                failed = next((f for f in done if f.exception() is not None), None)
                if failed is not None:
                    raise failed.exception()
        results = [pickle.loads(f.result()) for f in futures]
    except BaseException:  # a task failed, or the user interrupted: stop the others now, not after their task
        _stop(pool)
        raise
    pool.shutdown(wait=True)
    return results


def _stop(pool: ProcessPoolExecutor) -> None:
    """Terminate ``pool``'s workers (a task's half-written checkpoint is never read: they are written
    atomically) and release it."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
