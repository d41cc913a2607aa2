"""Stage 1: pull each object's matching records from Salesforce into Parquet chunks.

Always ``queryAll``: in incremental runs it is how deletions arrive (``IsDeleted = true``), and in
full runs it lets a record deleted since the last full sync flag its user instead of lingering.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from sf_pipeline.salesforce.describe import BOOLEAN_TYPES, NUMBER_TYPES, ObjectDescribe
from sf_pipeline.sync.chunks import ChunkWriter
from sf_pipeline.sync.manifests import ExtractedObject
from sf_pipeline.sync.plan import ObjectPlan, parse_sf_datetime

PAGE_SIZE = 2000
ProgressCallback = Callable[[int], None]


class QueryPageLike(Protocol):
    records: list[dict[str, Any]]
    total_size: int


class RecordSource(Protocol):
    def query_pages(
        self, soql: str, *, include_deleted: bool = False, batch_size: int = PAGE_SIZE
    ) -> Any: ...


def field_type(describe: Callable[[str], ObjectDescribe], object_name: str, path: str) -> str:
    """The describe type of ``Field`` or of a parent path such as ``Lead.Email``."""
    obj = describe(object_name)
    *parents, leaf = path.split(".")
    for relationship in parents:
        ref = obj.relationship(relationship)
        if ref is None or not ref.reference_to:
            return "string"
        obj = describe(ref.reference_to[0])
    found = obj.field(leaf)
    return found.type if found else "string"


def arrow_schema(fields: Sequence[str], types: Sequence[str]) -> pa.Schema:
    def arrow_type(sf_type: str) -> pa.DataType:
        if sf_type in NUMBER_TYPES:
            return pa.float64()
        if sf_type in BOOLEAN_TYPES:
            return pa.bool_()
        return pa.string()

    return pa.schema([pa.field(name, arrow_type(t)) for name, t in zip(fields, types, strict=True)])


def _page_columns(fields: Sequence[str], records: list[dict[str, Any]]) -> list[list[Any]]:
    """A page's records as one list per field (``Parent.Field`` read from the nested parent record)."""
    columns: list[list[Any]] = []
    for path in fields:
        if "." in path:
            parent, leaf = path.split(".", 1)
            # A parent relationship is a nested object, or null when the lookup is empty.
            columns.append([value.get(leaf) if value else None for value in [rec.get(parent) for rec in records]])
        else:
            columns.append([rec.get(path) for rec in records])
    return columns


def extract_object(
    source: RecordSource,
    plan: ObjectPlan,
    *,
    describe: Callable[[str], ObjectDescribe],
    out_dir: Path,
    on_page: ProgressCallback | None = None,
    on_total: Callable[[int], None] | None = None,
    page_size: int = PAGE_SIZE,
) -> ExtractedObject:
    fields = plan.fields
    schema = arrow_schema(fields, [field_type(describe, plan.object_name, f) for f in fields])
    writer = ChunkWriter(out_dir, f"extract-{plan.object_name}", schema)
    # The watermark covers the parents' timestamps too (see ``plan``).
    stamp_indexes = [fields.index(f) for f in ("LastModifiedDate", *(f"{p}.LastModifiedDate" for p in plan.parents))
                     if f in fields]
    deleted_index = fields.index("IsDeleted")
    newest: str | None = None
    result = ExtractedObject(
        object_name=plan.object_name,
        full=plan.full,
        soql=plan.soql(),
        fields=fields,
        fingerprint=plan.fingerprint,
        watermark_before=plan.watermark,
        watermark_after=plan.watermark,
        where=plan.where,
    )
    first = True
    try:
        for page in source.query_pages(result.soql, include_deleted=True, batch_size=page_size):
            if first:
                result.total = page.total_size
                if on_total:
                    on_total(page.total_size)
                first = False
            records = page.records
            columns = _page_columns(fields, records)
            writer.append_columns(dict(zip(fields, columns, strict=True)), len(records))
            if records:
                # Pages come ordered by LastModifiedDate; Salesforce's fixed-width UTC format sorts as text.
                for index in stamp_indexes:
                    stamps = [v for v in columns[index] if v is not None]
                    if stamps:
                        page_newest = max(stamps)
                        newest = page_newest if newest is None or page_newest > newest else newest
                result.deleted_seen += sum(1 for v in columns[deleted_index] if v)
            result.fetched += len(records)
            if on_page:
                on_page(len(records))
    except BaseException:
        writer.abort()
        raise
    result.chunk_paths = writer.close()
    if newest is not None:
        seen = parse_sf_datetime(newest)
        if result.watermark_after is None or seen > result.watermark_after:
            result.watermark_after = seen
    return result
