"""Bulk API 2.0 query job resources (``/services/data/vXX.X/jobs/query``): wire format only.

The jobs themselves, their states and results are org state (``bulk_jobs``); authentication,
the API quota (every Bulk call uses one ``DailyApiRequests`` request, as REST calls do), fault
injection and ``Sforce-Limit-Info`` are applied around these handlers by ``dispatch``.
"""

from __future__ import annotations

import gzip
from typing import Any

from sf_pipeline.sandbox.bulk_jobs import BulkJob
from sf_pipeline.sandbox.errors import ApiVersionMismatch, InvalidJob, InvalidJobState
from sf_pipeline.sandbox.state import Org
from sf_pipeline.sandbox.wire import Request, Response, json_response

CSV_TYPE = "text/csv;charset=UTF-8"


def create_job(org: Org, req: Request) -> Response:
    body = req.json()
    if not isinstance(body, dict):
        raise InvalidJob("The request body must be a JSON object describing the query job")
    job = org.bulk.create(
        org,
        _text(body, "operation", ""),
        _text(body, "query", ""),
        api_version=req.params["version"],
        column_delimiter=_text(body, "columnDelimiter", "COMMA"),
        line_ending=_text(body, "lineEnding", "LF"),
        content_type=_text(body, "contentType", "CSV"),
    )
    return json_response(job.info(full=False))


def _text(body: dict[str, Any], key: str, default: str) -> str:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise InvalidJob(f"{key} must be a string")
    return value


def list_jobs(org: Org, req: Request) -> Response:
    """``GET jobs/query``: every query job in the org, a page at a time (``queryLocator`` pages on)."""
    jobs = org.bulk.jobs(org)
    wanted_type = req.query.get("jobType")
    if wanted_type:
        jobs = [j for j in jobs if wanted_type == "V2Query"]
    mode = req.query.get("concurrencyMode")
    if mode:
        jobs = [j for j in jobs if mode == "Parallel"]
    start = 0
    locator = req.query.get("queryLocator")
    if locator:
        if not locator.isdigit() or int(locator) > len(jobs):
            raise InvalidJob(f"Invalid queryLocator: {locator}")
        start = int(locator)
    size = org.bulk.settings.list_page_size
    page = jobs[start : start + size]
    end = start + len(page)
    done = end >= len(jobs)
    version = req.params["version"]
    return json_response(
        {
            "done": done,
            "records": [_listed(job) for job in page],
            "nextRecordsUrl": None if done else f"/services/data/v{version}/jobs/query?queryLocator={end}",
        }
    )


def _listed(job: BulkJob) -> dict[str, Any]:
    info = job.info(full=False)
    info["jobType"] = "V2Query"
    return info


def job_info(org: Org, req: Request) -> Response:
    return json_response(org.bulk.get(org, req.params["job_id"]).info())


def change_job(org: Org, req: Request) -> Response:
    """``PATCH jobs/query/{id}`` with ``{"state": "Aborted"}``: the only change a query job takes."""
    body = req.json()
    state = body.get("state") if isinstance(body, dict) else None
    if state != "Aborted":
        raise InvalidJobState(f"Invalid state for a query job: {state!r}; a query job can only be Aborted")
    return json_response(org.bulk.abort(org, req.params["job_id"]).info())


def delete_job(org: Org, req: Request) -> Response:
    org.bulk.delete(org, req.params["job_id"])
    return Response(204, b"", None)


def job_results(org: Org, req: Request) -> Response:
    """``GET jobs/query/{id}/results[?locator=&maxRecords=]``: one page of CSV.

    ``Sforce-NumberOfRecords`` counts the page's records; ``Sforce-Locator`` names the next page,
    or is the text ``null`` on the last one. The body is gzipped when the client accepts it."""
    max_records = None
    raw = req.query.get("maxRecords")
    if raw is not None:
        if not raw.isdigit() or int(raw) < 1:
            raise InvalidJob(f"Invalid maxRecords: {raw!r}; maxRecords must be a positive integer")
        max_records = int(raw)
    locator = req.query.get("locator") or None
    version = req.params["version"]
    job = org.bulk.get(org, req.params["job_id"])
    if job.api_version != version:
        # Salesforce answers 409 when results are asked for with another API version than the job's.
        raise ApiVersionMismatch(
            f"The job was created with API version {job.api_version}; get its results with the same version, "
            f"not {version}"
        )
    page = org.bulk.results(org, req.params["job_id"], locator=locator, max_records=max_records)
    headers = {
        "Sforce-Locator": page.locator or "null",
        "Sforce-NumberOfRecords": str(page.records),
    }
    body = page.body
    if "gzip" in (req.headers.get("Accept-Encoding") or "").lower():
        body = gzip.compress(body, compresslevel=1)
        headers["Content-Encoding"] = "gzip"
    response = Response(200, body, CSV_TYPE, headers)
    response.delay = org.latency.bulk_download(len(page.body))
    return response
