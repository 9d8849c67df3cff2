"""Fixtures that start services: a throwaway PostgreSQL server for the shared-study tests.

PostgreSQL runs on 127.0.0.1 with a free port, a fresh data directory and a socket directory of its own, and is
stopped (its files removed) after the module, also when a test fails. It refuses to run as root, so under root
the server runs as the ``postgres`` system user that Debian's package creates. The server itself is installed by
``.ci/run`` (Debian's ``postgresql``), never by a test.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest


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


def _unavailable(reason: str):
    """Skip on a developer's machine that cannot have PostgreSQL; in CI ($CI set) that is a failure,
    so the shared-study check can never pass by being skipped."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the PostgreSQL workers test: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def postgres():
    pytest.importorskip("psycopg2", reason="psycopg2-binary (in the test extra) drives PostgreSQL from Optuna")
    bindir = find_postgres_bin()
    if bindir is None:
        _unavailable("no PostgreSQL server (initdb, pg_ctl) for the shared-study test: install Debian's postgresql "
                     "package (.ci/run does).")
    if os.geteuid() == 0:
        import pwd

        try:
            pwd.getpwnam("postgres")
        except KeyError:
            _unavailable("PostgreSQL refuses to run as root and there is no 'postgres' user to run it as "
                        "(create one, or run the tests as an ordinary user).")
    server = PostgresServer(bindir)
    try:
        server.start()
        yield server
    finally:
        server.stop()
