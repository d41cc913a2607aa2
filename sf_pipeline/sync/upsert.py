"""Stage 3: write the decided changes into ``users``, one transaction per chunk.

The statement is an upsert on ``(project_id, external_id)`` guarded by the source timestamp:
a row is only overwritten by a version at least as new as the one stored. That makes every
chunk idempotent, so a run killed anywhere (even mid-chunk) and run again converges on exactly
the table an uninterrupted run would have left.

How a chunk reaches the database (the statement and its outcome are the same everywhere):

- PostgreSQL: the chunk is streamed with ``COPY`` (CSV written by Arrow) into a temporary table,
  then one ``INSERT ... SELECT ... ORDER BY`` with the same ``ON CONFLICT DO UPDATE`` applies it
  in chunk order. Row-by-row ``executemany`` (what SQLAlchemy does for an ``ON CONFLICT DO
  UPDATE`` without ``RETURNING``) costs a round trip per row. A chunk that names one external ID
  twice (the diff never writes one) can't go through one ``INSERT ... SELECT`` (a row may be
  affected once per statement), so it is applied row by row as before.
- SQLite: the same upsert through the driver's ``executemany`` with plain tuples, each value put
  through SQLAlchemy's own bind processor, so rows are stored exactly as before.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    cast,
    literal,
    select,
)
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

# The columns a change chunk carries into ``users`` (everything but ``action``), in chunk order.
_CHUNK_COLUMNS = ("external_id", "email", "phone", "timezone", "locale", "data", "source_object", "source_id",
                  "source_modified_at", "deleted", "content_hash")
_INSERTED = ("project_id", "integration_id", "created_at", "updated_at", *_CHUNK_COLUMNS)

# PostgreSQL: the chunk's staging table (dropped when the chunk's transaction commits).
_STAGE = "sf_pipeline_users_stage"
_stage = Table(
    _STAGE,
    MetaData(),
    Column("ord", BigInteger),
    *(Column(name, DateTime if name == "source_modified_at" else Boolean if name == "deleted" else Text)
      for name in _CHUNK_COLUMNS),
)
_STAGE_DDL = (
    f"CREATE TEMPORARY TABLE {_STAGE} (ord bigint, "
    + ", ".join(
        f"{name} {'timestamp' if name == 'source_modified_at' else 'boolean' if name == 'deleted' else 'text'}"
        for name in _CHUNK_COLUMNS
    )
    + ") ON COMMIT DROP"
)


def _upsert_statement(dialect: str) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(_write)
    return _on_conflict(stmt)


def _on_conflict(stmt: Any) -> Any:
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
        n = table.num_rows
        with session_factory() as session:
            assert isinstance(session, Session)
            dialect = session.get_bind().dialect.name
            if n and dialect == "postgresql" and pc.count_distinct(table["external_id"]).as_py() == n:
                _copy_upsert(session, table, project_id, integration_id, stamp)
            elif n and dialect == "sqlite":
                _sqlite_upsert(session, table, project_id, integration_id, stamp)
            else:
                session.execute(_upsert_statement(dialect), _rows(table, project_id, integration_id, stamp))
        sent += n
        if on_chunk:
            on_chunk(n)
    return sent


def _rows(table: pa.Table, project_id: int, integration_id: int, stamp: datetime) -> list[dict[str, Any]]:
    rows = table.drop_columns(["action"]).to_pylist()
    for row in rows:
        row["project_id"] = project_id
        row["integration_id"] = integration_id
        row["created_at"] = stamp
        row["updated_at"] = stamp
        modified = row["source_modified_at"]
        row["source_modified_at"] = modified.astimezone(UTC).replace(tzinfo=None)
    return rows


def _naive_utc(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Timestamps as naive UTC wall time, whatever zone the chunk recorded them in."""
    tz = getattr(column.type, "tz", None)
    if tz is not None and tz.upper() not in ("UTC", "+00:00", "Z"):
        column = column.cast(pa.timestamp(column.type.unit, tz="UTC"))
    return column.cast(pa.timestamp("us"))


def _copy_upsert(session: Session, table: pa.Table, project_id: int, integration_id: int, stamp: datetime) -> None:
    n = table.num_rows
    staged = pa.table(
        {
            "ord": pa.array(range(n), pa.int64()),
            **{
                name: _naive_utc(table[name]) if name == "source_modified_at" else table[name]
                for name in _CHUNK_COLUMNS
            },
        }
    )
    buffer = io.BytesIO()
    pa_csv.write_csv(staged, buffer, pa_csv.WriteOptions(include_header=False))
    buffer.seek(0)
    connection = session.connection()
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(_STAGE_DDL)
        cursor.copy_expert(
            f"COPY {_STAGE} (ord, {', '.join(_CHUNK_COLUMNS)}) FROM STDIN WITH (FORMAT csv)", buffer
        )
    finally:
        cursor.close()
    source = _stage
    values = {
        "project_id": literal(project_id, Integer),
        "integration_id": literal(integration_id, Integer),
        "created_at": literal(stamp, DateTime),
        "updated_at": literal(stamp, DateTime),
        **{name: source.c[name] for name in _CHUNK_COLUMNS},
    }
    values["data"] = cast(source.c.data, postgresql.JSONB)
    rows = select(*(values[name] for name in _INSERTED)).order_by(source.c.ord)
    session.execute(_on_conflict(postgresql.insert(_write).from_select(list(_INSERTED), rows)))


def _sqlite_upsert(session: Session, table: pa.Table, project_id: int, integration_id: int, stamp: datetime) -> None:
    dialect = session.get_bind().dialect
    compiled = _upsert_statement("sqlite").compile(dialect=dialect, column_keys=list(_INSERTED))
    order: Sequence[str] = compiled.positiontup or ()
    processors = {name: _write.c[name].type._cached_bind_processor(dialect) for name in _INSERTED}

    def processed(name: str, values: list[Any]) -> list[Any]:
        proc = processors[name]
        return values if proc is None else [v if v is None else proc(v) for v in values]

    n = table.num_rows
    columns: dict[str, list[Any]] = {}
    for name in _INSERTED:
        if name in ("project_id", "integration_id", "created_at", "updated_at"):
            value = {"project_id": project_id, "integration_id": integration_id}.get(name, stamp)
            proc = processors[name]
            columns[name] = [proc(value) if proc is not None else value] * n
        elif name == "source_modified_at":
            modified = [v.astimezone(UTC).replace(tzinfo=None) for v in table[name].to_pylist()]
            columns[name] = processed(name, modified)
        else:
            columns[name] = processed(name, table[name].to_pylist())
    params = list(zip(*(columns[name] for name in order), strict=True))
    session.connection().exec_driver_sql(compiled.string, params)
