"""The application database: engine setup for SQLite and PostgreSQL, sessions, and migrations.

Several processes write at once (the Dagster daemon, sync runs, the CLI), so SQLite runs in WAL mode
with a busy timeout and enforced foreign keys. The schema is owned by the Alembic migrations shipped
in ``migrations/``; ``Database.migrate()`` runs them without an ``alembic.ini``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from sf_pipeline.errors import ConfigError
from sf_pipeline.settings import Settings, load_settings

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Any constant works: it only has to be the same in every process that migrates this database.
_MIGRATION_LOCK_ID = 0x5F_5049_5045  # "_PIPE"
# Alembic keeps the running migration's context in module globals: one migration per process at a time.
_MIGRATION_THREAD_LOCK = threading.Lock()


def parse_database_url(url: str) -> URL:
    """Check a database URL names a supported backend, with an explicit driver for PostgreSQL."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"not a valid database URL: {url!r}", key="SF_PIPELINE_DATABASE_URL") from exc
    backend, driver = parsed.get_backend_name(), parsed.drivername.partition("+")[2]
    if backend == "postgresql" and not driver:
        raise ConfigError(
            "PostgreSQL URLs must name their driver: write postgresql+psycopg2://... instead of "
            "postgresql://... (without it SQLAlchemy picks psycopg 3, which is not installed and "
            "which dagster-postgres does not support)",
            key="SF_PIPELINE_DATABASE_URL",
        )
    if backend == "postgresql" and driver != "psycopg2":
        raise ConfigError(
            f"unsupported PostgreSQL driver {driver!r}; use postgresql+psycopg2://",
            key="SF_PIPELINE_DATABASE_URL",
        )
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"unsupported database {backend!r}; use sqlite:///path/to/file.db or postgresql+psycopg2://...",
            key="SF_PIPELINE_DATABASE_URL",
        )
    return parsed


def _configure_sqlite_connection(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        _use_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _use_wal(cursor: sqlite3.Cursor) -> None:
    # Switching a database to WAL needs a moment of exclusive access, and SQLite reports "database
    # is locked" at once instead of waiting on the busy timeout: retry until the timeout. WAL mode
    # is stored in the file, so once any connection has switched, the others only read it.
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] in ("wal", "memory"):
                return
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _create_engine(url: URL) -> Engine:
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _configure_sqlite_connection)
        return engine
    return create_engine(url, pool_pre_ping=True)


class Database:
    """One application database. Cheap to keep for a process's lifetime; ``dispose()`` when done."""

    def __init__(self, url: str) -> None:
        self.url = parse_database_url(url)
        self.engine = _create_engine(self.url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Database:
        """The configured database, its folder created and its schema migrated to the latest version."""
        settings = settings or load_settings()
        settings.home.mkdir(parents=True, exist_ok=True)
        database = cls(settings.database_url)
        if database.dialect == "sqlite" and database.url.database not in (None, "", ":memory:"):
            Path(str(database.url.database)).expanduser().parent.mkdir(parents=True, exist_ok=True)
        database.migrate()
        return database

    @property
    def dialect(self) -> str:
        return self.url.get_backend_name()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits when the block ends normally and rolls back when it raises."""
        with self._sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def migrate(self) -> None:
        """Upgrade the schema to the latest migration. Safe to call from several processes at once."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with _MIGRATION_THREAD_LOCK, self.engine.begin() as connection:
            # Serialise concurrent migrators; the loser then sees the schema already at head.
            if self.dialect == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def dispose(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({self.url.render_as_string(hide_password=True)!r})"
