"""Stage 1: write one object's records, as they arrive, to Parquet chunks.

``extract_object`` takes any iterable of Arrow tables in the object's ``arrow_schema`` (pages of
the REST API through ``rest_batches`` today; any other source of record batches plugs in the same
way) and returns the ``ExtractedObject`` the diff reads: chunk files, counts and the new watermark.

The REST source always uses ``queryAll``: in incremental runs it is how deletions arrive
(``IsDeleted = true``), and in full runs it lets a record deleted since the last full sync flag
its user instead of lingering.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc

from sf_pipeline.mapping import ResolvedMapping
from sf_pipeline.salesforce.describe import BOOLEAN_TYPES, NUMBER_TYPES
from sf_pipeline.sync.chunks import DEFAULT_ROWS_PER_CHUNK, ChunkWriter
from sf_pipeline.sync.manifests import ExtractedObject
from sf_pipeline.sync.plan import ObjectPlan, parse_sf_datetime

PAGE_SIZE = 2000
# A LastModifiedDate the watermark may take: Salesforce's ISO-8601 shape (anything else is the
# diff's to report as an invalid record, never the watermark's).
_TIMESTAMP = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:?[0-9]{2})$"


class QueryPage(Protocol):
    @property
    def records(self) -> list[dict[str, Any]]: ...
    @property
    def total_size(self) -> int: ...


class QueryClient(Protocol):
    def query_pages(
        self, soql: str, *, include_deleted: bool = False, batch_size: int = PAGE_SIZE
    ) -> Iterable[QueryPage]: ...


def arrow_schema(mapping: ResolvedMapping) -> pa.Schema:
    """The extract chunks' columns: the SOQL fields, typed from describe (numbers as float64,
    booleans as bool, everything else as Salesforce's text)."""

    def arrow_type(sf_type: str) -> pa.DataType:
        if sf_type in NUMBER_TYPES:
            return pa.float64()
        if sf_type in BOOLEAN_TYPES:
            return pa.bool_()
        return pa.string()

    return pa.schema(
        [pa.field(name, arrow_type(t)) for name, t in zip(mapping.soql_fields, mapping.field_types, strict=True)]
    )


def page_columns(fields: Sequence[str], records: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """A REST page's records as one list per field (``Parent.Field`` read from the nested parent)."""
    columns: dict[str, list[Any]] = {}
    for path in fields:
        if "." in path:
            parent, leaf = path.split(".", 1)
            # A parent relationship is a nested object, or null when the lookup is empty.
            columns[path] = [value.get(leaf) if value else None for value in [rec.get(parent) for rec in records]]
        else:
            columns[path] = [rec.get(path) for rec in records]
    return columns


class RestBatches:
    """The REST API's pages of ``plan.soql()`` (``queryAll``, ``nextRecordsUrl`` paging) as Arrow
    tables; ``total`` is Salesforce's ``totalSize``, known once the first page arrived."""

    def __init__(self, client: QueryClient, plan: ObjectPlan, schema: pa.Schema, *, page_size: int = PAGE_SIZE,
                 on_total: Callable[[int], None] | None = None) -> None:
        self.client = client
        self.plan = plan
        self.schema = schema
        self.page_size = page_size
        self.on_total = on_total
        self.total = 0

    def __iter__(self) -> Iterator[pa.Table]:
        first = True
        for page in self.client.query_pages(self.plan.soql(), include_deleted=True, batch_size=self.page_size):
            if first:
                self.total = page.total_size
                if self.on_total:
                    self.on_total(page.total_size)
                first = False
            yield pa.Table.from_pydict(page_columns(self.schema.names, page.records), self.schema)


def extract_object(
    batches: Iterable[pa.Table],
    plan: ObjectPlan,
    mapping: ResolvedMapping,
    *,
    out_dir: Path,
    rows_per_chunk: int = DEFAULT_ROWS_PER_CHUNK,
    on_batch: Callable[[int], None] | None = None,
) -> ExtractedObject:
    """Write ``batches`` (tables in ``arrow_schema(mapping)``) as the object's extract chunks.

    The watermark after is the newest ``LastModifiedDate`` seen (never older than the one before);
    Salesforce's fixed-width UTC text sorts as time, so the newest is the text maximum."""
    schema = arrow_schema(mapping)
    writer = ChunkWriter(out_dir, f"extract-{plan.object_name}", schema, rows_per_chunk=rows_per_chunk)
    result = ExtractedObject(
        object_name=plan.object_name,
        full=plan.full,
        soql=plan.soql(),
        mapping=mapping,
        fingerprint=plan.fingerprint,
        watermark_before=plan.watermark,
        watermark_after=plan.watermark,
        where=plan.where,
    )
    newest: str | None = None
    # The watermark covers the parents' timestamps too (see ``plan``).
    stamps = ("LastModifiedDate", *(f"{p}.LastModifiedDate" for p in plan.parents))
    try:
        for batch in batches:
            writer.append(batch)
            n = batch.num_rows
            if n:
                for name in stamps:
                    if name not in batch.column_names:
                        continue
                    modified = batch[name]
                    page_newest = pc.max(modified.filter(pc.match_substring_regex(modified, _TIMESTAMP))).as_py()
                    if page_newest is not None and (newest is None or page_newest > newest):
                        newest = page_newest
                result.deleted_seen += pc.sum(batch["IsDeleted"]).as_py() or 0
            result.fetched += n
            if on_batch:
                on_batch(n)
    except BaseException:
        writer.abort()
        raise
    result.chunk_paths = writer.close()
    result.total = max(result.total, result.fetched)
    if newest is not None:
        seen = parse_sf_datetime(newest)
        if result.watermark_after is None or seen > result.watermark_after:
            result.watermark_after = seen
    return result
