"""The application database: engine setup for SQLite and PostgreSQL, sessions, and migrations.

Several processes write at once (the Dagster daemon, sync runs, the CLI), so SQLite runs in WAL mode
with a busy timeout and enforced foreign keys. The schema is owned by the Alembic migrations shipped
in ``migrations/``; ``Database.migrate()`` runs them without an ``alembic.ini``, and only when the
stored revision is not the latest (so a command that only reads starts without loading Alembic).

A database the settings name explicitly is checked before use: a SQLite file's folder must exist
(only the default file in the home folder is created), and a server that does not answer is a
one-line error. The home folder is private (0700) and a new SQLite file is created 0600; SQLite
gives its ``-wal`` and ``-shm`` files the database file's permissions.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from sf_pipeline.errors import ConfigError, UserError
from sf_pipeline.settings import Settings, load_settings

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Any constant works: it only has to be the same in every process that migrates this database.
_MIGRATION_LOCK_ID = 0x5F_5049_5045  # "_PIPE"
# Alembic keeps the running migration's context in module globals: one migration per process at a time.
_MIGRATION_THREAD_LOCK = threading.Lock()
POSTGRES_CONNECT_TIMEOUT_S = 10


class DatabaseUnavailableError(UserError):
    """The database server did not answer: the command could not run (exit 1)."""

    exit_code = 1


def sqlite_file(url: str | URL) -> Path | None:
    """The file of a SQLite URL; ``None`` for PostgreSQL and in-memory SQLite."""
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database)).expanduser()


def head_revision() -> str | None:
    """The newest migration's revision id, read from the version files' text: parsing two
    assignments is much cheaper than loading Alembic's script directory on every command."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        body = path.read_text(encoding="utf-8")
        found = re.search(r"^revision\s*(?::\s*str\s*)?=\s*[\"']([^\"']+)[\"']", body, re.M)
        parent = re.search(r"^down_revision\s*(?::[^=]*)?=\s*[\"']([^\"']+)[\"']", body, re.M)
        if found:
            revisions.add(found.group(1))
        if parent:
            parents.add(parent.group(1))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def describe_connection_error(url: URL, exc: DBAPIError) -> str:
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc).splitlines()[0]
    return (f"cannot reach the database {url.render_as_string(hide_password=True)}: {reason}. "
            "Check that the server runs and SF_PIPELINE_DATABASE_URL is right.")


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
    return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S})


def make_private_folder(path: Path) -> None:
    """Create ``path`` (and missing parents) readable by its owner only."""
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.chmod(0o700)


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
        make_private_folder(settings.home)
        url = parse_database_url(settings.database_url)
        file = sqlite_file(url)
        if file is not None:
            if not file.parent.is_dir():
                if settings.source("database_url") != "default":
                    raise ConfigError(
                        f"the folder {file.parent} of the SQLite database does not exist: create it, or "
                        "fix the URL", key="SF_PIPELINE_DATABASE_URL")
                make_private_folder(file.parent)
            if not file.exists():
                with contextlib.suppress(FileExistsError):
                    os.close(os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        database = cls(settings.database_url)
        try:
            if database.current_revision() != head_revision():
                database.migrate()
        except OperationalError as exc:
            database.dispose()
            if database.dialect == "sqlite":
                raise
            raise DatabaseUnavailableError(describe_connection_error(database.url, exc)) from None
        return database

    def current_revision(self) -> str | None:
        with self.engine.connect() as connection:
            try:
                row = connection.execute(text("SELECT version_num FROM alembic_version")).first()
            except DBAPIError as exc:
                if "alembic_version" in str(exc):  # a new, empty database
                    return None
                raise
        return str(row[0]) if row else None

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

    def migrate(self, revision: str = "head") -> None:
        """Upgrade the schema to the latest migration (or to ``revision``). Safe to call from several
        processes at once."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with _MIGRATION_THREAD_LOCK, self.engine.begin() as connection:
            # Serialise concurrent migrators; the loser then sees the schema already at head.
            if self.dialect == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
            config.attributes["connection"] = connection
            command.upgrade(config, revision)

    def dispose(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({self.url.render_as_string(hide_password=True)!r})"
