"""Helpers for the tuning, worker and predict tests: tiny prepared data, and a throwaway PostgreSQL server.

``tiny_prepared()`` builds a run's prepared data from a made-up language (a few sentiment words among
neutral ones), small enough that an Optuna trial trains in a fraction of a second.

``PostgresServer`` runs a real PostgreSQL on 127.0.0.1 with a free port, a fresh data directory and a
socket directory of its own, installing the Debian package first (``apt-get``) when ``initdb``/``pg_ctl``
are not found. PostgreSQL refuses to run as root, so under root the server runs as the ``postgres`` system
user that the package creates.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

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


# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------


def find_postgres_bin() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl`` (PATH first, then Debian's versioned folders)."""
    for name in ("pg_ctl",):
        found = shutil.which(name)
        if found and shutil.which("initdb"):
            return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                      key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    return Path(versions[-1]).parent if versions else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """A throwaway PostgreSQL: ``start()``, ``create_database(name)`` -> URL, ``stop()`` (also removes its
    files). Trust authentication on loopback only; fsync off (test data)."""

    def __init__(self, bindir: Path):
        self.bindir = Path(bindir)
        self.port = free_port()
        # Not under pytest's tmp_path: its folders are private to root, and the server may run as postgres.
        self.root = Path(tempfile.mkdtemp(prefix="sentiment-pg-"))
        self.data, self.sockets, self.log = self.root / "data", self.root / "sockets", self.root / "server.log"
        self.user = "postgres" if os.geteuid() == 0 else None
        self.started = False

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command] if shutil.which("runuser") else \
                ["su", self.user, "-s", "/bin/sh", "-c", " ".join(f"'{c}'" for c in command)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            log = self.log.read_text()[-3000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(args[:1])} failed ({done.returncode}): {done.stderr[-3000:]}\n{log}")
        return done

    def start(self) -> "PostgresServer":
        self.sockets.mkdir(parents=True)
        if self.user:
            shutil.chown(self.root, self.user)
            shutil.chown(self.sockets, self.user)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.sockets} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")
        self.started = True
        return self

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"  # the README's form

    def connect(self, database: str = "postgres"):
        import psycopg2

        return psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=database)

    def create_database(self, name: str) -> str:
        connection = self.connect()
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        return self.url(name)

    def stop(self) -> None:
        try:
            if self.started:
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")
                self.started = False
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def wait_for(predicate, timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate()`` until it is true or ``timeout`` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
