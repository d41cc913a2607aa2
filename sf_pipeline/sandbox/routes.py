"""Which handler answers which method and path."""

from __future__ import annotations

import re

from sf_pipeline.sandbox import bulk_handlers as bulk
from sf_pipeline.sandbox import control_handlers as control
from sf_pipeline.sandbox import handlers as rest
from sf_pipeline.sandbox.faults import EndpointKind
from sf_pipeline.sandbox.wire import Access, Handler, Route

_V = r"/services/data/v(?P<version>\d{2,3}\.\d)"
_LOCATOR = r"(?P<locator>01g[0-9A-Za-z]{12,15})-(?P<offset>\d+)"
_C = "/__sandbox__"
_OBJ = r"(?P<sobject>[A-Za-z][A-Za-z0-9_]*)"
_ID = r"(?P<record_id>[A-Za-z0-9]{15,18})"
_JOB = r"/jobs/query/(?P<job_id>[A-Za-z0-9]{15,18})"


def _r(method: str, path: str, handler: Handler, endpoint: EndpointKind, access: Access) -> Route:
    return Route(method, re.compile(path + "/?"), handler, endpoint, access)


ROUTES: tuple[Route, ...] = (
    _r("GET", r"/services/data", rest.versions, "versions", "public"),
    _r("GET", _V, rest.resources, "versions", "api"),
    _r("GET", _V + r"/query", rest.query, "query", "api"),
    _r("GET", _V + r"/queryAll", rest.query_all, "query", "api"),
    # nextRecordsUrl pages; dlt asks for "query/<nextRecordsUrl>", so any prefix ending in the locator works.
    _r("GET", _V + r"/query(?:All)?/(?:.*/)?" + _LOCATOR, rest.query_more, "query_more", "api"),
    _r("GET", _V + r"/sobjects", rest.sobjects, "describe", "api"),
    _r("GET", _V + r"/sobjects/" + _OBJ, rest.sobject_basic, "describe", "api"),
    _r("GET", _V + r"/sobjects/" + _OBJ + r"/describe", rest.sobject_describe_resource, "describe", "api"),
    _r("GET", _V + r"/sobjects/" + _OBJ + "/" + _ID, rest.sobject_row, "record", "api"),
    _r("GET", _V + r"/limits", rest.limits, "limits", "api"),
    _r("POST", _V + r"/jobs/query", bulk.create_job, "bulk_job", "api"),
    _r("GET", _V + r"/jobs/query", bulk.list_jobs, "bulk_job", "api"),
    _r("GET", _V + _JOB, bulk.job_info, "bulk_job", "api"),
    _r("PATCH", _V + _JOB, bulk.change_job, "bulk_job", "api"),
    _r("DELETE", _V + _JOB, bulk.delete_job, "bulk_job", "api"),
    _r("GET", _V + _JOB + r"/results", bulk.job_results, "bulk_results", "api"),
    _r("GET", r"/services/oauth2/authorize", rest.oauth_authorize, "authorize", "public"),
    _r("POST", r"/services/oauth2/token", rest.oauth_token, "token", "public"),
    _r("GET", r"/services/oauth2/token", rest.oauth_token_wrong_method, "token", "public"),
    _r("POST", r"/services/oauth2/revoke", rest.oauth_revoke, "revoke", "public"),
    _r("GET", r"/services/oauth2/revoke", rest.oauth_revoke, "revoke", "public"),
    _r(
        "GET",
        r"/id/(?P<org_id>[A-Za-z0-9]{15,18})/(?P<user_id>[A-Za-z0-9]{15,18})",
        rest.identity,
        "identity",
        "public",
    ),
    _r("GET", _C + r"/state", control.state, "control", "control"),
    _r("POST", _C + r"/records/" + _OBJ, control.create_records, "control", "control"),
    _r("GET", _C + r"/records/" + _OBJ, control.list_records, "control", "control"),
    _r("POST", _C + r"/records/" + _OBJ + r"/update", control.update_records, "control", "control"),
    _r("POST", _C + r"/records/" + _OBJ + r"/delete", control.delete_records, "control", "control"),
    _r("POST", _C + r"/records/" + _OBJ + r"/undelete", control.undelete_records, "control", "control"),
    _r("POST", _C + r"/records/" + _OBJ + r"/purge", control.purge_records, "control", "control"),
    _r("POST", _C + r"/records/" + _OBJ + r"/touch", control.touch_records, "control", "control"),
    _r("GET", _C + r"/records/" + _OBJ + "/" + _ID, control.read_record, "control", "control"),
    _r("POST", _C + r"/leads/" + _ID + r"/convert", control.convert_lead, "control", "control"),
    _r("POST", _C + r"/generate", control.generate, "control", "control"),
    _r("GET", _C + r"/clock", control.read_clock, "control", "control"),
    _r("POST", _C + r"/clock", control.change_clock, "control", "control"),
    _r("POST", _C + r"/fields/" + _OBJ, control.add_field, "control", "control"),
    _r(
        "POST",
        _C + r"/fields/" + _OBJ + r"/(?P<field>[A-Za-z][A-Za-z0-9_]*)",
        control.change_field,
        "control",
        "control",
    ),
    _r("POST", _C + r"/tokens/revoke_all", control.revoke_all_tokens, "control", "control"),
    _r("POST", _C + r"/tokens/refresh_token", control.issue_refresh_token, "control", "control"),
    _r("POST", _C + r"/sessions/expire", control.expire_sessions, "control", "control"),
    _r("GET", _C + r"/quota", control.read_quota, "control", "control"),
    _r("POST", _C + r"/quota", control.change_quota, "control", "control"),
    _r("GET", _C + r"/options", control.read_options, "control", "control"),
    _r("POST", _C + r"/options", control.change_options, "control", "control"),
    _r("GET", _C + r"/faults", control.list_faults, "control", "control"),
    _r("POST", _C + r"/faults", control.inject_fault, "control", "control"),
    _r("DELETE", _C + r"/faults", control.clear_faults, "control", "control"),
    _r("GET", _C + r"/bulk/jobs", control.list_bulk_jobs, "control", "control"),
    _r("POST", _C + r"/bulk/fail", control.fail_bulk_job, "control", "control"),
    _r(
        "POST",
        _C + r"/bulk/jobs/(?P<job_id>[A-Za-z0-9]{15,18})/expire_locator",
        control.expire_bulk_locator,
        "control",
        "control",
    ),
    _r("GET", _C + r"/bulk/settings", control.read_bulk_settings, "control", "control"),
    _r("POST", _C + r"/bulk/settings", control.change_bulk_settings, "control", "control"),
    _r("GET", _C + r"/latency", control.read_latency, "control", "control"),
    _r("POST", _C + r"/latency", control.change_latency, "control", "control"),
    _r("GET", _C + r"/counters", control.read_counters, "control", "control"),
    _r("DELETE", _C + r"/counters", control.reset_counters, "control", "control"),
)
