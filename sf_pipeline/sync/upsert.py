"""Stage 3: write the decided changes into ``users``, one transaction per chunk.

The statement is an upsert on ``(project_id, external_id)`` guarded by the source timestamp:
a row is only overwritten by a version at least as new as the one stored. That makes every
chunk idempotent, so a run killed anywhere (even mid-chunk) and run again converges on exactly
the table an uninterrupted run would have left.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Boolean, Column, DateTime, Integer, MetaData, String, Table, Text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from sf_pipeline.sync.chunks import read_chunks

# The users table as the writer sees it: ``data`` goes in as the JSON text the diff already
# serialised (PostgreSQL casts the text literal to jsonb), times as naive UTC.
_write = Table(
    "users",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer),
    Column("external_id", String),
    Column("email", String),
    Column("phone", String),
    Column("timezone", String),
    Column("locale", String),
    Column("data", Text),
    Column("created_at", DateTime),
    Column("updated_at", DateTime),
    Column("integration_id", Integer),
    Column("source_object", String),
    Column("source_id", String),
    Column("source_modified_at", DateTime),
    Column("deleted", Boolean),
    Column("content_hash", String),
)

_UPDATED = ("email", "phone", "timezone", "locale", "data", "updated_at", "integration_id", "source_object",
            "source_id", "source_modified_at", "deleted", "content_hash")


def _upsert_statement(dialect: str) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(_write)
    return stmt.on_conflict_do_update(
        index_elements=["project_id", "external_id"],
        set_={name: stmt.excluded[name] for name in _UPDATED},
        where=_write.c.source_modified_at.is_(None)
        | (_write.c.source_modified_at <= stmt.excluded.source_modified_at),
    )


def apply_chunks(
    session_factory: Callable[[], Any],
    chunk_paths: list[str],
    *,
    project_id: int,
    integration_id: int,
    now: datetime | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> int:
    """Apply change chunks; returns rows sent. ``session_factory()`` is a context manager
    yielding a Session that commits on exit (``Database.session``)."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    sent = 0
    for table in read_chunks(chunk_paths):
        rows = table.drop_columns(["action"]).to_pylist()
        for row in rows:
            row["project_id"] = project_id
            row["integration_id"] = integration_id
            row["created_at"] = stamp
            row["updated_at"] = stamp
            modified = row["source_modified_at"]
            row["source_modified_at"] = modified.astimezone(UTC).replace(tzinfo=None)
        with session_factory() as session:
            assert isinstance(session, Session)
            session.execute(_upsert_statement(session.get_bind().dialect.name), rows)
        sent += len(rows)
        if on_chunk:
            on_chunk(len(rows))
    return sent
