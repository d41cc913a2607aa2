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
  When no external ID appears in two chunks, chunks are independent, so ``PG_WRITERS`` sessions
  apply them side by side (each chunk still one transaction; the server does the work on as many
  cores). Each chunk's ``id`` values are drawn from the table's sequence in chunk and row order
  before it is sent, so every user gets the id a one-chunk-at-a-time run would have given it.
- SQLite: the same upsert through the driver's ``executemany`` with plain tuples, each value as
  SQLAlchemy's own bind processor writes it, so rows are stored exactly as before; the connection
  gets a bigger page cache while it writes (see ``SQLITE_CACHE_KIB``).

After a bulk write on PostgreSQL the table's planner statistics are refreshed (``_analyze``).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
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
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
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

log = logging.getLogger("sf_pipeline.sync")
# PostgreSQL: a run that wrote at least this many rows, and a fifth of the table or more (or into a
# table never analysed), refreshes the planner's statistics for ``users`` itself.
ANALYZE_AFTER_ROWS = 10_000
ANALYZE_FRACTION = 0.2

_UPDATED = (
    "email",
    "phone",
    "timezone",
    "locale",
    "data",
    "updated_at",
    "integration_id",
    "source_object",
    "source_id",
    "source_modified_at",
    "deleted",
    "content_hash",
)

# The columns a change chunk carries into ``users`` (everything but ``action``), in chunk order.
_CHUNK_COLUMNS = (
    "external_id",
    "email",
    "phone",
    "timezone",
    "locale",
    "data",
    "source_object",
    "source_id",
    "source_modified_at",
    "deleted",
    "content_hash",
)
_INSERTED = ("project_id", "integration_id", "created_at", "updated_at", *_CHUNK_COLUMNS)

# PostgreSQL: how many chunks are written at once (when they are independent).
PG_WRITERS = 2

# PostgreSQL: the chunk's staging table (dropped when the chunk's transaction commits).
_STAGE = "sf_pipeline_users_stage"
_stage = Table(
    _STAGE,
    MetaData(),
    Column("ord", BigInteger),
    Column("id", BigInteger),
    *(
        Column(name, DateTime if name == "source_modified_at" else Boolean if name == "deleted" else Text)
        for name in _CHUNK_COLUMNS
    ),
)
_STAGE_DDL = (
    f"CREATE TEMPORARY TABLE {_STAGE} (ord bigint, id bigint, "
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
        where=_write.c.source_modified_at.is_(None) | (_write.c.source_modified_at <= stmt.excluded.source_modified_at),
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
    with session_factory() as session:
        dialect = session.get_bind().dialect.name
    if (
        dialect == "postgresql"
        and PG_WRITERS > 1
        and len(chunk_paths) > 1
        and _ids_drawable(session_factory)
        and _independent(chunk_paths)
    ):
        sent = _apply_side_by_side(
            session_factory,
            chunk_paths,
            project_id=project_id,
            integration_id=integration_id,
            stamp=stamp,
            on_chunk=on_chunk,
        )
    else:
        sent = 0
        for table in read_chunks(chunk_paths):
            n = table.num_rows
            with session_factory() as session:
                assert isinstance(session, Session)
                if n and dialect == "postgresql" and pc.count_distinct(table["external_id"]).as_py() == n:
                    _copy_upsert(session, table, project_id, integration_id, stamp)
                elif n and dialect == "sqlite":
                    _sqlite_upsert(session, table, project_id, integration_id, stamp)
                else:
                    session.execute(_upsert_statement(dialect), _rows(table, project_id, integration_id, stamp))
            sent += n
            if on_chunk:
                on_chunk(n)
    if dialect == "postgresql" and sent >= ANALYZE_AFTER_ROWS:
        _analyze(session_factory, sent)
    return sent


def _ids_drawable(session_factory: Callable[[], Any]) -> bool:
    """``users.id`` takes its default from a sequence we may draw from and accepts explicit values
    (serial, or an identity column ``BY DEFAULT``)."""
    with session_factory() as session:
        found = session.execute(
            text(
                "SELECT pg_get_serial_sequence('users', 'id') IS NOT NULL, a.attidentity <> 'a' FROM pg_attribute a "
                "WHERE a.attrelid = to_regclass('users') AND a.attname = 'id'"
            )
        ).first()
    return found is not None and bool(found[0]) and bool(found[1])


def _independent(chunk_paths: list[str]) -> bool:
    """No external ID in two rows of these chunks (then the order they are applied in is moot).

    Compares 64-bit hashes, one chunk's IDs in memory at a time (8 bytes a row in all; a hash
    table of the IDs themselves would cost ~250 MB at 1,000,000). Two IDs with one hash only make
    this answer False, which is always safe."""
    hashes = []
    for path in chunk_paths:
        column = pq.read_table(path, columns=["external_id"])["external_id"]
        if column.null_count:
            return False
        hashes.append(np.fromiter((hash(v) for v in column.to_pylist()), dtype=np.int64, count=len(column)))
    if not hashes:
        return True
    every = np.concatenate(hashes)
    every.sort()
    return not bool((every[1:] == every[:-1]).any())


def _apply_side_by_side(
    session_factory: Callable[[], Any],
    chunk_paths: list[str],
    *,
    project_id: int,
    integration_id: int,
    stamp: datetime,
    on_chunk: Callable[[int], None] | None,
) -> int:
    """Independent chunks through ``PG_WRITERS`` sessions at once; ids drawn in chunk order first."""
    sent = 0
    in_flight: list[tuple[int, Future[None]]] = []

    def settle(keep: int) -> None:
        nonlocal sent
        while len(in_flight) > keep:
            n, done = in_flight.pop(0)
            done.result()  # the first failure, in chunk order, is the one raised
            sent += n
            if on_chunk:
                on_chunk(n)

    with ThreadPoolExecutor(max_workers=PG_WRITERS, thread_name_prefix="sf-pipeline-upsert") as pool:
        try:
            for path in chunk_paths:
                settle(PG_WRITERS - 1)
                n = pq.read_metadata(path).num_rows
                ids = _draw_ids(session_factory, n) if n else []
                in_flight.append(
                    (n, pool.submit(_write_chunk, session_factory, path, ids, project_id, integration_id, stamp))
                )
            settle(0)
        except BaseException:
            for _, pending in in_flight:
                pending.cancel()
            raise
    return sent


def _draw_ids(session_factory: Callable[[], Any], n: int) -> list[int]:
    """The next ``n`` values of ``users.id``'s sequence, as ``n`` row-by-row inserts would draw them."""
    with session_factory() as session:
        drawn = (
            session.execute(
                text(
                    "SELECT nextval(pg_get_serial_sequence('users', 'id')) FROM generate_series(1, :n) AS g(i) "
                    "ORDER BY g.i"
                ),
                {"n": n},
            )
            .scalars()
            .all()
        )
    return sorted(int(v) for v in drawn)


def _write_chunk(
    session_factory: Callable[[], Any],
    path: str,
    ids: list[int],
    project_id: int,
    integration_id: int,
    stamp: datetime,
) -> None:
    table = pq.read_table(path)
    with session_factory() as session:
        assert isinstance(session, Session)
        if table.num_rows:
            _copy_upsert(session, table, project_id, integration_id, stamp, ids=ids)


def _analyze(session_factory: Callable[[], Any], sent: int) -> None:
    """Refresh the planner's statistics for ``users`` after a bulk write. Until autovacuum gets to
    it, a table just filled by an initial sync has none, and the next run's lookups by external ID
    (2,000 at a time) are planned as scans of the whole project instead of index probes: 0.3 s
    per batch at 1,000,000 users. Best effort: without the right (table owner) PostgreSQL only
    warns, and a failure here never fails the write that already happened."""
    try:
        with session_factory() as session:
            rows = session.execute(text("SELECT reltuples FROM pg_class WHERE oid = to_regclass('users')")).scalar()
            if rows is None or (rows >= 0 and sent < ANALYZE_FRACTION * rows):
                return
            session.execute(text("SET LOCAL lock_timeout = '5s'"))
            session.execute(text("ANALYZE users"))
    except SQLAlchemyError as exc:
        log.warning("ANALYZE users after the upsert failed (harmless, autovacuum will do it): %s", exc)


def _rows(table: pa.Table, project_id: int, integration_id: int, stamp: datetime) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = table.drop_columns(["action"]).to_pylist()
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


def _copy_upsert(
    session: Session,
    table: pa.Table,
    project_id: int,
    integration_id: int,
    stamp: datetime,
    *,
    ids: list[int] | None = None,
) -> None:
    """One chunk: COPY into the staging table, then one INSERT ... SELECT in chunk order. With
    ``ids``, row i is proposed with ``ids[i]`` instead of the column's default (the same value)."""
    n = table.num_rows
    staged = pa.table(
        {
            "ord": pa.array(range(n), pa.int64()),
            "id": pa.array(ids if ids is not None else [None] * n, pa.int64()),
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
        cursor.copy_expert(f"COPY {_STAGE} (ord, id, {', '.join(_CHUNK_COLUMNS)}) FROM STDIN WITH (FORMAT csv)", buffer)
    finally:
        cursor.close()
    source = _stage
    values: dict[str, Any] = {
        "project_id": literal(project_id, Integer),
        "integration_id": literal(integration_id, Integer),
        "created_at": literal(stamp, DateTime),
        "updated_at": literal(stamp, DateTime),
        **{name: source.c[name] for name in _CHUNK_COLUMNS},
    }
    values["data"] = cast(source.c.data, postgresql.JSONB)
    names = ["id", *_INSERTED] if ids is not None else list(_INSERTED)
    if ids is not None:
        values["id"] = source.c.id
    rows = select(*(values[name] for name in names)).order_by(source.c.ord)
    session.execute(_on_conflict(postgresql.insert(_write).from_select(names, rows)))


# SQLite's default page cache (2 MiB) is far smaller than the users table's unique index once it
# holds a few hundred thousand users; random-order upserts then thrash it. The writing connection
# gets this much while it applies a chunk, and its own setting back afterwards.
SQLITE_CACHE_KIB = 32 * 1024
_PROBES = (datetime(2024, 2, 3, 4, 5, 6, 789012), datetime(1999, 12, 31, 23, 59, 59), datetime(1, 1, 1))


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
        proc = processors[name]
        if name in ("project_id", "integration_id", "created_at", "updated_at"):
            value = {"project_id": project_id, "integration_id": integration_id}.get(name, stamp)
            columns[name] = [proc(value) if proc is not None else value] * n
        elif name == "source_modified_at":
            modified = [v.astimezone(UTC).replace(tzinfo=None) for v in table[name].to_pylist()]
            if proc is not None and all(proc(p) == p.isoformat(" ", "microseconds") for p in _PROBES):
                # What SQLAlchemy's SQLite DATETIME processor writes, without a dict and a % per value.
                columns[name] = [v.isoformat(" ", "microseconds") for v in modified]
            else:
                columns[name] = processed(name, modified)
        elif name == "deleted" and proc is not None:
            stored = {True: proc(True), False: proc(False), None: None}
            columns[name] = [stored[v] for v in table[name].to_pylist()]
        else:
            columns[name] = processed(name, table[name].to_pylist())
    params = list(zip(*(columns[name] for name in order), strict=True))
    connection = session.connection()
    previous = connection.exec_driver_sql("PRAGMA cache_size").scalar()
    # Negative: KiB (the default, -2000); positive: pages, left alone.
    restore = previous if isinstance(previous, int) and -SQLITE_CACHE_KIB < previous < 0 else None
    if restore is not None:
        connection.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
    try:
        connection.exec_driver_sql(compiled.string, params)
    finally:
        if restore is not None:
            connection.exec_driver_sql(f"PRAGMA cache_size = {restore}")
