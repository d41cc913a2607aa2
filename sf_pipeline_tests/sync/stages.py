"""Inputs for the sync stages without Salesforce: resolved mappings from hand-built describes,
REST-shaped records, extract chunks written by the real extract stage, and stored versions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from sf_pipeline.mapping import MappingSpec, ResolvedMapping, resolve_object_mapping
from sf_pipeline.storage.users import StoredVersion
from sf_pipeline.sync.extract import arrow_schema, extract_object, page_columns
from sf_pipeline.sync.manifests import ExtractedObject
from sf_pipeline.sync.plan import plan_object
from sf_pipeline_tests.describes import describe

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
MAPPINGS = (
    MappingSpec("Email", "email"),
    MappingSpec("FirstName", "first_name"),
    MappingSpec("Phone", "phone"),
    MappingSpec("AnnualRevenue", "revenue"),
)


def lead_mapping(*specs: MappingSpec) -> ResolvedMapping:
    return resolve_object_mapping("Lead", list(specs or MAPPINGS), describe)


def sf_id(i: int) -> str:
    return f"00Q{i:015d}"


def sf_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}+0000"


def lead(i: int, *, at: datetime = T0, deleted: bool = False, **fields: Any) -> dict[str, Any]:
    """A Lead as the REST API returns it; ``fields`` override the mapped values."""
    values: dict[str, Any] = {"Email": f"lead{i}@example.com", "FirstName": f"First{i}", "Phone": f"+1 555 {i:04d}",
                              "AnnualRevenue": 1000.0 * i}
    values.update(fields)
    return {"Id": sf_id(i), "LastModifiedDate": sf_time(at), "IsDeleted": deleted, **values}


def extracted(folder: Path, records: Sequence[Mapping[str, Any]], *, mapping: ResolvedMapping | None = None,
              rows_per_chunk: int = 50_000, page: int = 1000) -> ExtractedObject:
    """The records through the real extract stage, as pages of ``page`` records."""
    mapping = mapping or lead_mapping()
    plan = plan_object(object_name="Lead", fields=mapping.soql_fields, where=None, mappings=[],
                       stored_watermark=None, stored_fingerprint=None, force_full=True)
    schema = arrow_schema(mapping)
    batches = [pa.Table.from_pydict(page_columns(schema.names, [dict(r) for r in records[i : i + page]]), schema)
               for i in range(0, len(records), page)]
    return extract_object(batches, plan, mapping, out_dir=folder, rows_per_chunk=rows_per_chunk)


class Stored:
    """Stored versions held in a dict, by external ID."""

    def __init__(self, versions: Mapping[str, StoredVersion] | None = None) -> None:
        self.versions = dict(versions or {})
        self.asked: list[int] = []

    def lookup(self, external_ids: Sequence[str]) -> dict[str, StoredVersion]:
        self.asked.append(len(external_ids))
        return {e: self.versions[e] for e in external_ids if e in self.versions}


def later(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)
