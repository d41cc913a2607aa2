"""Parquet chunk files: written as they fill, read back in order, never half there."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from sf_pipeline.sync.chunks import ChunkWriter, read_chunks

SCHEMA = pa.schema([("id", pa.string()), ("n", pa.float64())])


def rows(start: int, count: int) -> pa.Table:
    return pa.table({"id": [f"r{i}" for i in range(start, start + count)], "n": [float(i) for i in
                                                                               range(start, start + count)]}, SCHEMA)


def test_appended_rows_are_split_into_chunks_of_exactly_the_chosen_size(tmp_path: Path) -> None:
    writer = ChunkWriter(tmp_path, "t", SCHEMA, rows_per_chunk=4)
    for start, count in ((0, 3), (3, 6), (9, 2)):
        writer.append(rows(start, count))
    paths = writer.close()
    assert [Path(p).name for p in paths] == ["t-00000.parquet", "t-00001.parquet", "t-00002.parquet"]
    tables = list(read_chunks(paths))
    assert [t.num_rows for t in tables] == [4, 4, 3]
    assert [v for t in tables for v in t["id"].to_pylist()] == [f"r{i}" for i in range(11)]
    assert writer.rows_written == 11 and not list(tmp_path.glob("*.tmp"))


def test_a_table_with_the_same_columns_in_another_order_or_type_is_cast(tmp_path: Path) -> None:
    writer = ChunkWriter(tmp_path, "t", SCHEMA)
    writer.append(pa.table({"n": pa.array([1, 2], pa.int64()), "id": ["a", "b"]}))
    [table] = list(read_chunks(writer.close()))
    assert table.schema == SCHEMA and table["n"].to_pylist() == [1.0, 2.0]


def test_no_rows_no_files(tmp_path: Path) -> None:
    writer = ChunkWriter(tmp_path, "t", SCHEMA)
    writer.append(rows(0, 0))
    assert writer.close() == [] and list(read_chunks([])) == []


def test_abort_removes_what_the_failed_stage_wrote(tmp_path: Path) -> None:
    writer = ChunkWriter(tmp_path, "t", SCHEMA, rows_per_chunk=2)
    writer.append(rows(0, 5))
    writer.abort()
    assert writer.paths == [] and not list(tmp_path.iterdir())


def test_a_column_the_schema_lacks_is_refused(tmp_path: Path) -> None:
    writer = ChunkWriter(tmp_path, "t", SCHEMA)
    with pytest.raises(KeyError):
        writer.append(pa.table({"other": ["x"]}))
