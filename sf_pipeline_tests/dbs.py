"""Throwaway databases for tests: a uniquely named PostgreSQL database per test, a SQLite file per test.

PostgreSQL is expected on 127.0.0.1:5432 with trust auth; ``SF_PIPELINE_TEST_POSTGRES_URL`` may
name any existing database on another server (it is only used to create and drop the throwaway
ones). Creating, migrating and dropping a database each take a fraction of a second on a busy
machine, so databases are created in parallel batches ahead of need, migrated ones are cloned from
a template migrated once per test process, and dropping happens in the background.
"""

from __future__ import annotations

import atexit
import os
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import URL, create_engine, text
from sqlalchemy.engine import make_url

from sf_pipeline.storage.database import Database

POSTGRES_URL_ENV = "SF_PIPELINE_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"

BATCH = 6  # PostgreSQL creates several databases at once about as fast as one

_workers = ThreadPoolExecutor(max_workers=BATCH, thread_name_prefix="test-database")
_lock = threading.Lock()
_ready: dict[str | None, list[str]] = {}
_templates: dict[str, str] = {}


def _admin_url() -> URL:
    return make_url(os.environ.get(POSTGRES_URL_ENV, DEFAULT_POSTGRES_URL))


def _execute(statement: str) -> None:
    admin = create_engine(_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(statement))
    finally:
        admin.dispose()


def _drop(name: str) -> None:
    _execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _url_of(name: str) -> str:
    return _admin_url().set(database=name).render_as_string(hide_password=False)


def _create(template: str | None) -> str:
    name = f"sfp_test_{uuid.uuid4().hex[:16]}"
    _execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return name


def _take(template: str | None) -> str:
    """A new database, from a batch created in parallel ahead of need."""
    with _lock:
        ready = _ready.setdefault(template, [])
        if not ready:
            ready.extend(_workers.map(_create, [template] * BATCH))
        return ready.pop()


@atexit.register
def _drop_unused() -> None:
    # The worker pool is already shut down when atexit handlers run.
    for ready in _ready.values():
        for name in ready:
            _drop(name)


@contextmanager
def fresh_postgres_url(*, template: str | None = None) -> Iterator[str]:
    """The URL of a new PostgreSQL database (empty, or a copy of ``template``), dropped afterwards
    (in the background) even if connections to it are still open."""
    name = _take(template)
    try:
        yield _url_of(name)
    finally:
        _workers.submit(_drop, name)


def _migrated_template() -> str:
    """A migrated database to clone, made once per process and dropped when the process exits."""
    with _lock:
        if "migrated" not in _templates:
            name = f"sfp_template_{uuid.uuid4().hex[:16]}"
            _execute(f'CREATE DATABASE "{name}"')
            atexit.register(_drop, name)
            database = Database(_url_of(name))
            try:
                database.migrate()
            finally:
                database.dispose()
            _templates["migrated"] = name
        return _templates["migrated"]


def sqlite_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'sf_pipeline.db'}"


@contextmanager
def empty_database_url(backend: str, folder: Path) -> Iterator[str]:
    """The URL of an empty database: ``sqlite`` (a file in ``folder``) or ``postgres`` (a fresh one)."""
    if backend == "sqlite":
        yield sqlite_url(folder)
        return
    with fresh_postgres_url() as url:
        yield url


@contextmanager
def migrated_database(backend: str, folder: Path) -> Iterator[Database]:
    """A migrated ``Database`` on ``sqlite`` (a file in ``folder``) or ``postgres`` (a fresh
    database), disposed afterwards."""
    if backend == "sqlite":
        database = Database(sqlite_url(folder))
        database.migrate()
    else:
        context = fresh_postgres_url(template=_migrated_template())
        database = Database(context.__enter__())
    try:
        yield database
    finally:
        database.dispose()
        if backend != "sqlite":
            context.__exit__(None, None, None)
