"""Several worker processes share one study through a real PostgreSQL server.

The ``postgres`` fixture (``tests/services/conftest.py``) starts PostgreSQL on 127.0.0.1 and stops it
afterwards; ``.ci/run`` installs the server when the machine lacks it. Each worker is the command a user runs on
each machine: ``python -m sentiment_lib tune --storage postgresql://… --study NAME``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import optuna
import pytest

from sentiment_lib.tuning import study as studies
from sentiment_lib.tuning.storage import check_storage_url

from tiny_data import save_tiny_prepared

pytestmark = pytest.mark.slow  # starts a server: `make unit` leaves it out, `make test` runs it

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 2


def start_workers(url: str, study: str, *args: str) -> list[subprocess.Popen]:
    command = [sys.executable, "-m", "sentiment_lib", "tune", "--profile", "smoke", "--storage", url,
               "--study", study, "--device", "cpu", "--threads", "1", *args]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(WORKERS)]


def finish(workers: list[subprocess.Popen]) -> list[dict]:
    summaries = []
    for worker in workers:
        try:
            out, err = worker.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            worker.kill()
            out, err = worker.communicate()
        assert worker.returncode == 0, f"worker failed ({worker.returncode}):\n{err[-4000:]}"
        summaries.append(json.loads(out))
    return summaries


def rows_in_database(server: PostgresServer, database: str, study: str) -> tuple[int, int]:
    """(trial rows, distinct trial numbers) of ``study``, counted by SQL in the server itself."""
    connection = server.connect(database)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*), count(DISTINCT t.number) FROM trials t "
                           "JOIN studies s ON s.study_id = t.study_id WHERE s.study_name = %s", (study,))
            return cursor.fetchone()
    finally:
        connection.close()


def test_workers_share_one_study_and_record_each_trial_once(postgres):
    save_tiny_prepared("smoke")
    url = postgres.create_database("shared_exact")
    per_worker = 3
    finish(start_workers(url, "shared", "--worker-trials", str(per_worker)))

    study = optuna.load_study(study_name="shared", storage=check_storage_url(url))  # the installed driver
    trials = study.get_trials()
    total = WORKERS * per_worker
    assert len(trials) == total
    assert sorted(t.number for t in trials) == list(range(total))
    assert all(t.state in studies.FINISHED for t in trials)
    assert rows_in_database(postgres, "shared_exact", "shared") == (total, total)
    # Both workers did their share, and they did not draw the same configurations.
    assert sorted(Counter(t.user_attrs["worker"] for t in trials).values()) == [per_worker] * WORKERS
    assert len({json.dumps(t.params, sort_keys=True) for t in trials}) == total


def test_workers_fill_a_study_up_to_its_target(postgres):
    save_tiny_prepared("smoke")
    url = postgres.create_database("shared_target")
    target = 4
    summaries = finish(start_workers(url, "target", "--trials", str(target)))

    study = optuna.load_study(study_name="target", storage=check_storage_url(url))
    finished = studies.finished_trials(study)
    # Workers stop once the study has its trials; one may finish a trial it had already started.
    assert target <= len(finished) <= target + WORKERS - 1
    assert len({t.number for t in study.trials}) == len(study.trials)
    assert rows_in_database(postgres, "shared_target", "target")[0] == len(study.trials)
    assert max(s["n_finished"] for s in summaries) == len(finished)
