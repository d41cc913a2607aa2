"""Stage 1 over Bulk API 2.0, and the per-object choice between it and REST.

The guarantees are the REST path's (``sf_pipeline.sync.extract``):

- the same SOQL and boundary (``LastModifiedDate >= watermark - lookback``, ``queryAll`` so
  deletions arrive), without ORDER BY: Bulk results are unordered, which is fine because the
  watermark is the newest ``LastModifiedDate`` seen over all pages and is stored only when the
  whole run succeeds;
- records go to the same Parquet chunk files, a page (``maxRecords``) at a time, so memory stays
  flat however large the result;
- a page is used only when complete, and the pages together must hold exactly the job's
  ``numberRecordsProcessed`` records;
- every job a run creates is written down (``JobJournal``) before its results are read and
  crossed off once it is finished with; the next run aborts what a killed run left open. A job's
  results are only ever read by the run that created it, so nothing is counted twice.

Fetching overlaps processing: a thread polls the job and downloads and parses the next page
(pyarrow parses without the GIL) while this thread rewrites datetimes and hands the previous page
to the chunk writer, whose Parquet writes run on their own thread. All of a run's Bulk jobs are
created before the first one is read, so Salesforce processes them side by side.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc

from sf_pipeline.salesforce.bulk import BulkJobFailed, BulkQueryClient, salesforce_datetimes
from sf_pipeline.salesforce.client import QueryPage, SalesforceClient
from sf_pipeline.salesforce.describe import DATETIME_TYPES, ObjectDescribe
from sf_pipeline.salesforce.errors import ApiLimitError, AuthenticationError, SalesforceError
from sf_pipeline.sync.api_choice import BULK_THRESHOLD, ApiChoice, choose_by_estimate, choose_up_front
from sf_pipeline.sync.chunks import ChunkWriter
from sf_pipeline.sync.extract import PAGE_SIZE, ProgressCallback, arrow_schema, extract_object, field_type
from sf_pipeline.sync.manifests import ExtractedObject
from sf_pipeline.sync.plan import ObjectPlan, parse_sf_datetime

log = logging.getLogger("sf_pipeline.sync")

# Failures that end the run rather than fall back: REST would meet them too.
_FATAL = (ApiLimitError, AuthenticationError)


class Journal(Protocol):
    def remember(self, object_name: str, job_id: str) -> None: ...
    def forget(self, job_id: str) -> None: ...


@dataclass
class ExtractOptions:
    api: str = "auto"
    bulk_threshold: int = BULK_THRESHOLD
    page_size: int = PAGE_SIZE
    on_page: ProgressCallback | None = None
    on_total: Callable[[int], None] | None = None


def abort_leftover_jobs(bulk: BulkQueryClient, leftovers: Sequence[Any], forget: Callable[[str], None]) -> None:
    """Abort the jobs killed runs left open (``leftovers``: items with ``job_id``, ``run_id``,
    ``object_name``). A job that already finished refuses the abort; either way it is forgotten."""
    for job in leftovers:
        try:
            bulk.abort(job.job_id)
            log.info("Aborted Bulk API job %s (%s) left open by run %s", job.job_id, job.object_name, job.run_id)
        except _FATAL:
            raise
        except SalesforceError as exc:
            log.info("Bulk API job %s (%s) left by run %s was not aborted (%s); its results are ignored",
                     job.job_id, job.object_name, job.run_id, exc.message)
        forget(job.job_id)


def extract_objects(
    client: SalesforceClient,
    bulk: BulkQueryClient,
    plans: Sequence[ObjectPlan],
    *,
    describe: Callable[[str], ObjectDescribe],
    out_dir: Path,
    journal: Journal,
    options: ExtractOptions,
) -> list[ExtractedObject]:
    """Extract every planned object with the API chosen for it (see ``sf_pipeline.sync.api_choice``)."""
    choices = {plan.object_name: choose_up_front(options.api, plan) for plan in plans}
    jobs: dict[str, str] = {}
    fallbacks: dict[str, str] = {}
    for plan in plans:  # start every Bulk job first: Salesforce works on them side by side
        choice = choices[plan.object_name]
        if choice is not None and choice.api == "bulk":
            job_id, failure = _start_job(bulk, plan, journal)
            if job_id is not None:
                jobs[plan.object_name] = job_id
            else:
                fallbacks[plan.object_name] = failure or "unknown"
    results = []
    for plan in plans:
        name = plan.object_name
        choice = choices[name]
        if name in jobs:
            assert choice is not None
            results.append(_bulk_or_fallback(client, bulk, plan, jobs[name], choice, describe=describe,
                                             out_dir=out_dir, journal=journal, options=options))
        elif name in fallbacks:
            results.append(_rest(client, plan, None, describe=describe, out_dir=out_dir, options=options,
                                 reason=_fallback_reason(fallbacks[name])))
        elif choice is not None:
            results.append(_rest(client, plan, None, describe=describe, out_dir=out_dir, options=options,
                                 reason=choice.reason))
        else:
            results.append(_estimate_then_extract(client, bulk, plan, describe=describe, out_dir=out_dir,
                                                  journal=journal, options=options))
    return results


def _estimate_then_extract(
    client: SalesforceClient,
    bulk: BulkQueryClient,
    plan: ObjectPlan,
    *,
    describe: Callable[[str], ObjectDescribe],
    out_dir: Path,
    journal: Journal,
    options: ExtractOptions,
) -> ExtractedObject:
    """An incremental run under ``auto``: the REST query's first page carries the estimate."""
    pages = client.query_pages(plan.soql(), include_deleted=True, batch_size=options.page_size)
    assert isinstance(pages, Generator)
    first = next(pages)
    choice = choose_by_estimate(first.total_size, options.bulk_threshold)
    if choice.api == "rest":
        return _rest(client, plan, _Replay(first, pages), describe=describe, out_dir=out_dir, options=options,
                     reason=choice.reason)
    pages.close()
    job_id, failure = _start_job(bulk, plan, journal)
    if job_id is None:
        return _rest(client, plan, None, describe=describe, out_dir=out_dir, options=options,
                     reason=_fallback_reason(failure or "unknown"))
    return _bulk_or_fallback(client, bulk, plan, job_id, choice, describe=describe, out_dir=out_dir,
                             journal=journal, options=options)


def _start_job(bulk: BulkQueryClient, plan: ObjectPlan, journal: Journal) -> tuple[str | None, str | None]:
    try:
        job = bulk.create(plan.soql(ordered=False), include_deleted=True)
    except _FATAL:
        raise
    except SalesforceError as exc:
        log.warning("%s: Bulk API 2.0 job not created (%s); falling back to REST", plan.object_name, exc.message)
        return None, f"job not created: {exc.message}"
    journal.remember(plan.object_name, job.id)
    return job.id, None


def _fallback_reason(failure: str) -> str:
    return f"fell back from Bulk API 2.0: {failure}"


def _bulk_or_fallback(
    client: SalesforceClient,
    bulk: BulkQueryClient,
    plan: ObjectPlan,
    job_id: str,
    choice: ApiChoice,
    *,
    describe: Callable[[str], ObjectDescribe],
    out_dir: Path,
    journal: Journal,
    options: ExtractOptions,
) -> ExtractedObject:
    try:
        result = extract_bulk(bulk, job_id, plan, describe=describe, out_dir=out_dir, on_page=options.on_page,
                              on_total=options.on_total)
    except _FATAL as exc:
        log.error("%s: Bulk API 2.0 job %s stopped: %s", plan.object_name, job_id, exc.message)
        _abort_quietly(bulk, job_id, journal)
        raise
    except SalesforceError as exc:
        log.warning("%s: Bulk API 2.0 job %s failed (%s); falling back to REST", plan.object_name, job_id,
                    exc.message)
        _abort_quietly(bulk, job_id, journal)
        return _rest(client, plan, None, describe=describe, out_dir=out_dir, options=options,
                     reason=_fallback_reason(f"job {job_id}: {exc.message}"))
    except BaseException:
        _abort_quietly(bulk, job_id, journal)
        raise
    journal.forget(job_id)
    result.api_reason = choice.reason
    return result


def _abort_quietly(bulk: BulkQueryClient, job_id: str, journal: Journal) -> None:
    """Abort a job this run gives up on; if even that fails, the journal keeps it for the next run."""
    try:
        bulk.abort(job_id)
    except SalesforceError as exc:
        if isinstance(exc, _FATAL) or exc.status is None or exc.status >= 500:
            log.info("Bulk API job %s not aborted now (%s); the next run aborts it", job_id, exc.message)
            return
        # Otherwise Salesforce refused because the job already ended (Failed, JobComplete, Aborted).
    journal.forget(job_id)


def _rest(
    client: SalesforceClient,
    plan: ObjectPlan,
    source: Any,
    *,
    describe: Callable[[str], ObjectDescribe],
    out_dir: Path,
    options: ExtractOptions,
    reason: str,
) -> ExtractedObject:
    result = extract_object(source or client, plan, describe=describe, out_dir=out_dir, on_page=options.on_page,
                            on_total=options.on_total, page_size=options.page_size)
    result.api = "rest"
    result.api_reason = reason
    return result


class _Replay:
    """A record source that replays a first page already fetched, then the rest of its pages."""

    def __init__(self, first: QueryPage, rest: Iterator[QueryPage]) -> None:
        self._first = first
        self._rest = rest

    def query_pages(self, soql: str, *, include_deleted: bool = False, batch_size: int = PAGE_SIZE) -> Any:
        yield self._first
        yield from self._rest


# ----------------------------------------------------------------------------- one Bulk job


def extract_bulk(
    bulk: BulkQueryClient,
    job_id: str,
    plan: ObjectPlan,
    *,
    describe: Callable[[str], ObjectDescribe],
    out_dir: Path,
    on_page: ProgressCallback | None = None,
    on_total: Callable[[int], None] | None = None,
) -> ExtractedObject:
    """Wait for ``job_id`` and write its results to chunk files; the chunks of a failed attempt
    are removed, so a fallback starts clean."""
    fields = plan.fields
    types = [field_type(describe, plan.object_name, f) for f in fields]
    schema = arrow_schema(fields, types)
    datetimes = [f for f, t in zip(fields, types, strict=True) if t in DATETIME_TYPES]
    writer = ChunkWriter(out_dir, f"extract-{plan.object_name}-bulk", schema)
    result = ExtractedObject(
        object_name=plan.object_name,
        full=plan.full,
        soql=plan.soql(ordered=False),
        fields=fields,
        fingerprint=plan.fingerprint,
        watermark_before=plan.watermark,
        watermark_after=plan.watermark,
        api="bulk",
    )
    newest: str | None = None
    expected = 0
    fetcher = _Fetcher(bulk, job_id, schema)
    try:
        for item in fetcher:
            if isinstance(item, int):
                expected = result.total = item
                if on_total:
                    on_total(item)
                continue
            table = item
            for name in datetimes:
                table = table.set_column(table.schema.get_field_index(name), name,
                                         salesforce_datetimes(table.column(name)))
            if table.num_rows:
                page_newest = pc.max(table.column("LastModifiedDate")).as_py()
                if page_newest is not None and (newest is None or page_newest > newest):
                    newest = page_newest
                result.deleted_seen += int(pc.sum(table.column("IsDeleted")).as_py() or 0)
                writer.append_columns({name: table.column(name) for name in fields}, table.num_rows)
            result.fetched += table.num_rows
            if on_page:
                on_page(table.num_rows)
        if result.fetched != expected:
            raise BulkJobFailed(f"Bulk API job {job_id} reported {expected} records but its pages held "
                                f"{result.fetched}", error_code="CountMismatch")
        result.chunk_paths = writer.close()
    except BaseException:
        fetcher.stop()
        writer.abort()
        for path in writer.paths:
            Path(path).unlink(missing_ok=True)
        raise
    if newest is not None:
        seen = parse_sf_datetime(newest)
        if result.watermark_after is None or seen > result.watermark_after:
            result.watermark_after = seen
    return result


_DONE = object()


class _Fetcher:
    """Polls the job and downloads its pages on a thread, one page ahead of the consumer.

    Yields the job's record count (an ``int``) once it completes, then each page's table. The
    queue holds one page, so at most three pages exist at once (queued, being read, being
    written): memory stays flat however many pages the job has."""

    def __init__(self, bulk: BulkQueryClient, job_id: str, schema: pa.Schema) -> None:
        self._bulk = bulk
        self._job_id = job_id
        self._schema = schema
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"bulk-{job_id}", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            job = self._bulk.wait(self._job_id, stop=self._stop.is_set)
            if not self._put(job.records_processed):
                return
            for page in self._bulk.pages(self._job_id, self._schema, stop=self._stop.is_set):
                if not self._put(page.table):
                    return
            self._put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(exc)

    def __iter__(self) -> Iterator[Any]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                self._thread.join()
                return
            if isinstance(item, BaseException):
                self._thread.join()
                raise item
            yield item

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

