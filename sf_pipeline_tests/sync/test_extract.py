"""The extract stage on its own: record batches from any source become Parquet chunks, counts and
the next watermark; the REST source pages a real (sandbox) org through simple-salesforce."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from sf_pipeline.mapping import MappingSpec, resolve_object_mapping
from sf_pipeline.sandbox.testing import SandboxHandle
from sf_pipeline.sync.chunks import read_chunks
from sf_pipeline.sync.extract import RestBatches, arrow_schema, extract_object, page_columns
from sf_pipeline.sync.plan import plan_object
from sf_pipeline_tests.describes import describe
from sf_pipeline_tests.harness import pipeline
from sf_pipeline_tests.sync.stages import T0, extracted, later, lead, lead_mapping, sf_time


def test_the_chunk_schema_follows_the_describe_types() -> None:
    schema = arrow_schema(lead_mapping(MappingSpec("Email", "email"), MappingSpec("AnnualRevenue", "revenue"),
                                       MappingSpec("HasOptedOutOfEmail", "unsubscribed")))
    assert [(f.name, f.type) for f in schema] == [
        ("Id", pa.string()), ("LastModifiedDate", pa.string()), ("IsDeleted", pa.bool_()), ("Email", pa.string()),
        ("AnnualRevenue", pa.float64()), ("HasOptedOutOfEmail", pa.bool_())]


def test_batches_become_chunks_of_the_chosen_size_with_counts_and_the_newest_watermark(tmp_path: Path) -> None:
    records = [lead(i, at=later(i % 7), deleted=i % 5 == 0) for i in range(1, 26)]
    result = extracted(tmp_path, records, rows_per_chunk=10, page=4)
    assert [t.num_rows for t in read_chunks(result.chunk_paths)] == [10, 10, 5]
    assert (result.fetched, result.total, result.deleted_seen) == (25, 25, 5)
    assert result.watermark_before is None and result.watermark_after == later(6)
    ids = [v for t in read_chunks(result.chunk_paths) for v in t["Id"].to_pylist()]
    assert ids == [r["Id"] for r in records]  # order kept


def test_the_watermark_never_moves_back_and_ignores_malformed_times(tmp_path: Path) -> None:
    mapping = lead_mapping()
    plan = plan_object(object_name="Lead", fields=mapping.soql_fields, where=None, mappings=[],
                       stored_watermark=later(30), stored_fingerprint=None, force_full=False)
    broken = lead(2)
    broken["LastModifiedDate"] = "9999-garbage"
    schema = arrow_schema(mapping)
    batch = pa.Table.from_pydict(page_columns(schema.names, [lead(1, at=later(10)), broken]), schema)
    result = extract_object([batch], plan, mapping, out_dir=tmp_path)
    assert result.watermark_after == later(30) and result.fetched == 2


def test_a_source_failing_midway_leaves_no_chunk_files(tmp_path: Path) -> None:
    mapping = lead_mapping()
    schema = arrow_schema(mapping)
    plan = plan_object(object_name="Lead", fields=mapping.soql_fields, where=None, mappings=[],
                       stored_watermark=None, stored_fingerprint=None, force_full=True)

    def batches() -> Iterator[pa.Table]:
        for i in range(3):
            yield pa.Table.from_pydict(page_columns(schema.names, [lead(j) for j in range(i * 5, i * 5 + 5)]), schema)
        raise ConnectionError("dropped")

    with pytest.raises(ConnectionError):
        extract_object(batches(), plan, mapping, out_dir=tmp_path, rows_per_chunk=5)
    assert not list(tmp_path.glob("*.parquet"))  # the stage gave up: its chunks never land


def test_parent_fields_are_read_from_the_nested_parent_record() -> None:
    records = [{"Id": "a", "Lead": {"Email": "x@example.com"}}, {"Id": "b", "Lead": None}]
    assert page_columns(["Id", "Lead.Email"], records) == {"Id": ["a", "b"], "Lead.Email": ["x@example.com", None]}


def test_rest_batches_page_the_org_with_query_all(small_sandbox: SandboxHandle, tmp_path: Path) -> None:
    with pipeline(small_sandbox, f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path) as p:
        client = p.services.open_client(p.name)
        mapping = resolve_object_mapping("Lead", [MappingSpec("Email", "email")], client.describe)
        plan = plan_object(object_name="Lead", fields=mapping.soql_fields, where=None, mappings=[],
                           stored_watermark=None, stored_fingerprint=None, force_full=True)
        leads = small_sandbox.org.records("Lead")
        small_sandbox.org.delete("Lead", [leads[0]["Id"]], at=T0 + timedelta(days=9000))
        totals: list[int] = []
        pages = RestBatches(client, plan, arrow_schema(mapping), page_size=200, on_total=totals.append)
        result = extract_object(pages, plan, mapping, out_dir=tmp_path / "chunks", rows_per_chunk=100)
        assert totals == [len(leads)] and pages.total == len(leads) == result.fetched
        assert len(result.chunk_paths) == -(-len(leads) // 100)
        assert result.deleted_seen == 1  # queryAll: the deleted record arrives, flagged
        assert result.watermark_after is not None and sf_time(result.watermark_after) == max(
            r["LastModifiedDate"] for r in small_sandbox.org.records("Lead", include_deleted=True))


def test_the_mapping_rides_in_the_result_for_the_diff(tmp_path: Path) -> None:
    mapping = resolve_object_mapping("Lead", [MappingSpec("Email", "email")], describe)
    result = extracted(tmp_path, [lead(1)], mapping=mapping)
    assert result.mapping == mapping and result.fields == ("Id", "LastModifiedDate", "IsDeleted", "Email")
