"""Throwaway databases for tests: a uniquely named PostgreSQL database per test, a SQLite file per test.

PostgreSQL is expected on 127.0.0.1:5432 with trust auth (override with ``SF_PIPELINE_TEST_POSTGRES_URL``,
a URL of any existing database on the server, used to create and drop the throwaway ones).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from sf_pipeline.storage.database import Database

POSTGRES_URL_ENV = "SF_PIPELINE_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


@contextmanager
def fresh_postgres_url() -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped (even if still in use) afterwards."""
    admin_url = make_url(os.environ.get(POSTGRES_URL_ENV, DEFAULT_POSTGRES_URL))
    name = f"sfp_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield admin_url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


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
    """A migrated ``Database`` on ``sqlite`` or ``postgres``, disposed afterwards."""
    with empty_database_url(backend, folder) as url:
        database = Database(url)
        try:
            database.migrate()
            yield database
        finally:
            database.dispose()
