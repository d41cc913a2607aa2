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

from sf_pipeline.mapping import ResolvedMapping
from sf_pipeline.salesforce.bulk import BulkJobFailed, BulkQueryClient, salesforce_datetimes
from sf_pipeline.salesforce.client import QueryPage, SalesforceClient
from sf_pipeline.salesforce.describe import DATETIME_TYPES
from sf_pipeline.salesforce.errors import ApiLimitError, AuthenticationError, SalesforceError
from sf_pipeline.sync.api_choice import BULK_THRESHOLD, ApiChoice, choose_by_estimate, choose_up_front
from sf_pipeline.sync.chunks import DEFAULT_ROWS_PER_CHUNK
from sf_pipeline.sync.extract import PAGE_SIZE, RestBatches, arrow_schema, extract_object
from sf_pipeline.sync.manifests import ExtractedObject
from sf_pipeline.sync.plan import ObjectPlan

log = logging.getLogger("sf_pipeline.sync")

# Failures that end the run rather than fall back: REST would meet them too.
FATAL_ERRORS = (ApiLimitError, AuthenticationError)


class Journal(Protocol):
    def remember(self, object_name: str, job_id: str) -> None: ...
    def forget(self, job_id: str) -> None: ...


@dataclass
class ExtractOptions:
    api: str = "auto"
    bulk_threshold: int = BULK_THRESHOLD
    page_size: int = PAGE_SIZE
    rows_per_chunk: int = DEFAULT_ROWS_PER_CHUNK
    on_page: Callable[[int], None] | None = None
    on_total: Callable[[int], None] | None = None


def abort_leftover_jobs(bulk: BulkQueryClient, leftovers: Sequence[Any], forget: Callable[[str], None]) -> None:
    """Abort the jobs killed runs left open (``leftovers``: items with ``job_id``, ``run_id``,
    ``object_name``). A job that already finished refuses the abort; either way it is forgotten."""
    for job in leftovers:
        try:
            bulk.abort(job.job_id)
            log.info("Aborted Bulk API job %s (%s) left open by run %s", job.job_id, job.object_name, job.run_id)
        except FATAL_ERRORS:
            raise
        except SalesforceError as exc:
            log.info("Bulk API job %s (%s) left by run %s was not aborted (%s); its results are ignored",
                     job.job_id, job.object_name, job.run_id, exc.message)
        forget(job.job_id)


def extract_objects(
    client: SalesforceClient,
    bulk: BulkQueryClient,
    plans: Sequence[tuple[ObjectPlan, ResolvedMapping]],
    *,
    out_dir: Path,
    journal: Journal,
    options: ExtractOptions,
) -> list[ExtractedObject]:
    """Extract every planned object with the API chosen for it (see ``sf_pipeline.sync.api_choice``)."""
    choices = {plan.object_name: choose_up_front(options.api, plan) for plan, _ in plans}
    jobs: dict[str, str] = {}
    fallbacks: dict[str, str] = {}
    for plan, _ in plans:  # start every Bulk job first: Salesforce works on them side by side
        choice = choices[plan.object_name]
        if choice is not None and choice.api == "bulk":
            job_id, failure = _start_job(bulk, plan, journal)
            if job_id is not None:
                jobs[plan.object_name] = job_id
            else:
                fallbacks[plan.object_name] = failure or "unknown"
    results = []
    for plan, mapping in plans:
        name = plan.object_name
        choice = choices[name]
        if name in jobs:
            assert choice is not None
            results.append(_bulk_or_fallback(client, bulk, plan, mapping, jobs[name], choice, out_dir=out_dir,
                                             journal=journal, options=options))
        elif name in fallbacks:
            results.append(_rest(client, plan, mapping, out_dir=out_dir, options=options,
                                 reason=_fallback_reason(fallbacks[name])))
        elif choice is not None:
            results.append(_rest(client, plan, mapping, out_dir=out_dir, options=options, reason=choice.reason))
        else:
            results.append(_estimate_then_extract(client, bulk, plan, mapping, out_dir=out_dir, journal=journal,
                                                  options=options))
    return results


def _estimate_then_extract(
    client: SalesforceClient,
    bulk: BulkQueryClient,
    plan: ObjectPlan,
    mapping: ResolvedMapping,
    *,
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
        return _rest(_Replay(first, pages), plan, mapping, out_dir=out_dir, options=options, reason=choice.reason)
    pages.close()
    job_id, failure = _start_job(bulk, plan, journal)
    if job_id is None:
        return _rest(client, plan, mapping, out_dir=out_dir, options=options,
                     reason=_fallback_reason(failure or "unknown"))
    return _bulk_or_fallback(client, bulk, plan, mapping, job_id, choice, out_dir=out_dir, journal=journal,
                             options=options, expected=first.total_size)


def _start_job(bulk: BulkQueryClient, plan: ObjectPlan, journal: Journal) -> tuple[str | None, str | None]:
    try:
        job = bulk.create(plan.soql(ordered=False), include_deleted=True)
    except FATAL_ERRORS as exc:
        log.error("%s: Bulk API 2.0 job not created: %s", plan.object_name, exc.message)
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
    mapping: ResolvedMapping,
    job_id: str,
    choice: ApiChoice,
    *,
    out_dir: Path,
    journal: Journal,
    options: ExtractOptions,
    expected: int | None = None,
) -> ExtractedObject:
    try:
        result = extract_bulk(bulk, job_id, plan, mapping, out_dir=out_dir, rows_per_chunk=options.rows_per_chunk,
                              on_page=options.on_page, on_total=options.on_total, expected=expected)
    except FATAL_ERRORS as exc:
        log.error("%s: Bulk API 2.0 job %s stopped: %s", plan.object_name, job_id, exc.message)
        abort_quietly(bulk, job_id, journal)
        raise
    except SalesforceError as exc:
        log.warning("%s: Bulk API 2.0 job %s failed (%s); falling back to REST", plan.object_name, job_id,
                    exc.message)
        abort_quietly(bulk, job_id, journal)
        _remove_chunks(out_dir, plan.object_name)
        return _rest(client, plan, mapping, out_dir=out_dir, options=options,
                     reason=_fallback_reason(f"job {job_id}: {exc.message}"))
    except BaseException:
        abort_quietly(bulk, job_id, journal)
        raise
    journal.forget(job_id)
    result.api_reason = choice.reason
    return result


def abort_quietly(bulk: BulkQueryClient, job_id: str, journal: Journal) -> None:
    """Abort a job this run gives up on; if even that fails, the journal keeps it for the next run."""
    try:
        bulk.abort(job_id)
    except SalesforceError as exc:
        if isinstance(exc, FATAL_ERRORS) or exc.status is None or exc.status >= 500:
            log.info("Bulk API job %s not aborted now (%s); the next run aborts it", job_id, exc.message)
            return
        # Otherwise Salesforce refused because the job already ended (Failed, JobComplete, Aborted).
    journal.forget(job_id)


def _remove_chunks(out_dir: Path, object_name: str) -> None:
    """The chunks a failed Bulk attempt wrote (the REST attempt writes its own, under the same names)."""
    for path in out_dir.glob(f"extract-{object_name}-*"):
        path.unlink(missing_ok=True)


def _rest(
    client: Any,
    plan: ObjectPlan,
    mapping: ResolvedMapping,
    *,
    out_dir: Path,
    options: ExtractOptions,
    reason: str,
) -> ExtractedObject:
    pages = RestBatches(client, plan, arrow_schema(mapping), page_size=options.page_size, on_total=options.on_total)
    result = extract_object(pages, plan, mapping, out_dir=out_dir, rows_per_chunk=options.rows_per_chunk,
                            on_batch=options.on_page)
    result.total = max(pages.total, result.fetched)
    result.api = "rest"
    result.api_reason = reason
    return result


class _Replay:
    """A query client that replays a first page already fetched, then the rest of its pages."""

    def __init__(self, first: QueryPage, rest: Iterator[QueryPage]) -> None:
        self._first = first
        self._rest = rest

    def query_pages(self, soql: str, *, include_deleted: bool = False, batch_size: int = PAGE_SIZE) -> Any:
        yield self._first
        yield from self._rest


# ----------------------------------------------------------------------------- one Bulk job


class BulkBatches:
    """A completed job's pages as Arrow tables in ``arrow_schema(mapping)``, datetimes in the REST
    API's ``+0000`` form. Checks at the end that the pages held all ``numberRecordsProcessed``
    records; ``total`` is that number once the job completed."""

    def __init__(self, bulk: BulkQueryClient, job_id: str, mapping: ResolvedMapping,
                 on_total: Callable[[int], None] | None = None, expected: int | None = None) -> None:
        self.bulk = bulk
        self.expected = expected
        self.job_id = job_id
        self.schema = arrow_schema(mapping)
        self.datetimes = [f for f, t in zip(mapping.soql_fields, mapping.field_types, strict=True)
                          if t in DATETIME_TYPES]
        self.on_total = on_total
        self.total = 0
        self._fetcher: _Fetcher | None = None

    def stop(self) -> None:
        """Stop the download thread (idempotent): the caller is done with this job's client."""
        if self._fetcher is not None:
            self._fetcher.stop()

    def __iter__(self) -> Iterator[pa.Table]:
        fetcher = self._fetcher = _Fetcher(self.bulk, self.job_id, self.schema, self.expected)
        seen = 0
        try:
            for item in fetcher:
                if isinstance(item, int):
                    self.total = item
                    if self.on_total:
                        self.on_total(item)
                    continue
                table: pa.Table = item
                for name in self.datetimes:
                    index = table.schema.get_field_index(name)
                    table = table.set_column(index, name, salesforce_datetimes(table.column(name)))
                seen += table.num_rows
                yield table
        finally:
            fetcher.stop()
        if seen != self.total:
            raise BulkJobFailed(f"Bulk API job {self.job_id} reported {self.total} records but its pages held "
                                f"{seen}", error_code="CountMismatch")


def extract_bulk(
    bulk: BulkQueryClient,
    job_id: str,
    plan: ObjectPlan,
    mapping: ResolvedMapping,
    *,
    out_dir: Path,
    rows_per_chunk: int = DEFAULT_ROWS_PER_CHUNK,
    on_page: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    expected: int | None = None,
) -> ExtractedObject:
    """Wait for ``job_id`` and write its results as the object's extract chunks (``expected``: the
    records the job will hold, when known, to time the polls)."""
    batches = BulkBatches(bulk, job_id, mapping, on_total=on_total, expected=expected)
    try:
        result = extract_object(batches, plan, mapping, out_dir=out_dir, rows_per_chunk=rows_per_chunk,
                                on_batch=on_page)
    finally:
        batches.stop()  # before anyone else uses the client (an abort, the REST fallback)
    result.total = batches.total
    result.soql = plan.soql(ordered=False)
    result.api = "bulk"
    return result


_DONE = object()


class _Fetcher:
    """Polls the job and downloads its pages on a thread, one page ahead of the consumer.

    Yields the job's record count (an ``int``) once it completes, then each page's table. The
    queue holds one page, so at most three pages exist at once (queued, being read, being
    written): memory stays flat however many pages the job has."""

    def __init__(self, bulk: BulkQueryClient, job_id: str, schema: pa.Schema, expected: int | None) -> None:
        self._bulk = bulk
        self._expected = expected
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
            job = self._bulk.wait(self._job_id, expected=self._expected, stop=self._stop.is_set)
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
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
