"""Stage 3: write the decided changes into ``users``, one transaction per chunk.

The statement is an upsert on ``(project_id, external_id)`` guarded by the source timestamp: a row
is only overwritten by a version at least as new as the one stored. That makes every chunk
idempotent, so a run killed anywhere (even mid-chunk) and run again converges on exactly the table
an uninterrupted run would have left.

Chunks are applied by a ``ChunkApplier`` on its own thread as they are handed over, so a sync's
diff (Python) decides the next chunk while the database writes this one. One write path per
backend, whatever the number of chunks:

- PostgreSQL: each chunk is streamed with ``COPY`` (CSV written by Arrow) into the staging table
  (``models.users_stage``), then one ``INSERT ... SELECT ... ON CONFLICT DO UPDATE`` applies it.
  (SQLAlchemy sends an ``ON CONFLICT DO UPDATE`` without ``RETURNING`` one row per round trip.)
  One statement may touch a row only once, so the SELECT keeps each external ID's newest row of
  the chunk, exactly what applying the rows one by one under the guard would leave. Up to
  ``PG_WRITERS`` chunks are written at once; a chunk sharing an external ID with one still being
  written waits for it, so chunks that share a user land in order. Each chunk's ``id`` values are
  drawn from the table's sequence in chunk and row order before it is sent, so every user gets the
  id a one-chunk-at-a-time run would have given it.
- SQLite: the same upsert through the driver's ``executemany``, values converted in plain Python
  to what SQLAlchemy's SQLite types store (``DATETIME`` as ``YYYY-MM-DD HH:MM:SS.ffffff`` text,
  booleans as 0/1, ``data`` as its JSON text); a round-trip test reads them back through the model.
"""

from __future__ import annotations

import io
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from sqlalchemy import DateTime, Integer, Table, cast, literal, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from sf_pipeline.storage.models import USERS_STAGE_COLUMNS, User, users_stage

SessionFactory = Callable[[], AbstractContextManager[Session]]

log = logging.getLogger("sf_pipeline.sync")
users: Table = User.__table__  # type: ignore[assignment]  # the mapped class's Table
# PostgreSQL: a run that wrote at least this many rows, and a fifth of the table or more (or into a
# table never analysed), refreshes the planner's statistics for ``users`` itself.
ANALYZE_AFTER_ROWS = 10_000
ANALYZE_FRACTION = 0.2
# PostgreSQL: how many chunks are written at once (when they are independent).
PG_WRITERS = 2
# SQLite's default page cache (2 MiB) is far smaller than the users table's unique index once it
# holds a few hundred thousand users; random-order upserts then thrash it. The writing connection
# gets this much while it applies a chunk, and its own setting back afterwards.
SQLITE_CACHE_KIB = 32 * 1024

_UPDATED = ("email", "phone", "timezone", "locale", "data", "updated_at", "integration_id", "source_object",
            "source_id", "source_modified_at", "deleted", "content_hash")
_INSERTED = ("project_id", "integration_id", "created_at", "updated_at", *USERS_STAGE_COLUMNS)


def _on_conflict(stmt: Any) -> Any:
    """The guarded upsert: an existing row only takes a version at least as new as its own."""
    return stmt.on_conflict_do_update(
        index_elements=["project_id", "external_id"],
        set_={name: stmt.excluded[name] for name in _UPDATED},
        where=users.c.source_modified_at.is_(None) | (users.c.source_modified_at <= stmt.excluded.source_modified_at),
    )


def apply_chunks(
    session_factory: SessionFactory,
    chunk_paths: Sequence[str],
    *,
    project_id: int,
    integration_id: int,
    now: datetime,
) -> int:
    """Apply change chunks (``diff.CHANGE_SCHEMA``) in order; returns the rows sent.
    ``session_factory()`` yields a Session that commits on exit (``Database.session``)."""
    return ChunkApplier(session_factory, project_id=project_id, integration_id=integration_id, now=now).apply(
        chunk_paths)


_END = object()


class ChunkApplier:
    """Applies change chunks in the order they are handed over, on a thread of its own, so the
    diff can decide the next chunk while this one is written (the diff is Python, the write is
    mostly the database's own work: on two cores they overlap).

    ``add`` only queues a path (the file must be complete on disk); a failure is raised by the
    next ``add`` and by ``close``, which waits for every chunk and returns the rows sent. After a
    failure no further chunk is written. ``abort`` stops and waits without raising.

    PostgreSQL: up to ``PG_WRITERS`` chunks are written at once, each in its own session; a chunk
    sharing an external ID with a chunk still being written waits until no chunk is in flight, so
    chunks that share a user land in order. ``users.id`` values are drawn for each chunk in chunk
    order before it is sent, so every user gets the id a one-chunk-at-a-time run would give it."""

    def __init__(self, session_factory: SessionFactory, *, project_id: int, integration_id: int,
                 now: datetime) -> None:
        self._session_factory = session_factory
        self._project_id = project_id
        self._integration_id = integration_id
        self._stamp = now.astimezone(UTC).replace(tzinfo=None)
        with session_factory() as session:
            self._postgres = session.get_bind().dialect.name == "postgresql"
        self.sent = 0
        self._failure: BaseException | None = None
        self._stopping = threading.Event()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="sf-pipeline-apply", daemon=True)
        self._thread.start()

    def add(self, path: str) -> None:
        if self._failure is not None:
            raise self._failure
        self._queue.put(path)

    def apply(self, paths: Iterable[str]) -> int:
        """Hand over every path and ``close``; on any failure, ``abort`` and raise it."""
        try:
            for path in paths:
                self.add(path)
        except BaseException:
            self.abort()
            raise
        return self.close()

    def close(self) -> int:
        self._queue.put(_END)
        self._thread.join()
        if self._failure is not None:
            raise self._failure
        if self._postgres and self.sent >= ANALYZE_AFTER_ROWS:
            _analyze(self._session_factory, self.sent)
        return self.sent

    def abort(self) -> None:
        self._stopping.set()
        self._queue.put(_END)
        self._thread.join()

    def _paths(self) -> Iterator[str]:
        while not self._stopping.is_set():
            item = self._queue.get()
            if item is _END:
                return
            yield item

    def _run(self) -> None:
        try:
            if self._postgres:
                self._run_postgres()
            else:
                for path in self._paths():
                    table = pq.read_table(path)
                    with self._session_factory() as session:
                        _sqlite_upsert(session, table, self._project_id, self._integration_id, self._stamp)
                    self.sent += table.num_rows
        except BaseException as exc:  # raised to the caller by ``add`` and ``close``
            self._failure = exc

    def _run_postgres(self) -> None:
        """The first failure in chunk order is the one kept."""
        in_flight: list[tuple[int, set[int], Future[None]]] = []

        def settle(keep: int) -> None:
            while len(in_flight) > keep:
                n, _, done = in_flight.pop(0)
                done.result()
                self.sent += n

        with ThreadPoolExecutor(max_workers=PG_WRITERS, thread_name_prefix="sf-pipeline-upsert") as pool:
            try:
                for path in self._paths():
                    # The chunk's external IDs by hash (two IDs sharing a hash only cost a wait).
                    external_ids = pq.read_table(path, columns=["external_id"])["external_id"].to_pylist()
                    if not external_ids:
                        continue
                    keys = {hash(v) for v in external_ids}
                    settle(0 if any(not keys.isdisjoint(other) for _, other, _ in in_flight) else PG_WRITERS - 1)
                    ids = _draw_ids(self._session_factory, len(external_ids))
                    in_flight.append((len(ids), keys, pool.submit(
                        _write_chunk, self._session_factory, path, ids, self._project_id, self._integration_id,
                        self._stamp)))
                settle(0)
            except BaseException:
                for _, _, pending in in_flight:
                    pending.cancel()
                raise


def _draw_ids(session_factory: SessionFactory, n: int) -> list[int]:
    """The next ``n`` values of ``users.id``'s sequence, as ``n`` row-by-row inserts would draw them."""
    with session_factory() as session:
        drawn = session.execute(
            text("SELECT nextval(pg_get_serial_sequence('users', 'id')) FROM generate_series(1, :n) AS g(i) "
                 "ORDER BY g.i"),
            {"n": n},
        ).scalars().all()
    return sorted(int(v) for v in drawn)


def _write_chunk(session_factory: SessionFactory, path: str, ids: list[int], project_id: int, integration_id: int,
                 stamp: datetime) -> None:
    table = pq.read_table(path)
    with session_factory() as session:
        _copy_upsert(session, table, project_id, integration_id, stamp, ids)


def _naive_utc(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Timestamps as naive UTC wall time, whatever zone the chunk recorded them in."""
    tz = getattr(column.type, "tz", None)
    if tz is not None and tz.upper() not in ("UTC", "+00:00", "Z"):
        column = column.cast(pa.timestamp(column.type.unit, tz="UTC"))
    return column.cast(pa.timestamp("us"))


def _copy_upsert(session: Session, table: pa.Table, project_id: int, integration_id: int, stamp: datetime,
                 ids: list[int]) -> None:
    """One chunk: COPY into the staging table, then one INSERT ... SELECT of each external ID's
    newest row, in chunk order; row i is proposed with ``ids[i]``."""
    n = table.num_rows
    staged = pa.table(
        {
            "ord": pa.array(range(n), pa.int64()),
            "id": pa.array(ids, pa.int64()),
            **{name: _naive_utc(table[name]) if name == "source_modified_at" else table[name]
               for name in USERS_STAGE_COLUMNS},
        }
    )
    buffer = io.BytesIO()
    pa_csv.write_csv(staged, buffer, pa_csv.WriteOptions(include_header=False))
    buffer.seek(0)
    connection = session.connection()
    users_stage.create(connection)
    # COPY is psycopg2's own (cursor.copy_expert); SQLAlchemy has no COPY.
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.copy_expert(
            f"COPY {users_stage.name} (ord, id, {', '.join(USERS_STAGE_COLUMNS)}) FROM STDIN WITH (FORMAT csv)", buffer
        )
    finally:
        cursor.close()
    stage = users_stage.c
    newest = (
        select(users_stage)
        .distinct(stage.external_id)
        .order_by(stage.external_id, stage.source_modified_at.desc(), stage.ord.desc())
        .subquery()
    )
    values: dict[str, Any] = {
        "id": newest.c.id,
        "project_id": literal(project_id, Integer),
        "integration_id": literal(integration_id, Integer),
        "created_at": literal(stamp, DateTime),
        "updated_at": literal(stamp, DateTime),
        **{name: newest.c[name] for name in USERS_STAGE_COLUMNS},
        "data": cast(newest.c.data, postgresql.JSONB),
    }
    names = ["id", *_INSERTED]
    rows = select(*(values[name] for name in names)).order_by(newest.c.ord)
    session.execute(_on_conflict(postgresql.insert(users).from_select(names, rows)))


def _analyze(session_factory: SessionFactory, sent: int) -> None:
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


def sqlite_datetime(value: datetime) -> str:
    """How SQLAlchemy's SQLite ``DATETIME`` stores a (naive UTC) time."""
    return value.isoformat(" ", "microseconds")


def _sqlite_upsert(session: Session, table: pa.Table, project_id: int, integration_id: int, stamp: datetime) -> None:
    n = table.num_rows
    if not n:
        return
    compiled = _on_conflict(sqlite.insert(users)).compile(dialect=session.get_bind().dialect,
                                                          column_keys=list(_INSERTED))
    at = sqlite_datetime(stamp)
    columns: dict[str, list[Any]] = {
        "project_id": [project_id] * n,
        "integration_id": [integration_id] * n,
        "created_at": [at] * n,
        "updated_at": [at] * n,
        "source_modified_at": [sqlite_datetime(v) for v in _naive_utc(table["source_modified_at"]).to_pylist()],
        "deleted": [int(v) for v in table["deleted"].to_pylist()],
    }
    for name in USERS_STAGE_COLUMNS:
        if name not in columns:
            columns[name] = table[name].to_pylist()
    params = list(zip(*(columns[name] for name in compiled.positiontup or ()), strict=True))
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
