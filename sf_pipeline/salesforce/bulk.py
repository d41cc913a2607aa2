"""Bulk API 2.0 query jobs: create, poll, stream results page by page, abort.

Why hand-written: simple-salesforce 1.12.10's public Bulk 2.0 surface (``sf.bulk2.Lead.query_all``)
runs a whole job in one generator: it never exposes the job id (so a job cannot be aborted when
the run is killed or remembered for cleanup), keeps the session id it started with (a token that
expires between polls ends the job), cannot resume from a locator after a failed download, reads
each page whole into a ``str``, and drops ``Sforce-NumberOfRecords`` (so a truncated page cannot be
detected). Its per-step helpers live on the private ``_Bulk2Client``. So the JSON calls go through
simple-salesforce's public ``Salesforce.restful`` and the CSV download is one ``requests`` GET on
the same session, all inside ``SalesforceClient.call`` for token refresh, retries and call counting.

Results are parsed by pyarrow's streaming CSV reader straight from the (gzip-decoded) response
stream into Arrow record batches, so a page never exists as Python objects. A page is only handed
on once it is known to be complete: its row count equals ``Sforce-NumberOfRecords``, the body ends
with a line ending, and its double quotes balance (a body cut inside a quoted value still parses).
An incomplete page is a ``TransientError`` and is fetched again with the same locator, which
Salesforce serves as often as asked while the job exists.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import requests
import urllib3
from simple_salesforce.api import Salesforce

from sf_pipeline.salesforce.client import SalesforceClient
from sf_pipeline.salesforce.errors import SalesforceError, TransientError, map_error

log = logging.getLogger("sf_pipeline.salesforce.bulk")

DEFAULT_PAGE_RECORDS = 50_000  # Salesforce's own default maxRecords
READ_BLOCK = 1 << 20
FINAL_STATES = frozenset({"JobComplete", "Failed", "Aborted"})


class BulkJobFailed(SalesforceError):
    """The job ended ``Failed`` or ``Aborted``; ``detail`` is the job's ``errorMessage``."""


class IncompletePage(TransientError):
    """A results page arrived short or malformed (cut connection, truncated body): fetch it again."""


@dataclass(frozen=True)
class JobInfo:
    id: str
    state: str
    records_processed: int
    error_message: str | None

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> JobInfo:
        return cls(
            id=str(raw["id"]),
            state=str(raw.get("state", "")),
            records_processed=int(raw.get("numberRecordsProcessed") or 0),
            error_message=raw.get("errorMessage") or None,
        )


@dataclass(frozen=True)
class PollSchedule:
    """When to poll a job's status (each poll is an API call).

    Blind, the delay starts at ``first`` and doubles up to ``longest``: the number of polls grows
    with the logarithm of the processing time, and a job is seen complete at most ``longest``
    seconds late. When the number of records the job will process is known (an incremental run's
    estimate) and the job reports progress (``numberRecordsProcessed`` while ``InProgress``), the
    next poll is timed for the predicted completion instead (at most ``longest_predicted`` away).
    No ``COUNT()`` is asked for a full sync: on a large object it can take about as long as the job."""

    first: float = 0.5
    longest: float = 8.0
    longest_predicted: float = 60.0
    timeout: float = 6 * 3600.0

    def delays(self) -> Iterator[float]:
        delay = self.first
        while True:
            yield delay
            delay = min(self.longest, delay * 2)

    def predicted(self, elapsed: float, processed: int, expected: int) -> float | None:
        """Seconds until a job that processed ``processed`` of ``expected`` records in ``elapsed``
        seconds completes, or None when progress says nothing."""
        if expected <= 0 or not 0 < processed < expected:
            return None
        remaining = elapsed * (expected - processed) / processed
        return min(self.longest_predicted, max(self.first, remaining * 1.05 + self.first))


@dataclass(frozen=True)
class ResultPage:
    table: pa.Table
    locator: str | None  # the next page's locator; None on the last page


class BulkQueryClient:
    """Bulk API 2.0 query jobs through a ``SalesforceClient`` (same tokens, retries, call count)."""

    def __init__(
        self,
        client: SalesforceClient,
        *,
        page_records: int = DEFAULT_PAGE_RECORDS,
        poll: PollSchedule = PollSchedule(),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.page_records = page_records
        self.poll = poll
        self._sleep = sleep
        self._created: dict[str, float] = {}

    def create(self, soql: str, *, include_deleted: bool = True) -> JobInfo:
        """Start a query job (``queryAll`` with ``include_deleted``: deleted and archived rows too)."""
        payload = {
            "operation": "queryAll" if include_deleted else "query",
            "query": soql,
            "contentType": "CSV",
            "columnDelimiter": "COMMA",
            "lineEnding": "LF",
        }
        job = JobInfo.from_json(self._json("jobs/query", method="POST", json=payload))
        self._created[job.id] = time.monotonic()
        return job

    def info(self, job_id: str) -> JobInfo:
        return JobInfo.from_json(self._json(f"jobs/query/{job_id}"))

    def _json(self, path: str, **kwargs: Any) -> dict[str, Any]:
        raw = self.client.call(lambda sf: sf.restful(path, **kwargs))
        if not isinstance(raw, dict):
            raise SalesforceError(f"unexpected Bulk API answer from {path}: {str(raw)[:200]}")
        return raw

    def wait(self, job_id: str, *, expected: int | None = None, stop: Callable[[], bool] = lambda: False) -> JobInfo:
        """Poll until the job completes (``expected``: the records it will process, when known).
        ``Failed``/``Aborted`` raise ``BulkJobFailed``."""
        started = self._created.get(job_id, time.monotonic())
        deadline = time.monotonic() + self.poll.timeout
        blind = self.poll.delays()
        delay = next(blind)
        while True:
            self._pause(delay, stop)
            if stop():
                raise InterruptedError("stopped while waiting for the Bulk API job")
            job = self.info(job_id)
            if job.state == "JobComplete":
                return job
            if job.state in FINAL_STATES:
                raise BulkJobFailed(
                    f"Bulk API job {job_id} ended {job.state}: {job.error_message or 'no reason given'}",
                    error_code=job.state, detail=job.error_message,
                )
            if time.monotonic() > deadline:
                raise BulkJobFailed(f"Bulk API job {job_id} still {job.state} after {self.poll.timeout:.0f} s",
                                    error_code="Timeout")
            predicted = self.poll.predicted(time.monotonic() - started, job.records_processed, expected or 0)
            delay = predicted if predicted is not None else next(blind)

    def _pause(self, seconds: float, stop: Callable[[], bool]) -> None:
        """Sleep, in short steps so a stopped run does not wait out a long predicted delay."""
        end = time.monotonic() + seconds
        while not stop():
            left = end - time.monotonic()
            if left <= 0:
                return
            self._sleep(min(left, 0.25))

    def abort(self, job_id: str) -> None:
        self.client.call(lambda sf: sf.restful(f"jobs/query/{job_id}", method="PATCH", json={"state": "Aborted"}))

    def page(self, job_id: str, locator: str | None, schema: pa.Schema) -> ResultPage:
        """One results page as an Arrow table of ``schema`` (columns in SELECT order)."""
        return self.client.call(lambda sf: _fetch_page(sf, job_id, locator, self.page_records, schema))

    def pages(
        self, job_id: str, schema: pa.Schema, *, stop: Callable[[], bool] = lambda: False
    ) -> Iterator[ResultPage]:
        """Every results page of a completed job, in order, following ``Sforce-Locator``."""
        locator: str | None = None
        while True:
            if stop():
                return
            page = self.page(job_id, locator, schema)
            yield page
            if page.locator is None:
                return
            locator = page.locator


# ----------------------------------------------------------------------------- results download


def _fetch_page(sf: Salesforce, job_id: str, locator: str | None, max_records: int, schema: pa.Schema) -> ResultPage:
    params: dict[str, Any] = {"maxRecords": max_records}
    if locator:
        params["locator"] = locator
    response = sf.session.get(
        f"{sf.base_url}jobs/query/{job_id}/results",
        params=params,
        headers={"Authorization": f"Bearer {sf.session_id}", "Accept": "text/csv", "Accept-Encoding": "gzip"},
        stream=True,
        timeout=(10.0, 300.0),
    )
    with response:
        if response.status_code >= 300:
            raise map_error(response)
        limit_info = response.headers.get("Sforce-Limit-Info")
        if limit_info:
            sf.api_usage = Salesforce.parse_api_usage(limit_info)
        expected = response.headers.get("Sforce-NumberOfRecords")
        next_locator = response.headers.get("Sforce-Locator")
        response.raw.decode_content = True  # gzip is undone by urllib3 as the stream is read
        body = _CheckedStream(response.raw)
        try:
            table = read_csv_page(body, schema)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, pa.ArrowException,
                ValueError) as exc:
            if isinstance(exc, requests.RequestException | urllib3.exceptions.HTTPError | ConnectionError):
                raise map_error(exc) from exc  # a dropped connection: transient, the page is fetched again
            # pyarrow quotes the offending row after ': "'; records' values stay out of logs.
            reason = str(exc).split(': "', 1)[0]
            raise IncompletePage(
                f"Bulk API results page of job {job_id} is incomplete or malformed ({reason})"
            ) from exc
    if not body.complete:
        raise IncompletePage(f"Bulk API results page of job {job_id} is incomplete (the body ends mid-record)")
    if expected is not None and int(expected) != table.num_rows:
        raise IncompletePage(
            f"Bulk API results page of job {job_id} is incomplete: {table.num_rows} records, "
            f"Sforce-NumberOfRecords says {expected}"
        )
    return ResultPage(table=table, locator=None if next_locator in (None, "", "null") else next_locator)


class _CheckedStream(io.RawIOBase):
    """Reads through to the response while tracking what a complete CSV body must satisfy:
    it ends with the line ending and has an even number of double quotes (each value is quoted,
    and a quote inside a value is doubled)."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self._quotes = 0
        self._last = b""
        self._header: bytes | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        if not data:
            return 0
        n = len(data)
        buffer[:n] = data
        self._quotes += data.count(b'"')
        self._last = data[-1:]
        return n

    def read_header(self) -> bytes:
        """The first line (the column names); the CSV reader then gets the rest."""
        line = bytearray()
        while True:
            byte = self.read(1)
            if not byte:
                break
            line += byte
            if byte == b"\n" and line.count(b'"') % 2 == 0:
                break
        return bytes(line)

    @property
    def complete(self) -> bool:
        return self._quotes % 2 == 0 and self._last == b"\n"


def read_csv_page(body: _CheckedStream, schema: pa.Schema) -> pa.Table:
    """Parse a results page (header line first) into a table of ``schema``.

    Salesforce quotes every value and writes null as an empty value; it never stores an empty
    string in a text field, so an empty value (quoted or not) is null. Booleans are ``true`` /
    ``false``; datetimes are ``2024-01-01T00:00:00.000Z``, rewritten to the ``+0000`` form the
    REST API returns, so a record reads the same whichever API fetched it."""
    header = body.read_header()
    if not header:
        raise ValueError("empty results page (no header line)")
    names = [name.strip().strip('"') for name in header.decode("utf-8").rstrip("\r\n").split(",")]
    _check_header(names, schema.names)
    columns = list(schema.names)
    rest = io.BufferedReader(body, buffer_size=READ_BLOCK)
    # A job (or a last page) with no records is the header line alone; pyarrow's reader refuses
    # a stream with nothing in it ("Empty CSV file"), so that page is read here as no rows.
    if not rest.peek(1):
        return schema.empty_table()
    reader = pa_csv.open_csv(
        rest,
        read_options=pa_csv.ReadOptions(column_names=columns, block_size=READ_BLOCK),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types={field.name: _csv_type(field.type) for field in schema},
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
            null_values=[""],
            true_values=["true"],
            false_values=["false"],
        ),
    )
    batches = list(reader)
    table = pa.Table.from_batches(batches, schema=reader.schema) if batches else reader.schema.empty_table()
    return table.cast(schema)


def _csv_type(arrow_type: pa.DataType) -> pa.DataType:
    return arrow_type if arrow_type in (pa.float64(), pa.bool_()) else pa.string()


def _check_header(names: Sequence[str], expected: Sequence[str]) -> None:
    if [n.lower() for n in names] != [e.lower() for e in expected]:
        raise ValueError(f"results columns {list(names)} are not the query's {list(expected)}")


def salesforce_datetimes(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """``…000Z`` (Bulk CSV) → ``…000+0000`` (REST JSON); nulls stay null."""
    return pc.replace_substring_regex(column, pattern="Z$", replacement="+0000")
