"""One request through the org: route, count, inject faults, authenticate, meter, handle.

Order of checks for a REST (``api``) route, as seen by a client:

1. an injected ``status`` or ``query_timeout`` fault answers first (no API request is used);
   a ``latency`` fault waits and carries on; a ``drop`` or ``truncate`` fault is applied to the
   finished response;
2. a missing, unknown, revoked or expired token gets 401 ``INVALID_SESSION_ID``;
3. when the API quota is used up, 403 ``REQUEST_LIMIT_EXCEEDED``; otherwise one request is used;
4. the handler runs, and the latency profile's server-side time for its answer is spent.

Every response except the control API's carries ``Sforce-Limit-Info: api-usage=N/M``.
"""

from __future__ import annotations

import gzip
import logging
import secrets
import time

from sf_pipeline.sandbox.errors import (
    ControlAuthRequired,
    InvalidControlRequest,
    MethodNotAllowed,
    NotFound,
    OAuthError,
    QueryTimeout,
    SandboxError,
    ServerUnavailable,
    UnknownException,
)
from sf_pipeline.sandbox.routes import ROUTES
from sf_pipeline.sandbox.state import Org
from sf_pipeline.sandbox.wire import Request, Response, Route, error_response, oauth_error_response

log = logging.getLogger(__name__)
CONTROL_SECRET_HEADER = "X-Sandbox-Secret"


def find_route(method: str, path: str) -> tuple[Route, dict[str, str]]:
    allowed = []
    for route in ROUTES:
        m = route.pattern.fullmatch(path)
        if m is None:
            continue
        if route.method == method:
            return route, {k: v for k, v in m.groupdict().items() if v is not None}
        allowed.append(route.method)
    if allowed:
        raise MethodNotAllowed(f"HTTP Method '{method}' not allowed. Allowed are {','.join(sorted(set(allowed)))}")
    raise NotFound("The requested resource does not exist")


def dispatch(org: Org, req: Request) -> Response:
    try:
        route, params = find_route(req.method, req.path)
    except SandboxError as err:
        org.counters.incr("unknown")
        return _with_usage(org, error_response(err))
    req.params = params
    org.counters.incr(route.endpoint)
    if route.access == "control":
        return _control(org, route, req)
    try:
        fault = org.faults.take(route.endpoint)
        if fault is not None and fault.kind == "latency":
            time.sleep(fault.latency_ms / 1000)
        elif fault is not None and fault.kind == "status":
            return _with_usage(org, error_response(_server_error(fault.status)))
        elif fault is not None and fault.kind == "query_timeout":
            return _with_usage(org, error_response(QueryTimeout("Your query request was running for too long.")))
        if route.access == "api":
            org.auth.check_access(req.bearer())
            org.quota.take()
            org.auth.note_api_request()
        response = route.handler(org, req)
        response.drop_midway = fault is not None and fault.kind == "drop"
        if fault is not None and fault.kind == "truncate":
            _truncate(response)
        if response.delay > 0:
            # The latency profile's server-side time, spent on this connection's thread only.
            time.sleep(response.delay)
    except SandboxError as err:
        response = error_response(err)
    except OAuthError as err:
        response = oauth_error_response(err)
    except Exception:
        log.exception("sandbox handler failed for %s %s", req.method, req.path)
        response = error_response(UnknownException("An unexpected error occurred."))
    return _with_usage(org, response)


def _truncate(response: Response) -> None:
    """Cut the body in the middle of a record, keeping the response well-formed HTTP: the
    Content-Length the server sends is the cut body's, so only the content is wrong."""
    gzipped = response.headers.get("Content-Encoding") == "gzip"
    body = gzip.decompress(response.body) if gzipped else response.body
    cut = len(body) // 2
    while 0 < cut < len(body) and body[cut - 1 : cut] in (b"\n", b"\r"):
        cut -= 1  # never end exactly on a line break: the last record must be cut
    body = body[:cut]
    response.body = gzip.compress(body, compresslevel=1) if gzipped else body


def _server_error(status: int) -> SandboxError:
    if status == 503:
        return ServerUnavailable("Service temporarily unavailable")
    error_id = f"{secrets.randbelow(10**9)}-{secrets.randbelow(10**5)} ({secrets.randbelow(10**9)})"
    return UnknownException(
        f"An unexpected error occurred. Please include this ErrorId if you contact support: {error_id}"
    )


def _control(org: Org, route: Route, req: Request) -> Response:
    given = req.headers.get(CONTROL_SECRET_HEADER) or ""
    if not secrets.compare_digest(given.encode(), org.client_secret.encode()):
        return error_response(ControlAuthRequired(f"The control API needs the {CONTROL_SECRET_HEADER} header"))
    try:
        return route.handler(org, req)
    except SandboxError as err:
        return error_response(err)
    except KeyError as err:
        return error_response(NotFound(str(err.args[0]) if err.args else "not found"))
    except (ValueError, TypeError) as err:
        return error_response(InvalidControlRequest(str(err)))
    except Exception:
        log.exception("sandbox control handler failed for %s %s", req.method, req.path)
        return error_response(UnknownException("An unexpected error occurred."))


def _with_usage(org: Org, response: Response) -> Response:
    used, quota = org.api_usage()
    response.headers["Sforce-Limit-Info"] = f"api-usage={used}/{quota}"
    return response
