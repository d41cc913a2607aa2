"""Parquet chunk files: how records pass between the sync's stages.

A stage never holds the whole org: it appends rows to a ``ChunkWriter``, which flushes a file
every ``rows_per_chunk`` rows, and the next stage reads the files back one at a time. Only the
list of file paths (a few hundred bytes) travels through Dagster's IO manager.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

DEFAULT_ROWS_PER_CHUNK = 50_000


class ChunkWriter:
    def __init__(
        self, directory: Path, prefix: str, schema: pa.Schema, *, rows_per_chunk: int = DEFAULT_ROWS_PER_CHUNK
    ) -> None:
        self.directory = directory
        self.prefix = prefix
        self.schema = schema
        self.rows_per_chunk = rows_per_chunk
        self.paths: list[str] = []
        self.rows_written = 0
        self._columns: dict[str, list[Any]] = {name: [] for name in schema.names}
        self._buffered = 0
        directory.mkdir(parents=True, exist_ok=True)

    def append_columns(self, columns: Mapping[str, Sequence[Any]], count: int) -> None:
        """Append ``count`` rows given column-wise (the cheapest shape to build and to write)."""
        for name, values in columns.items():
            self._columns[name].extend(values)
        self._buffered += count
        if self._buffered >= self.rows_per_chunk:
            self.flush()

    def flush(self) -> None:
        if not self._buffered:
            return
        table = pa.table(self._columns, schema=self.schema)
        path = self.directory / f"{self.prefix}-{len(self.paths):05d}.parquet"
        tmp = path.with_suffix(".tmp")
        pq.write_table(table, tmp, compression="zstd")
        tmp.replace(path)  # a killed run never leaves a half-written chunk under the real name
        self.paths.append(str(path))
        self.rows_written += self._buffered
        self._columns = {name: [] for name in self.schema.names}
        self._buffered = 0

    def close(self) -> list[str]:
        self.flush()
        return list(self.paths)


def read_chunks(paths: Sequence[str]) -> Iterator[pa.Table]:
    for path in paths:
        yield pq.read_table(path)
