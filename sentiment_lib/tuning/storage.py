"""Where a study lives: its storage URL, opening it with heartbeats, and reading it back.

**Storage and resume.** The study lives in a database: by default the SQLite file
``artifacts/<profile>/optuna.db``; ``$OPTUNA_STORAGE`` or ``storage=`` names any Optuna RDB URL instead
(``postgresql://user:password@host:5432/db``, ``mysql+pymysql://…``). Optuna commits each trial when it
ends, so a run killed in the middle loses only the trial it was running. :func:`run_study` with
``n_trials=N`` runs only the trials missing to reach N finished (complete or pruned) trials: rerunning the
notebook or the runner continues the study and redoes nothing. Trials are sent heartbeats; a trial whose
process died (no heartbeat for ``GRACE_PERIOD`` seconds) is marked failed by the next run, which retries its
parameters once.

**Several workers, several machines.** Every process that opens the same storage URL and study name works
on the same study. Prepare the data on each machine first (``python -m sentiment_lib run --profile quick
--only 01 02``, or copy ``artifacts/quick/prepared/``: the study refuses a worker whose vocabulary differs),
then on each machine::

    export OPTUNA_STORAGE=postgresql://optuna:secret@db.example.org:5432/optuna
    python -m sentiment_lib tune --profile quick --trials 40          # until the study has 40 trials
    python -m sentiment_lib tune --profile quick --worker-trials 10   # or: exactly 10 more, from this worker

``--trials N`` is a target for the whole study (workers stop when it is reached; with k workers it can be
overshot by up to k - 1 trials that were already running); ``--worker-trials K`` makes this worker run
exactly K trials. Several workers on one machine should share its cores: ``--threads``. Notebook 05 then
reads the shared study with ``OPTUNA_STORAGE`` set (or ``load_study``). SQLite works for workers on one
machine only (file locking over network filesystems is unreliable); use PostgreSQL or MySQL across machines.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
import warnings
from contextlib import contextmanager
from typing import Any, Iterator

import optuna

from .. import config

STORAGE_ENV = "OPTUNA_STORAGE"
HEARTBEAT_INTERVAL = 30  # seconds between a running trial's heartbeats
GRACE_PERIOD = 120       # a running trial without a heartbeat for this long is stale (its process died)


ACCEPTED_FORMS = ("sqlite:///path/to/study.db (three slashes, then the file's path), "
                  "postgresql://user:password@host:5432/database, or mysql+pymysql://user:password@host/database")
DRIVERS = {"sqlite", "postgresql", "postgresql+psycopg2", "mysql", "mysql+pymysql"}


def check_storage_url(url: str, profile: str | None = None) -> str:
    """``url`` checked and made usable: a ``ValueError`` naming the accepted forms for anything that is not a
    database URL of a known kind (a plain path, ``sqlite:/x.db``, ``postgres://``), for a SQLite file whose folder
    does not exist, and for another profile's own study database (a study is never added there unasked);
    ``postgresql://`` is given the installed driver (``postgresql+psycopg2://``: SQLAlchemy 2 would load psycopg 3,
    which the project does not install)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(f"The Optuna storage {url!r} is not a database URL. Use {ACCEPTED_FORMS}.") from None
    if parsed.drivername == "postgres":
        raise ValueError(f"The Optuna storage {safe_url(url)!r} says postgres://, which SQLAlchemy does not read: "
                         f"write postgresql://… instead (accepted: {ACCEPTED_FORMS}).")
    if parsed.drivername not in DRIVERS:
        raise ValueError(f"The Optuna storage {safe_url(url)!r} names the database kind {parsed.drivername!r}, "
                         f"which this project does not install a driver for. Use {ACCEPTED_FORMS}.")
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg2")
    if parsed.drivername == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise ValueError(f"The Optuna storage {url!r} names no database file (an in-memory study is lost when "
                             f"the run ends). Use {ACCEPTED_FORMS}.")
        folder = Path(parsed.database).expanduser().resolve().parent
        if not folder.is_dir():
            raise ValueError(f"The Optuna storage {url!r} is a SQLite file in {folder}, which does not exist: create "
                             "the folder, or give another path (sqlite:///path/to/study.db).")
        if profile is not None:
            from ..profiles import PROFILES

            owner = [other for other in PROFILES if other != profile
                     and Path(parsed.database).expanduser().resolve() == config.study_db_path(other).resolve()]
            if owner:
                raise ValueError(f"The Optuna storage {url!r} is the {owner[0]} run's own study database; a {profile} "
                                 f"study does not belong there. Unset {STORAGE_ENV} (the {profile} run keeps its "
                                 f"study in {config.study_db_path(profile)}), or pass another --storage.")
    return parsed.render_as_string(hide_password=False)


def study_storage(profile: str, storage: str | None = None) -> str:
    """The storage URL: ``storage`` if given, else ``$OPTUNA_STORAGE`` (either checked by
    :func:`check_storage_url`), else SQLite in the run directory (``sqlite:///…/artifacts/<profile>/optuna.db``,
    :func:`sentiment_lib.config.study_db_path`; the folder is created)."""
    url = storage or os.environ.get(STORAGE_ENV)
    if url:
        return check_storage_url(url, profile)
    path = config.study_db_path(profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def default_study_name(profile: str) -> str:
    return f"sentiment-{profile}"


def safe_url(url: str) -> str:
    """``url`` with any password hidden (for messages and notebooks)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL sqlalchemy can parse: show it as given
        return url


def shown_url(url: str) -> str:
    """``url`` as a reader should see it: any password hidden (:func:`safe_url`), and a SQLite file given
    relative to the project (:func:`sentiment_lib.config.shown_path`), not by the build machine's path."""
    prefix = "sqlite:///"
    if url.startswith(prefix):
        return prefix + config.shown_path(url[len(prefix):])
    return safe_url(url)


@contextmanager
def quiet_optuna(verbose: bool) -> Iterator[None]:
    """Silence Optuna's per-trial log lines (they carry timestamps) and its experimental warnings."""
    level = optuna.logging.get_verbosity()
    if not verbose:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(level)


def open_storage(url: str, heartbeat_interval: int | None = HEARTBEAT_INTERVAL,
                 grace_period: int | None = GRACE_PERIOD, attempts: int = 5) -> optuna.storages.RDBStorage:
    """An Optuna ``RDBStorage`` for ``url`` with heartbeats (``None`` turns them off): a trial whose
    process died is failed after ``grace_period`` seconds by the next run, which retries it once.

    SQLite waits up to 60 s for a lock (several local workers); server databases check connections before
    use. Creating the tables is retried: workers starting together on an empty database race to create
    them.
    """
    from sqlalchemy.exc import SQLAlchemyError

    engine_kwargs: dict[str, Any] = ({"connect_args": {"timeout": 60}} if url.startswith("sqlite")
                                     else {"pool_pre_ping": True})
    for attempt in range(1, attempts + 1):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                heartbeat: dict[str, Any] = {}
                if heartbeat_interval:
                    retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)
                    heartbeat = dict(heartbeat_interval=int(heartbeat_interval),
                                     grace_period=int(grace_period or 2 * heartbeat_interval),
                                     heartbeat_stale_trial_callback=retry)
                return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **heartbeat)
        except SQLAlchemyError:
            if attempt == attempts:
                raise
            time.sleep(0.5 * attempt)
    raise AssertionError("unreachable")


def load_study(profile: str, storage: str | None = None, study_name: str | None = None) -> optuna.Study:
    """Open an existing study to read it (no trials run); ``KeyError`` naming the fix if there is none."""
    url = study_storage(profile, storage)
    name = study_name or default_study_name(profile)
    try:
        return optuna.load_study(study_name=name, storage=open_storage(url, heartbeat_interval=None))
    except KeyError:
        raise KeyError(f"No study {name!r} in {safe_url(url)}. Run one first (notebook 05, or "
                       f"python -m sentiment_lib tune --profile {profile}).") from None
