"""The control API (``/__sandbox__/...``): JSON in, JSON out, one handler per operation.

Not part of Salesforce. Every request needs the header ``X-Sandbox-Secret: <client secret>``.
Timestamps are ISO-8601 text (``2024-01-01T00:00:00Z``); record values are in the stored form
described in ``tables`` (dates ``YYYY-MM-DD``, datetimes ``...000+0000``).
"""

from __future__ import annotations

from typing import Any

from sf_pipeline.sandbox import generator
from sf_pipeline.sandbox.clock import format_datetime, parse_datetime
from sf_pipeline.sandbox.errors import InvalidControlRequest
from sf_pipeline.sandbox.handlers import token_payload
from sf_pipeline.sandbox.state import Org
from sf_pipeline.sandbox.wire import Request, Response, json_response


def _body(req: Request) -> dict[str, Any]:
    body = req.json()
    if not isinstance(body, dict):
        raise InvalidControlRequest("The request body must be a JSON object")
    return body


def state(org: Org, req: Request) -> Response:
    return json_response(org.summary())


def create_records(org: Org, req: Request) -> Response:
    body = _body(req)
    records = body.get("records")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise InvalidControlRequest("'records' must be a list of objects")
    return json_response({"ids": org.create(req.params["sobject"], records, at=body.get("at"))})


def update_records(org: Org, req: Request) -> Response:
    body = _body(req)
    changes = body.get("records")
    if not isinstance(changes, dict) or not all(isinstance(v, dict) for v in changes.values()):
        raise InvalidControlRequest("'records' must map record Ids to objects of field values")
    org.update_many(req.params["sobject"], changes, at=body.get("at"), system_only=bool(body.get("system_only")))
    return json_response({"updated": len(changes)})


def delete_records(org: Org, req: Request) -> Response:
    body = _body(req)
    org.delete(req.params["sobject"], _ids(body), at=body.get("at"))
    return json_response({"deleted": len(_ids(body))})


def undelete_records(org: Org, req: Request) -> Response:
    body = _body(req)
    org.undelete(req.params["sobject"], _ids(body), at=body.get("at"))
    return json_response({"undeleted": len(_ids(body))})


def purge_records(org: Org, req: Request) -> Response:
    body = _body(req)
    org.purge(req.params["sobject"], _ids(body))
    return json_response({"purged": len(_ids(body))})


def _ids(body: dict[str, Any]) -> list[str]:
    found = body.get("ids")
    if not isinstance(found, list) or not all(isinstance(i, str) for i in found):
        raise InvalidControlRequest("'ids' must be a list of record Ids")
    return found


def read_record(org: Org, req: Request) -> Response:
    return json_response(org.get(req.params["sobject"], req.params["record_id"]))


def list_records(org: Org, req: Request) -> Response:
    include_deleted = req.query.get("include_deleted", "").lower() in ("1", "true", "yes")
    return json_response({"records": org.records(req.params["sobject"], include_deleted=include_deleted)})


def touch_records(org: Org, req: Request) -> Response:
    body = _body(req)
    touched = org.touch_random(
        req.params["sobject"],
        int(body.get("k", 1)),
        same_timestamp=bool(body.get("same_timestamp")),
        at=body.get("at"),
    )
    return json_response({"ids": touched})


def convert_lead(org: Org, req: Request) -> Response:
    body = _body(req)
    contact = org.convert_lead(req.params["record_id"], contact_id=body.get("contact_id"), at=body.get("at"))
    return json_response({"contact_id": contact})


def generate(org: Org, req: Request) -> Response:
    body = _body(req)
    counts = generator.populate(org, records=int(body.get("records", 0)), seed=int(body.get("seed", 0)))
    return json_response({"created": counts})


def read_clock(org: Org, req: Request) -> Response:
    return json_response(_clock(org))


def change_clock(org: Org, req: Request) -> Response:
    body = _body(req)
    action = body.get("action")
    at = parse_datetime(body["at"]) if isinstance(body.get("at"), str) else None
    if action == "freeze":
        org.clock.freeze(at)
    elif action == "unfreeze":
        org.clock.unfreeze()
    elif action == "set" and at is not None:
        org.clock.set(at)
    elif action == "advance":
        org.clock.advance(float(body.get("seconds", 0)))
    else:
        raise InvalidControlRequest("action must be freeze, unfreeze, set (with 'at') or advance (with 'seconds')")
    return json_response(_clock(org))


def _clock(org: Org) -> dict[str, Any]:
    return {"now": format_datetime(org.clock.now()), "frozen": org.clock.frozen}


def change_field(org: Org, req: Request) -> Response:
    body = _body(req)
    sobject, name = req.params["sobject"], req.params["field"]
    action = body.get("action")
    if action == "rename" and isinstance(body.get("new_name"), str):
        org.rename_field(sobject, name, body["new_name"])
    elif action == "delete":
        org.delete_field(sobject, name)
    elif action == "readable":
        org.set_field_readable(sobject, name, bool(body.get("readable", True)))
    else:
        raise InvalidControlRequest("action must be rename (with 'new_name'), delete or readable")
    return json_response({"ok": True})


def add_field(org: Org, req: Request) -> Response:
    body = _body(req)
    if not isinstance(body.get("name"), str) or not isinstance(body.get("type"), str):
        raise InvalidControlRequest("'name' and 'type' are required")
    org.add_field(
        req.params["sobject"],
        body["name"],
        body["type"],
        label=body.get("label"),
        picklist_values=body.get("picklist_values") or (),
    )
    return json_response({"ok": True})


def revoke_all_tokens(org: Org, req: Request) -> Response:
    org.revoke_all_tokens()
    return json_response({"ok": True})


def issue_refresh_token(org: Org, req: Request) -> Response:
    return json_response(token_payload(org, req.base_url, org.issue_refresh_token()))


def expire_sessions(org: Org, req: Request) -> Response:
    org.expire_sessions(after_requests=int(_body(req).get("after_requests", 0)))
    return json_response({"ok": True})


def read_quota(org: Org, req: Request) -> Response:
    used, quota = org.api_usage()
    return json_response({"used": used, "max": quota})


def change_quota(org: Org, req: Request) -> Response:
    body = _body(req)
    used, quota = org.set_api_quota(
        max=int(body["max"]) if body.get("max") is not None else None,
        used=int(body["used"]) if body.get("used") is not None else None,
    )
    return json_response({"used": used, "max": quota})


def read_options(org: Org, req: Request) -> Response:
    return json_response(org.options())


def change_options(org: Org, req: Request) -> Response:
    return json_response(org.set_options(**_body(req)))


def list_faults(org: Org, req: Request) -> Response:
    return json_response({"faults": [f.as_json() for f in org.faults.pending()]})


def inject_fault(org: Org, req: Request) -> Response:
    body = _body(req)
    fault = org.inject_fault(
        str(body.get("endpoint")),
        str(body.get("kind")),
        count=int(body.get("count", 1)),
        latency_ms=int(body.get("latency_ms", 0)),
        status=int(body.get("status", 500)),
    )
    return json_response(fault.as_json())


def clear_faults(org: Org, req: Request) -> Response:
    org.faults.clear()
    return json_response({"ok": True})


def read_counters(org: Org, req: Request) -> Response:
    return json_response(org.counters.snapshot())


def reset_counters(org: Org, req: Request) -> Response:
    org.counters.reset()
    return json_response(org.counters.snapshot())


# -- Bulk API 2.0 query jobs and the latency profile ----------------------------------------------


def list_bulk_jobs(org: Org, req: Request) -> Response:
    return json_response({"jobs": [job.info() for job in org.bulk.jobs(org)]})


def fail_bulk_job(org: Org, req: Request) -> Response:
    """``{"message": ...}`` fails the next job created; with ``"job_id"`` it fails that job now."""
    body = _body(req)
    message = str(body.get("message") or "InternalServerError : Job failed while processing")
    job_id = body.get("job_id")
    if job_id is None:
        org.fail_next_bulk_job(message)
        return json_response({"ok": True})
    return json_response(org.fail_bulk_job(str(job_id), message).info())


def expire_bulk_locator(org: Org, req: Request) -> Response:
    """``{"locator": ...}`` expires one results locator of the job; without it, all of them."""
    locator = _body(req).get("locator")
    org.expire_bulk_locator(req.params["job_id"], None if locator is None else str(locator))
    return json_response({"ok": True})


def read_bulk_settings(org: Org, req: Request) -> Response:
    return json_response(org.bulk_settings())


def change_bulk_settings(org: Org, req: Request) -> Response:
    """Processing time (``fixed_seconds``, ``per_record_seconds``) and the daily Bulk limits
    (``max_jobs``, ``jobs_used``, ``max_storage_mb``)."""
    body = _body(req)
    known = {"fixed_seconds", "per_record_seconds", "max_jobs", "jobs_used", "max_storage_mb"}
    unknown = set(body) - known
    if unknown:
        raise InvalidControlRequest(f"unknown Bulk settings: {', '.join(sorted(unknown))}")
    org.set_bulk_processing_time(
        fixed_seconds=_number(body.get("fixed_seconds")), per_record_seconds=_number(body.get("per_record_seconds"))
    )
    org.bulk.set_limits(
        max_jobs=_integer(body.get("max_jobs")),
        jobs_used=_integer(body.get("jobs_used")),
        max_storage_mb=_integer(body.get("max_storage_mb")),
    )
    return json_response(org.bulk_settings())


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _integer(value: Any) -> int | None:
    return None if value is None else int(value)


def read_latency(org: Org, req: Request) -> Response:
    return json_response(org.latency.as_json())


def change_latency(org: Org, req: Request) -> Response:
    return json_response(org.set_latency_profile(str(_body(req).get("profile"))).as_json())
