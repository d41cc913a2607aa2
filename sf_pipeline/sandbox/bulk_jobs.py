"""Bulk API 2.0 query jobs as org state, with no HTTP: the jobs, their state machine and results.

    job = org.bulk.create(org, "query", "SELECT Id, Email FROM Lead", api_version="59.0")
    org.bulk.info(org, job.id).state            # "JobComplete" once its processing time has passed
    page = org.bulk.results(org, job.id, locator=None, max_records=1000)
    page.body, page.locator, page.records       # CSV bytes, next locator (None when done), count

A job is created ``UploadComplete``. The first time anyone looks at it, the query runs (the
matching rows are fixed then) and the job is ``InProgress`` until its processing time has
passed: ``fixed_seconds + per_record_seconds * rows`` (both 0 by default, so a job is
``JobComplete`` on its first poll). At completion the selected values are copied, so results
stay what they were at completion however the org changes afterwards. Time is the process's
monotonic clock, not the org clock, so a frozen org clock does not stall jobs.

``Failed`` comes from an injected failure (``fail_next`` / ``fail``) or from the daily result
storage running out; ``Aborted`` from ``abort``. Results pages are addressed by a locator, the
base64 text of the offset of the page's first record (the documentation's example ``MTAwMDA`` is
base64 of ``10000``); a locator can be read again for as long as the job exists, unless the
control API made it expire.
"""

from __future__ import annotations

import base64
import binascii
import math
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from sf_pipeline.sandbox import ids
from sf_pipeline.sandbox.bulk_csv import DELIMITERS, LINE_ENDINGS, CsvColumn, CsvFormat, render_csv
from sf_pipeline.sandbox.bulk_soql import check_clauses, check_compound
from sf_pipeline.sandbox.errors import (
    BulkLimitExceeded,
    InvalidJob,
    InvalidJobState,
    InvalidQueryLocator,
    NotFound,
)
from sf_pipeline.sandbox.planner import Plan

JobState = Literal["UploadComplete", "InProgress", "JobComplete", "Failed", "Aborted"]
FINAL_STATES: frozenset[str] = frozenset({"JobComplete", "Failed", "Aborted"})
OPERATIONS = ("query", "queryAll")
JOB_PREFIX = "750"
MAX_JOBS = 10_000
# DailyBulkV2QueryFileStorageMB: 1 TB a day, as the limits resource reports it.
MAX_STORAGE_MB = 976_562


class JobOrg(Protocol):
    """What a job needs from the org: compile and run SOQL, copy values, who is asking."""

    def plan(self, soql: str) -> Plan: ...

    def run(self, plan: Plan, *, include_deleted: bool) -> list[int]: ...

    def snapshot(self, plan: Plan, rows: Sequence[int]) -> list[list[Any]]: ...

    def now_text(self) -> str: ...

    @property
    def user_id(self) -> str: ...


@dataclass
class BulkSettings:
    fixed_seconds: float = 0.0  # processing time every job takes
    per_record_seconds: float = 0.0  # plus this much per record the query matches
    default_max_records: int = 100_000  # a results page without maxRecords
    list_page_size: int = 1000  # jobs per page of GET jobs/query


@dataclass
class BulkJob:
    id: str
    operation: str
    object: str
    query: str
    plan: Plan
    api_version: str
    column_delimiter: str
    line_ending: str
    created_by: str
    created_date: str
    system_modstamp: str
    created_at: float  # monotonic
    state: JobState = "UploadComplete"
    due: float = 0.0
    rows: list[int] | None = None
    values: list[list[Any]] | None = None  # column-major snapshot taken at completion
    error_message: str | None = None
    fail_with: str | None = None  # an injected failure, applied when the job would complete
    number_records_processed: int = 0
    total_processing_time_ms: int = 0
    retries: int = 0
    expired_locators: set[str] = field(default_factory=set)
    all_locators_expired: bool = False

    @property
    def columns(self) -> tuple[CsvColumn, ...]:
        return tuple(CsvColumn(c.header, c.field.type) for c in self.plan.columns)

    @property
    def csv_format(self) -> CsvFormat:
        return CsvFormat.of(self.column_delimiter, self.line_ending)

    def info(self, *, full: bool = True) -> dict[str, Any]:
        """The job info JSON: the create response (``full=False``) or GET jobs/query/{id}."""
        data: dict[str, Any] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.object,
            "createdById": self.created_by,
            "createdDate": self.created_date,
            "systemModstamp": self.system_modstamp,
            "state": self.state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(self.api_version),
        }
        if full:
            data["jobType"] = "V2Query"
        data["lineEnding"] = self.line_ending
        data["columnDelimiter"] = self.column_delimiter
        if full:
            data["numberRecordsProcessed"] = self.number_records_processed
            data["retries"] = self.retries
            data["totalProcessingTime"] = self.total_processing_time_ms
            if self.state == "Failed":
                data["errorMessage"] = self.error_message or ""
            data["isPkChunkingSupported"] = True
        return data


@dataclass(frozen=True)
class ResultsPage:
    body: bytes  # CSV, uncompressed
    records: int
    locator: str | None  # the next page's locator; None on the last page


def encode_locator(offset: int) -> str:
    return base64.b64encode(str(offset).encode()).decode().rstrip("=")


def decode_locator(locator: str) -> int | None:
    try:
        text = base64.b64decode(locator + "=" * (-len(locator) % 4), validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return int(text) if text.isdigit() else None


class BulkJobs:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._jobs: dict[str, BulkJob] = {}
        self._counter = 0
        self._fail_next: deque[str] = deque()
        self.settings = BulkSettings()
        self.max_jobs = MAX_JOBS
        self.jobs_created = 0
        self.max_storage_mb = MAX_STORAGE_MB
        self.storage_used_bytes = 0

    # -- jobs ---------------------------------------------------------------------------------------

    def create(
        self,
        org: JobOrg,
        operation: str,
        soql: str,
        *,
        api_version: str,
        column_delimiter: str = "COMMA",
        line_ending: str = "LF",
        content_type: str = "CSV",
    ) -> BulkJob:
        """Validate the request and the SOQL, as a real org does before it answers, and queue the job."""
        if operation not in OPERATIONS:
            raise InvalidJob(f"Invalid operation: {operation!r}; a query job's operation is query or queryAll")
        if content_type != "CSV":
            raise InvalidJob(f"Invalid contentType: {content_type!r}; query jobs support only CSV")
        if column_delimiter not in DELIMITERS:
            raise InvalidJob(f"Invalid columnDelimiter: {column_delimiter!r}; expected one of {', '.join(DELIMITERS)}")
        if line_ending not in LINE_ENDINGS:
            raise InvalidJob(f"Invalid lineEnding: {line_ending!r}; expected LF or CRLF")
        if not soql or not soql.strip():
            raise InvalidJob("The query job has no query")
        check_clauses(soql)
        plan = org.plan(soql)
        check_compound([c.field.type for c in plan.columns])
        with self._lock:
            if self.jobs_created >= self.max_jobs:
                raise BulkLimitExceeded(f"Max bulk v2 query jobs ({self.max_jobs}) per 24 hrs has been reached")
            self.jobs_created += 1
            self._counter += 1
            stamp = org.now_text()
            job = BulkJob(
                id=ids.make_id(JOB_PREFIX, self._counter),
                operation=operation,
                object=plan.sobject,
                query=soql,
                plan=plan,
                api_version=api_version,
                column_delimiter=column_delimiter,
                line_ending=line_ending,
                created_by=org.user_id,
                created_date=stamp,
                system_modstamp=stamp,
                created_at=time.monotonic(),
            )
            if self._fail_next:
                job.fail_with = self._fail_next.popleft()
            self._jobs[job.id] = job
            return job

    def get(self, org: JobOrg, job_id: str) -> BulkJob:
        """The job, brought up to date: its state is what it would be now."""
        with self._lock:
            job = self._find(job_id)
            self._advance(org, job)
            return job

    def jobs(self, org: JobOrg) -> list[BulkJob]:
        with self._lock:
            found = sorted(self._jobs.values(), key=lambda j: (j.created_at, j.id))
            for job in found:
                self._advance(org, job)
            return found

    def count(self) -> int:
        with self._lock:
            return len(self._jobs)

    def abort(self, org: JobOrg, job_id: str) -> BulkJob:
        with self._lock:
            job = self._find(job_id)
            self._advance(org, job)
            if job.state in FINAL_STATES:
                raise InvalidJobState(f"Cannot abort job {job.id}: its state is {job.state}")
            job.state = "Aborted"
            job.system_modstamp = org.now_text()
            return job

    def delete(self, org: JobOrg, job_id: str) -> None:
        with self._lock:
            job = self._find(job_id)
            self._advance(org, job)
            if job.state == "InProgress":
                raise InvalidJobState(f"Cannot delete job {job.id} while it is InProgress; abort it first")
            del self._jobs[job.id]

    def results(self, org: JobOrg, job_id: str, *, locator: str | None, max_records: int | None) -> ResultsPage:
        with self._lock:
            job = self._find(job_id)
            self._advance(org, job)
            if job.state != "JobComplete":
                raise InvalidJob(f"Job {job.id} is not complete: its state is {job.state}")
            offset = 0
            if locator is not None:
                decoded = decode_locator(locator)
                if (
                    decoded is None
                    or not 0 < decoded < job.number_records_processed
                    or job.all_locators_expired
                    or locator in job.expired_locators
                ):
                    raise InvalidQueryLocator(f"Invalid locator: {locator}. The locator has expired or is not valid")
                offset = decoded
            size = max_records or self.settings.default_max_records
            values = job.values or []
            end = min(offset + size, job.number_records_processed)
            page = [column[offset:end] for column in values]
            fmt, columns = job.csv_format, job.columns
        body = render_csv(columns, page, fmt)
        return ResultsPage(body, end - offset, encode_locator(end) if end < job.number_records_processed else None)

    # -- control ------------------------------------------------------------------------------------

    def fail_next(self, message: str) -> None:
        """The next job created ends ``Failed`` with ``message`` when it would have completed."""
        with self._lock:
            self._fail_next.append(message)

    def fail(self, org: JobOrg, job_id: str, message: str) -> BulkJob:
        """Fail a job now (or, if it is still queued, when it would complete)."""
        with self._lock:
            job = self._find(job_id)
            self._advance(org, job)
            if job.state in FINAL_STATES:
                raise ValueError(f"job {job.id} is already {job.state}")
            job.fail_with = message
            self._finish(org, job, time.monotonic())
            return job

    def expire_locator(self, job_id: str, locator: str | None = None) -> None:
        """Make one results locator of a job (or, with None, every locator) answer as expired."""
        with self._lock:
            job = self._find(job_id)
            if locator is None:
                job.all_locators_expired = True
            else:
                job.expired_locators.add(locator)

    def set_processing_time(
        self, *, fixed_seconds: float | None = None, per_record_seconds: float | None = None
    ) -> BulkSettings:
        with self._lock:
            if fixed_seconds is not None:
                if fixed_seconds < 0:
                    raise ValueError("fixed_seconds must not be negative")
                self.settings.fixed_seconds = float(fixed_seconds)
            if per_record_seconds is not None:
                if per_record_seconds < 0:
                    raise ValueError("per_record_seconds must not be negative")
                self.settings.per_record_seconds = float(per_record_seconds)
            return self.settings

    def set_limits(
        self, *, max_jobs: int | None = None, jobs_used: int | None = None, max_storage_mb: int | None = None
    ) -> dict[str, dict[str, int]]:
        with self._lock:
            if max_jobs is not None:
                self.max_jobs = int(max_jobs)
            if jobs_used is not None:
                self.jobs_created = int(jobs_used)
            if max_storage_mb is not None:
                self.max_storage_mb = int(max_storage_mb)
            return self.limits()

    def limits(self) -> dict[str, dict[str, int]]:
        with self._lock:
            used_mb = math.ceil(self.storage_used_bytes / 1_000_000)
            return {
                "DailyBulkV2QueryJobs": {"Max": self.max_jobs, "Remaining": max(0, self.max_jobs - self.jobs_created)},
                "DailyBulkV2QueryFileStorageMB": {
                    "Max": self.max_storage_mb,
                    "Remaining": max(0, self.max_storage_mb - used_mb),
                },
            }

    # -- state machine ------------------------------------------------------------------------------

    def _find(self, job_id: str) -> BulkJob:
        normal = ids.normalize(job_id)
        job = self._jobs.get(normal) if normal else None
        if job is None:
            raise NotFound("The requested resource does not exist")
        return job

    def _advance(self, org: JobOrg, job: BulkJob) -> None:
        if job.state in FINAL_STATES:
            return
        now = time.monotonic()
        if job.state == "UploadComplete":
            job.rows = org.run(job.plan, include_deleted=job.operation == "queryAll")
            job.state = "InProgress"
            job.system_modstamp = org.now_text()
        # Due time from the current settings, so changing them also moves jobs already running.
        s = self.settings
        job.due = job.created_at + s.fixed_seconds + s.per_record_seconds * len(job.rows or ())
        if now >= job.due:
            self._finish(org, job, now)
        elif job.rows:
            # Records processed so far, in proportion to the time spent.
            spent = (now - job.created_at) / max(job.due - job.created_at, 1e-9)
            job.number_records_processed = int(len(job.rows) * min(1.0, spent))

    def _finish(self, org: JobOrg, job: BulkJob, now: float) -> None:
        rows = job.rows or []
        job.system_modstamp = org.now_text()
        job.total_processing_time_ms = int(max(0.0, min(now, job.due) - job.created_at) * 1000)
        if job.fail_with is not None:
            job.state, job.error_message = "Failed", job.fail_with
            job.rows = None
            return
        values = org.snapshot(job.plan, rows)
        size = _estimated_bytes(job, values, len(rows))
        if math.ceil((self.storage_used_bytes + size) / 1_000_000) > self.max_storage_mb:
            job.state = "Failed"
            job.error_message = (
                f"Max bulk v2 query result size stored ({self.max_storage_mb * 1000}) kb per 24 hrs has been exceeded"
            )
            job.rows = None
            return
        self.storage_used_bytes += size
        job.values = values
        job.rows = None
        job.number_records_processed = len(rows)
        job.state = "JobComplete"


def _estimated_bytes(job: BulkJob, values: list[list[Any]], count: int) -> int:
    """The results' CSV size, from a rendered sample (rendering all of a large result just to
    weigh it would double the work of every job)."""
    if count == 0:
        return len(render_csv(job.columns, [[] for _ in values], job.csv_format))
    sample = min(count, 500)
    body = render_csv(job.columns, [column[:sample] for column in values], job.csv_format)
    return int(len(body) * count / sample)
