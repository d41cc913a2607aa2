"""Parquet chunk files: how records pass between the sync's stages.

A stage never holds the whole org: it appends rows to a ``ChunkWriter``, which flushes a file
every ``rows_per_chunk`` rows, and the next stage reads the files back one at a time. Only the
list of file paths (a few hundred bytes) travels through Dagster's IO manager.

Appended columns become Arrow arrays at once (one small table per append), so a chunk waiting to
be written costs its Arrow size, not a Python object per value. Parquet encoding, compression and
file I/O run in Arrow without the GIL, so they overlap the stage's Python work: a full chunk is
written on a background thread while the next one fills (at most one write in flight; ``close``
waits for it and raises what it raised), and ``read_chunks`` reads the next file while the caller
works on the current one.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

# A chunk's rows, their user rows, the next chunk read ahead and the chunks being written to the
# database are what a sync holds at once. Bulk API 2.0, 1,000,000 Leads, PostgreSQL, side by side
# in one run: peak RSS 566 MB at 25,000 rows, 538 at 20,000, 493 at 15,000, wall time unchanged
# (27.6 / 27.5 / 28.0 s); at 50,000 it was about 85 MB above 25,000.
DEFAULT_ROWS_PER_CHUNK = 15_000

# Arrow's default allocator (mimalloc) keeps freed pages for reuse by the thread that freed them;
# with the diff, the chunk writer and two database writers each allocating, a 1,000,000-record
# sync peaked 37-45 MB higher with it than with the system allocator, for no measurable time (three
# side-by-side pairs). Every stage imports this module; ``ARROW_DEFAULT_MEMORY_POOL``, if set, wins.
if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
    pa.set_memory_pool(pa.system_memory_pool())

_io: ThreadPoolExecutor | None = None
_io_lock = threading.Lock()


def _io_pool() -> ThreadPoolExecutor:
    global _io
    with _io_lock:
        if _io is None:
            _io = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sf-pipeline-chunks")
        return _io


def _write(table: pa.Table, path: Path, on_written: Callable[[str], None] | None) -> None:
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(path)  # a killed run never leaves a half-written chunk under the real name
    if on_written is not None:
        on_written(str(path))


class ChunkWriter:
    def __init__(
        self, directory: Path, prefix: str, schema: pa.Schema, *, rows_per_chunk: int = DEFAULT_ROWS_PER_CHUNK,
        on_written: Callable[[str], None] | None = None,
    ) -> None:
        """``on_written(path)`` is called, on the writing thread, once each chunk is on disk; what it
        raises is raised by the next ``append`` that fills a chunk, or by ``close``."""
        self.directory = directory
        self.on_written = on_written
        self.prefix = prefix
        self.schema = schema
        self.rows_per_chunk = rows_per_chunk
        self.paths: list[str] = []
        self.rows_written = 0
        self._pending: list[pa.Table] = []
        self._buffered = 0
        self._writing: Future[None] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    def append(self, table: pa.Table) -> None:
        """Append a table in the writer's schema; full chunks are written as they fill."""
        if table.schema != self.schema:
            table = table.select(self.schema.names).cast(self.schema)
        while table.num_rows:
            room = self.rows_per_chunk - self._buffered
            part, table = table.slice(0, room), table.slice(room)
            self._pending.append(part)
            self._buffered += part.num_rows
            if self._buffered >= self.rows_per_chunk:
                self.flush()

    def flush(self) -> None:
        """Start writing the buffered rows as the next chunk file (after the previous one is done)."""
        if not self._buffered:
            return
        table = pa.concat_tables(self._pending) if len(self._pending) != 1 else self._pending[0]
        path = self.directory / f"{self.prefix}-{len(self.paths):05d}.parquet"
        self._wait()
        self._writing = _io_pool().submit(_write, table, path, self.on_written)
        self.paths.append(str(path))
        self.rows_written += self._buffered
        self._pending = []
        self._buffered = 0

    def _wait(self) -> None:
        writing, self._writing = self._writing, None
        if writing is not None:
            writing.result()

    def abort(self) -> None:
        """The stage failed: drop what is buffered, let a write in flight finish (its error, if
        any, is not the one to report) and remove the chunks written, so nothing the failed stage
        wrote is left for a reader to mistake for a result."""
        self._pending = []
        self._buffered = 0
        writing, self._writing = self._writing, None
        if writing is not None:
            writing.exception()
        for path in self.paths:
            Path(path).unlink(missing_ok=True)
        self.paths = []

    def close(self) -> list[str]:
        """Write what is buffered; return the chunk files once every one of them is on disk."""
        self.flush()
        self._wait()
        return list(self.paths)


def read_chunks(paths: Sequence[str]) -> Iterator[pa.Table]:
    """The chunk files' tables in order, the next file read while the caller uses the current."""
    pool = _io_pool()
    ahead: Future[pa.Table] | None = pool.submit(pq.read_table, paths[0]) if paths else None
    try:
        for i in range(len(paths)):
            assert ahead is not None
            table = ahead.result()
            ahead = pool.submit(pq.read_table, paths[i + 1]) if i + 1 < len(paths) else None
            yield table
    finally:
        if ahead is not None:
            ahead.cancel() or ahead.exception()  # never leave a read running on a closed generator
