"""The diff stage on its own: extract chunks and stored versions in, change chunks and counts out.
No Salesforce and no database: the manifest carries the mapping, the stored versions are a dict."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pandera.polars as pa
import pyarrow as pa_arrow
import pytest

from sf_pipeline.mapping import MappingSpec
from sf_pipeline.storage.users import StoredVersion
from sf_pipeline.sync import diff, schemas
from sf_pipeline.sync.chunks import read_chunks
from sf_pipeline.sync.diff import CHANGE_SCHEMA, content_digest, diff_object, encode_data
from sf_pipeline.sync.manifests import ChangedObject
from sf_pipeline_tests.sync.stages import T0, Stored, extracted, later, lead, lead_mapping, sf_id


def ext(i: int) -> str:
    return f"sf_acme_Lead_{sf_id(i)}"


def run(tmp_path: Path, records: list[dict[str, object]], stored: Stored | None = None, **options: object
        ) -> tuple[ChangedObject, list[dict[str, object]]]:
    source = extracted(tmp_path / "extract", records, **options)  # type: ignore[arg-type]
    changed = diff_object(source, integration="acme", stored=stored or Stored(), out_dir=tmp_path / "changes",
                          rows_per_chunk=int(options.get("rows_per_chunk", 50_000)))  # type: ignore[call-overload]
    rows = [row for table in read_chunks(changed.chunk_paths) for row in table.to_pylist()]
    return changed, rows


def stored_as(row: dict[str, object], **changes: object) -> StoredVersion:
    """The version the upsert would store for a change row."""
    values = {"content_hash": row["content_hash"], "source_modified_at": row["source_modified_at"],
              "deleted": row["deleted"], **changes}
    return StoredVersion(**values)  # type: ignore[arg-type]


def test_new_records_become_create_rows_with_mapped_values(tmp_path: Path) -> None:
    changed, rows = run(tmp_path, [lead(1), lead(2, FirstName=None)])
    assert (changed.counts.created, changed.counts.updated, changed.counts.unchanged) == (2, 0, 0)
    first, second = rows
    assert first["action"] == "create" and first["external_id"] == ext(1) and first["source_id"] == sf_id(1)
    assert (first["email"], first["phone"]) == ("lead1@example.com", "+1 555 0001")
    assert json.loads(str(first["data"])) == {"first_name": "First1", "revenue": 1000}
    assert first["source_modified_at"] == T0 and first["deleted"] is False
    assert json.loads(str(second["data"])) == {"first_name": None, "revenue": 2000}  # null clears the property
    assert first["content_hash"] == content_digest("lead1@example.com", "+1 555 0001", None, None,
                                                   encode_data({"first_name": "First1", "revenue": 1000}))


def test_a_rerun_of_the_same_records_writes_nothing(tmp_path: Path) -> None:
    _, rows = run(tmp_path / "1", [lead(1), lead(2)])
    stored = Stored({str(r["external_id"]): stored_as(r) for r in rows})
    changed, again = run(tmp_path / "2", [lead(1), lead(2)], stored)
    assert again == [] and changed.chunk_paths == []
    assert (changed.counts.created, changed.counts.unchanged) == (0, 2)


def test_only_rows_to_write_pass_the_contract_and_a_rerun_never_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, rows = run(tmp_path / "1", [lead(1), lead(2)])
    stored = Stored({str(r["external_id"]): stored_as(r) for r in rows})
    checked: list[list[str]] = []
    violations = schemas.violations

    def spy(table: pa_arrow.Table) -> list[schemas.Violation]:
        checked.append([str(e) for e in table.column("external_id").to_pylist()])
        return violations(table)

    monkeypatch.setattr(schemas, "violations", spy)
    changed, again = run(tmp_path / "2", [lead(1), lead(2)], stored)
    assert again == [] and checked == [] and changed.counts.unchanged == 2
    changed, again = run(tmp_path / "3", [lead(1), lead(2, at=later(5), FirstName="New"), lead(3)], stored)
    assert checked == [[ext(2), ext(3)]] and [r["action"] for r in again] == ["update", "create"]
    assert (changed.counts.unchanged, changed.counts.updated, changed.counts.created) == (1, 1, 1)


def test_a_changed_value_is_an_update_and_an_older_version_never_wins(tmp_path: Path) -> None:
    _, rows = run(tmp_path / "1", [lead(1, at=later(10)), lead(2, at=later(10))])
    stored = Stored({str(r["external_id"]): stored_as(r) for r in rows})
    changed, updates = run(tmp_path / "2", [lead(1, at=later(20), FirstName="New"),
                                             lead(2, at=later(5), FirstName="Older")], stored)
    assert [(r["external_id"], r["action"]) for r in updates] == [(ext(1), "update")]
    assert json.loads(str(updates[0]["data"]))["first_name"] == "New"
    assert (changed.counts.updated, changed.counts.unchanged) == (1, 1)


def test_a_record_listed_twice_in_one_chunk_keeps_its_newest_version(tmp_path: Path) -> None:
    records = [lead(1, at=later(1), FirstName="Old"), lead(2), lead(1, at=later(2), FirstName="New"),
               lead(3, at=later(9), FirstName="Kept"), lead(3, at=later(8), FirstName="Stale")]
    changed, rows = run(tmp_path, records)
    assert [r["external_id"] for r in rows] == [ext(1), ext(2), ext(3)]
    assert [json.loads(str(r["data"]))["first_name"] for r in rows] == ["New", "First2", "Kept"]
    assert (changed.counts.created, changed.counts.unchanged) == (3, 2)


def test_a_record_in_two_chunks_is_proposed_from_each_and_the_upsert_keeps_the_newest(tmp_path: Path) -> None:
    records = [lead(i) for i in range(1, 4)] + [lead(1, at=later(3), FirstName="Moved")]
    changed, rows = run(tmp_path, records, rows_per_chunk=3, page=3)
    assert len(changed.chunk_paths) == 2
    assert [(r["external_id"], r["source_modified_at"]) for r in rows] == [
        (ext(1), T0), (ext(2), T0), (ext(3), T0), (ext(1), later(3))]


def test_deleted_then_undeleted_records(tmp_path: Path) -> None:
    _, rows = run(tmp_path / "1", [lead(1), lead(2)])
    stored = Stored({str(r["external_id"]): stored_as(r) for r in rows})
    changed, deletes = run(tmp_path / "2", [lead(1, at=later(1), deleted=True), lead(9, deleted=True)], stored)
    assert [(r["external_id"], r["action"], r["deleted"]) for r in deletes] == [(ext(1), "delete", True)]
    assert (changed.counts.deleted, changed.counts.skipped) == (1, 1)  # never-synced lead 9 is skipped

    stored.versions[ext(1)] = stored_as(deletes[0])
    changed, again = run(tmp_path / "3", [lead(1, at=later(2), deleted=True)], stored)
    assert again == [] and changed.counts.unchanged == 1  # already flagged
    changed, undeleted = run(tmp_path / "4", [lead(1, at=later(3))], stored)
    assert [(r["action"], r["deleted"]) for r in undeleted] == [("update", False)]


def test_a_mapping_change_between_runs_updates_every_user_once(tmp_path: Path) -> None:
    _, rows = run(tmp_path / "1", [lead(1), lead(2)])
    stored = Stored({str(r["external_id"]): stored_as(r) for r in rows})
    wider = lead_mapping(MappingSpec("Email", "email"), MappingSpec("FirstName", "first_name"),
                         MappingSpec("Phone", "phone"), MappingSpec("AnnualRevenue", "revenue"),
                         MappingSpec("Company", "company"))
    changed, updates = run(tmp_path / "2", [lead(1, Company="Acme"), lead(2, Company="Initech")], stored,
                           mapping=wider)
    assert [json.loads(str(r["data"]))["company"] for r in updates] == ["Acme", "Initech"]
    assert changed.counts.updated == 2
    stored = Stored({str(r["external_id"]): stored_as(r) for r in updates})
    changed, again = run(tmp_path / "3", [lead(1, Company="Acme"), lead(2, Company="Initech")], stored,
                         mapping=wider)
    assert again == [] and changed.counts.unchanged == 2


def test_a_value_the_mapping_refuses_is_dropped_and_the_record_kept(tmp_path: Path) -> None:
    changed, rows = run(tmp_path, [lead(1, Email="not an email", Phone="9" * 65)])
    assert (rows[0]["email"], rows[0]["phone"]) == (None, None)
    assert json.loads(str(rows[0]["data"])) == {"first_name": "First1", "revenue": 1000}
    assert changed.counts.invalid_values == 2 and changed.counts.created == 1
    assert {w["property"] for w in changed.warnings} == {"email", "phone"}


def test_the_user_row_contract_drops_a_breaking_value_and_keeps_the_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stricter contract than the mapping enforces: phone numbers of at most 8 characters.
    stricter = schemas.user_rows.update_column("phone", checks=[pa.Check.str_length(max_value=8)])
    monkeypatch.setattr(schemas, "user_rows", stricter)
    changed, rows = run(tmp_path, [lead(1, Phone="+1 555 0001 ext 9"), lead(2, Phone="5550002")])
    assert [r["phone"] for r in rows] == [None, "5550002"]
    assert rows[0]["email"] == "lead1@example.com"
    assert rows[0]["content_hash"] == content_digest("lead1@example.com", None, None, None, str(rows[0]["data"]))
    assert changed.counts.invalid_values == 1 and changed.counts.created == 2
    [warning] = changed.warnings
    assert warning["property"] == "phone" and warning["id"] == sf_id(1) and "str_length" in warning["reason"]


def test_a_record_whose_keys_break_the_contract_is_dropped_with_a_warning(tmp_path: Path) -> None:
    broken = lead(1)
    broken["Id"] = "00Q0000SHORT"  # not an 18-character Salesforce ID
    late = lead(3)
    late["LastModifiedDate"] = "yesterday"
    changed, rows = run(tmp_path, [broken, lead(2), late])
    assert [r["external_id"] for r in rows] == [ext(2)]
    assert changed.counts.invalid_records == 2 and changed.counts.created == 1
    assert sorted(w["id"] for w in changed.warnings) == sorted(["00Q0000SHORT", sf_id(3)])


def test_stored_versions_are_looked_up_once_per_chunk(tmp_path: Path) -> None:
    stored = Stored()
    changed, _ = run(tmp_path, [lead(i) for i in range(10)], stored, rows_per_chunk=4, page=4)
    assert stored.asked == [4, 4, 2] and len(changed.chunk_paths) == 3


def test_change_chunks_have_the_change_schema_and_a_failed_stage_leaves_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    changed, _ = run(tmp_path / "ok", [lead(1)])
    assert next(read_chunks(changed.chunk_paths)).schema == CHANGE_SCHEMA

    def explode(table: pa_arrow.Table) -> list[schemas.Violation]:
        raise schemas.ContractError("change chunk rejected")

    monkeypatch.setattr(schemas, "violations", explode)
    with pytest.raises(schemas.ContractError):
        run(tmp_path / "failed", [lead(1)])
    assert not list((tmp_path / "failed" / "changes").glob("*.parquet"))


def test_parse_modified_reads_salesforce_times_fast_and_anything_else_through_strptime() -> None:
    assert diff.parse_modified("2026-01-05T09:00:00.000+0000") == T0
    assert diff.parse_modified("2026-01-05T10:00:00.000+0100") == T0
    assert diff.parse_modified("2026-01-05T09:00:00.250Z") == T0 + timedelta(milliseconds=250)
    with pytest.raises(ValueError):
        diff.parse_modified("2026-02-30T09:00:00.000+0000")


def test_data_is_encoded_as_the_earlier_json_encoder_did_so_stored_digests_still_match() -> None:
    import json as stdlib_json

    samples = [{"first_name": "Zoë", "revenue": 1000, "none": None, "tags": ["a", "b"], "flag": True, "f": 0.1,
                "big": 1e16, "odd": "\u2028 \x7f \"q\" \\ /", "dates": "2026-01-05T09:00:00Z"}, {}]
    for data in samples:
        assert encode_data(data) == stdlib_json.dumps(data, sort_keys=True, ensure_ascii=False,
                                                      separators=(",", ":"))
