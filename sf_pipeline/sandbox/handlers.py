"""Salesforce REST and OAuth resources: read the request, call the org, shape the wire JSON.

Authentication, API-quota accounting, fault injection and the ``Sforce-Limit-Info`` header are
applied around these handlers by ``dispatch``; a handler only sees requests it should answer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Sequence

from sf_pipeline.sandbox import ids
from sf_pipeline.sandbox.auth import Grant
from sf_pipeline.sandbox.clock import epoch_ms, format_datetime
from sf_pipeline.sandbox.cursors import Cursor
from sf_pipeline.sandbox.describe import child_relationships, global_describe, sobject_describe
from sf_pipeline.sandbox.errors import InvalidQueryLocator, InvalidSessionId, MalformedQuery, NotFound
from sf_pipeline.sandbox.records_json import Projection, page_json, render_records
from sf_pipeline.sandbox.state import Org
from sf_pipeline.sandbox.wire import (
    Request,
    Response,
    json_response,
    json_text_response,
    redirect_response,
)

_VERSIONS = [("Winter '24", "59.0"), ("Spring '24", "60.0"), ("Summer '24", "61.0"), ("Winter '25", "62.0")]


def versions(org: Org, req: Request) -> Response:
    return json_response([{"label": label, "url": f"/services/data/v{v}", "version": v} for label, v in _VERSIONS])


def resources(org: Org, req: Request) -> Response:
    base = f"/services/data/v{req.params['version']}"
    names = ("sobjects", "query", "queryAll", "limits")
    listed = {name: f"{base}/{name}" for name in names}
    listed["jobs"] = f"{base}/jobs"
    return json_response(listed)


# -- query --------------------------------------------------------------------------------------------


def query(org: Org, req: Request) -> Response:
    return _run_query(org, req, include_deleted=False)


def query_all(org: Org, req: Request) -> Response:
    return _run_query(org, req, include_deleted=True)


def query_more(org: Org, req: Request) -> Response:
    cursor = org.cursors.get(req.params["locator"])
    offset = int(req.params["offset"])
    if offset >= len(cursor.rows):
        raise InvalidQueryLocator("invalid query locator")
    return _page(org, req, cursor.projection, cursor.rows, offset, _batch_size(req, cursor.batch_size), cursor)


def _run_query(org: Org, req: Request, *, include_deleted: bool) -> Response:
    soql = req.query.get("q")
    if soql is None or not soql.strip():
        raise MalformedQuery("A query string has to be specified")
    plan = org.plan(soql)
    if plan.projection is None:
        total = org.count_rows(plan, include_deleted=include_deleted)
        response = json_text_response(page_json(total=total, records="", next_url=None))
        response.delay = org.latency.rest_page(0)
        return response
    rows = org.run(plan, include_deleted=include_deleted)
    size = _batch_size(req, org.query_settings.batch_size)
    if len(rows) <= size:
        return _page(org, req, plan.projection, rows, 0, size, None)
    cursor = org.cursors.open(plan.projection, rows, size)
    return _page(org, req, cursor.projection, cursor.rows, 0, size, cursor)


def _page(
    org: Org,
    req: Request,
    projection: Projection,
    rows: Sequence[int],
    offset: int,
    size: int,
    cursor: Cursor | None,
) -> Response:
    version = req.params["version"]
    revision = org.revision
    body = cursor.take((offset, size, version, revision)) if cursor else None
    if body is None:
        body = _render_page(projection, rows, offset, size, version, cursor)
    delay = org.latency.rest_page(min(size, max(0, len(rows) - offset)))
    if cursor is not None and offset + size < len(rows):
        ahead = offset + size
        cursor.prefetch(
            (ahead, size, version, revision),
            lambda: _render_page(projection, rows, ahead, size, version, cursor),
        )
    return Response(200, body, delay=delay)


def _render_page(
    projection: Projection, rows: Sequence[int], offset: int, size: int, version: str, cursor: Cursor | None
) -> bytes:
    end = offset + size
    next_url = f"/services/data/v{version}/query/{cursor.locator}-{end}" if cursor and end < len(rows) else None
    records = render_records(projection, rows[offset:end], version)
    return page_json(total=len(rows), records=records, next_url=next_url).encode("utf-8", "replace")


_BATCH_SIZE = re.compile(r"batchSize\s*=\s*(\d+)", re.IGNORECASE)


def _batch_size(req: Request, default: int) -> int:
    """Sforce-Query-Options: batchSize=N asks for N per page; Salesforce honours 200..2000."""
    m = _BATCH_SIZE.search(req.headers.get("Sforce-Query-Options") or "")
    if m is None:
        return default
    return min(2000, max(200, int(m.group(1))))


# -- describe and limits ------------------------------------------------------------------------------


def sobjects(org: Org, req: Request) -> Response:
    return json_response(global_describe(list(org.schemas.values()), req.params["version"]))


def sobject_describe_resource(org: Org, req: Request) -> Response:
    schema = org.schema(req.params["sobject"])
    if schema is None:
        raise NotFound("The requested resource does not exist")
    children = child_relationships(schema, list(org.schemas.values()))
    return json_response(sobject_describe(schema, req.params["version"], children))


def sobject_basic(org: Org, req: Request) -> Response:
    schema = org.schema(req.params["sobject"])
    if schema is None:
        raise NotFound("The requested resource does not exist")
    described = global_describe([schema], req.params["version"])["sobjects"][0]
    return json_response({"objectDescribe": described, "recentItems": []})


def sobject_row(org: Org, req: Request) -> Response:
    """``GET sobjects/{Object}/{Id}[?fields=A,B]``: one live record, every readable field by default."""
    schema = org.schema(req.params["sobject"])
    record_id = ids.normalize(req.params["record_id"])
    if schema is None or record_id is None:
        raise NotFound("The requested resource does not exist")
    wanted = req.query.get("fields") or ", ".join(f.name for f in schema.fields())
    plan = org.plan(f"SELECT {wanted} FROM {schema.name} WHERE Id = '{record_id}'")
    rows = org.run(plan, include_deleted=False)
    if plan.projection is None or not rows:
        raise NotFound("The requested resource does not exist")
    return json_text_response(render_records(plan.projection, rows, req.params["version"]))


def limits(org: Org, req: Request) -> Response:
    used, quota = org.api_usage()
    return json_response(
        {
            "DailyApiRequests": {"Max": quota, "Remaining": max(0, quota - used)},
            "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
            **org.bulk.limits(),
            "DataStorageMB": {"Max": 1024, "Remaining": 1024},
            "FileStorageMB": {"Max": 1024, "Remaining": 1024},
        }
    )


# -- OAuth and identity -------------------------------------------------------------------------------


def oauth_authorize(org: Org, req: Request) -> Response:
    return redirect_response(org.auth.authorize(req.query))


def oauth_token(org: Org, req: Request) -> Response:
    grant = org.auth.grant(req.form(), req.basic())
    return json_response(token_payload(org, req.base_url, grant))


def oauth_token_wrong_method(org: Org, req: Request) -> Response:
    return json_response({"error": "invalid_request", "error_description": "must use HTTP POST"}, 400)


def oauth_revoke(org: Org, req: Request) -> Response:
    token = req.form().get("token", "")
    org.auth.revoke(token)
    return Response(200, b"", None)


def identity(org: Org, req: Request) -> Response:
    token = req.bearer() or req.query.get("oauth_token")
    try:
        org.auth.check_access(token)
    except InvalidSessionId:
        # The identity service answers a bad token with a bare 403, not the REST error list.
        return Response(403, b"Bad_OAuth_Token", "text/plain;charset=UTF-8")
    user = org.auth.user
    if req.params["org_id"] != org.org_id or req.params["user_id"] != user.user_id:
        raise NotFound("The requested resource does not exist")
    base = req.base_url
    # Real identity URLs carry a literal "{version}" placeholder for the client to fill in.
    urls = {
        "enterprise": f"{base}/services/Soap/c/{{version}}/{org.org_id[:15]}",
        "metadata": f"{base}/services/Soap/m/{{version}}/{org.org_id[:15]}",
        "partner": f"{base}/services/Soap/u/{{version}}/{org.org_id[:15]}",
        "rest": f"{base}/services/data/v{{version}}/",
        "sobjects": f"{base}/services/data/v{{version}}/sobjects/",
        "search": f"{base}/services/data/v{{version}}/search/",
        "query": f"{base}/services/data/v{{version}}/query/",
        "recent": f"{base}/services/data/v{{version}}/recent/",
        "profile": f"{base}/{user.user_id}",
        "custom_domain": base,
    }
    return json_response(
        {
            "id": _identity_url(org, base),
            "asserted_user": True,
            "user_id": user.user_id,
            "organization_id": org.org_id,
            "username": user.username,
            "nick_name": user.username.split("@")[0],
            "display_name": user.display_name,
            "email": user.email,
            "email_verified": True,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "timezone": "GMT",
            "photos": {"picture": f"{base}/profilephoto/005/F", "thumbnail": f"{base}/profilephoto/005/T"},
            "mobile_phone": None,
            "mobile_phone_verified": False,
            "status": {"created_date": None, "body": None},
            "urls": urls,
            "active": True,
            "user_type": "STANDARD",
            "language": "en_US",
            "locale": "en_US",
            "utcOffset": 0,
            "last_modified_date": format_datetime(org.clock.now()),
            "is_app_installed": True,
        }
    )


def _identity_url(org: Org, base: str) -> str:
    return f"{base}/id/{org.org_id}/{org.auth.user.user_id}"


def token_payload(org: Org, base: str, grant: Grant) -> dict[str, str]:
    identity_url = _identity_url(org, base)
    issued_at = str(epoch_ms(grant.issued_at))
    digest = hmac.new(org.client_secret.encode(), (identity_url + issued_at).encode(), hashlib.sha256).digest()
    payload = {"access_token": grant.access_token}
    if grant.refresh_token:
        payload["refresh_token"] = grant.refresh_token
    payload.update(
        {
            "signature": base64.b64encode(digest).decode(),
            "scope": grant.scope,
            "instance_url": base,
            "id": identity_url,
            "token_type": "Bearer",
            "issued_at": issued_at,
        }
    )
    return payload
