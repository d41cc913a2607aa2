"""Everything that can go wrong talking to Salesforce, as one tree.

    SalesforceError                 status, error_code, url (never a query string), message
    ├── AuthenticationError         the session expired and could not be refreshed, or the
    │   │                           connected app's client id/secret were refused
    │   └── CredentialsRevokedError the refresh token was revoked or expired (``invalid_grant``):
    │                               only ``sf-pipeline integration reconnect NAME`` fixes it
    ├── ApiLimitError               the org's daily API quota is used up (REQUEST_LIMIT_EXCEEDED)
    ├── QueryError                  MALFORMED_QUERY, INVALID_FIELD (``field`` when known), INVALID_TYPE
    ├── TransientError              5xx, dropped or reset connections, timeouts, QUERY_TIMEOUT,
    │   │                           SERVER_UNAVAILABLE: worth retrying
    │   └── NetworkError            the host could not be reached at all (DNS, refused connection,
    │                               connect or read timeout): a network problem on this side
    ├── TrustError                  the host's TLS certificate is not trusted on this machine
    └── NotFoundError               no such resource (an unknown object name in describe)

``map_error`` is the only place that turns what simple-salesforce, requests or an OAuth endpoint
report into this tree. Messages are scrubbed: they never carry an access token, refresh token,
authorization code or client secret (each is masked as ``***``, the words around it kept), and
URLs lose their query strings.

``NetworkError`` and ``TrustError`` describe this machine's view of the network, not the org:
a sync that fails with one of them leaves the integration's status alone (see ``is_local``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    import requests


class SalesforceError(Exception):
    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
        url: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.status = status
        self.error_code = error_code
        self.url = strip_query(url) if url else None
        # Salesforce's own description of the problem (``error_description`` / ``message``).
        self.detail = scrub(detail) if detail else None
        self.message = scrub(message)
        super().__init__(self.message)


class AuthenticationError(SalesforceError):
    pass


class CredentialsRevokedError(AuthenticationError):
    pass


class ApiLimitError(SalesforceError):
    pass


class QueryError(SalesforceError):
    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
        url: str | None = None,
        detail: str | None = None,
        field: str | None = None,
    ) -> None:
        self.field = field
        super().__init__(message, status=status, error_code=error_code, url=url, detail=detail)


class TransientError(SalesforceError):
    pass


class NetworkError(TransientError):
    pass


class TrustError(SalesforceError):
    pass


class NotFoundError(SalesforceError):
    pass


def is_local(exc: BaseException) -> bool:
    """A failure caused by this machine (its network, its trusted CAs), not by the org."""
    return isinstance(exc, (NetworkError, TrustError))


# Refusals that mean "this access token is stale": refresh it and repeat the request.
SESSION_EXPIRED_CODES = frozenset({"INVALID_SESSION_ID", "Bad_OAuth_Token"})
_QUERY_CODES = frozenset({"MALFORMED_QUERY", "INVALID_FIELD", "INVALID_TYPE", "INVALID_QUERY_FILTER_OPERATOR"})
_TRANSIENT_CODES = frozenset({"QUERY_TIMEOUT", "SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION"})
_REVOKED_GRANT_ERRORS = frozenset({"invalid_grant", "inactive_user", "inactive_org"})
_CLIENT_ERRORS = frozenset({"invalid_client_id", "invalid_client", "unauthorized_client"})
_FIELD_PATTERNS = (
    re.compile(r"No such column '([^']+)'"),
    re.compile(r"for field '([^']+)'"),
)

_SECRET_PATTERNS = (
    # Salesforce access tokens and session ids: "<15/18-char org id>!<opaque>".
    re.compile(r"\b00D[A-Za-z0-9]{12,15}![A-Za-z0-9._\-]+"),
    re.compile(r"(?i)\bbearer\s+[^\s\"',;}]+"),
    re.compile(
        r"(?i)(\"?\b(?:access_token|refresh_token|client_secret|code|code_verifier|token|session_?id"
        r"|authorization|password)\b\"?\s*[=:]\s*\"?)[^\s\"&,;}]+"
    ),
)


MASK = "***"
# Shorter values are not secrets worth the name, and replacing them would cut ordinary words.
MIN_SECRET_LENGTH = 8


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask anything that looks like a credential, and every value in ``secrets``, with ``***``;
    the text around it is kept."""
    for secret in sorted((s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH), key=len, reverse=True):
        text = text.replace(secret, MASK)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(_redact, text)
    return re.sub(r"https?://[^\s\"'<>]+", lambda m: strip_query(m.group(0)), text)


def _redact(match: re.Match[str]) -> str:
    if match.re.groups:
        return f"{match.group(1)}{MASK}"
    return MASK


def strip_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def map_error(
    source: BaseException | requests.Response,
    *,
    integration: str | None = None,
    secrets: Iterable[str] = (),
) -> SalesforceError:
    """Classify a failure into the tree above.

    ``source`` is an exception raised by simple-salesforce or requests, or a non-2xx response from
    an OAuth endpoint (token, identity). ``integration`` names the integration in the advice of a
    ``CredentialsRevokedError``; ``secrets`` are extra values to scrub from the message.
    """
    # requests and simple-salesforce load here, not at import: `status`, `logs` and the other
    # read-only commands import this module for the error classes alone and must start fast.
    import requests
    from simple_salesforce import exceptions as sf_exceptions

    if isinstance(source, SalesforceError):
        return source
    if isinstance(source, requests.Response):
        return _from_response(source.status_code, _decode(source), source.url, integration, secrets)
    if isinstance(source, sf_exceptions.SalesforceError):
        return _from_response(source.status, source.content, source.url, integration, secrets)
    return _from_transport(source, secrets)


def _decode(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def _from_response(
    status: int, body: Any, url: str | None, integration: str | None, secrets: Iterable[str]
) -> SalesforceError:
    code, detail, fields = _error_fields(body)
    text = scrub(f"{code}: {detail}" if code and detail else code or detail or f"HTTP {status}", secrets)
    where = f" ({strip_query(url)})" if url else ""
    args: dict[str, Any] = {
        "status": status,
        "error_code": code,
        "url": url,
        "detail": scrub(detail, secrets) if detail else None,
    }

    if code in _REVOKED_GRANT_ERRORS:
        name = integration or "NAME"
        return CredentialsRevokedError(
            f"Salesforce no longer accepts the stored refresh token ({text}). "
            f"Run `sf-pipeline integration reconnect {name}` to authorise again.",
            **args,
        )
    if code in _CLIENT_ERRORS:
        return AuthenticationError(f"Salesforce refused the connected app's credentials: {text}", **args)
    if code is None and detail == "Bad_OAuth_Token":
        # The identity service refuses a stale token with a bare 403 text body, not the REST list.
        code = args["error_code"] = "Bad_OAuth_Token"
    if code in SESSION_EXPIRED_CODES or status == 401:
        return AuthenticationError(f"Salesforce session expired or invalid: {text}{where}", **args)
    if code == "REQUEST_LIMIT_EXCEEDED" and "ConcurrentPerOrgLongTxn" in (detail or ""):
        # Same error code, but this one is the concurrent long-request cap, which clears in seconds.
        return TransientError(f"Salesforce is busy: {text}{where}", **args)
    if code in {"REQUEST_LIMIT_EXCEEDED", "rate_limit_exceeded"}:
        return ApiLimitError(f"Salesforce API limit reached: {text}{where}", **args)
    if code in _QUERY_CODES:
        field = fields[0] if fields else _field_name(detail)
        return QueryError(f"Salesforce rejected the query: {text}", field=field, **args)
    if code in _TRANSIENT_CODES or status >= 500:
        return TransientError(f"Salesforce is temporarily unavailable: {text}{where}", **args)
    if code == "NOT_FOUND" or status == 404:
        return NotFoundError(f"Salesforce resource not found: {text}{where}", **args)
    return SalesforceError(f"Salesforce request failed: {text}{where}", **args)


def _error_fields(body: Any) -> tuple[str | None, str | None, list[str]]:
    """Salesforce REST errors are a JSON list of {errorCode, message, fields?}; OAuth errors one
    {error, error_description} object; an edge proxy may answer with HTML."""
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body)
        except ValueError:
            return None, _short_text(body), []
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0]
    if not isinstance(body, dict):
        return None, None, []
    if "error" in body:
        return _str_or_none(body.get("error")), _str_or_none(body.get("error_description")), []
    fields = body.get("fields")
    names = [str(f) for f in fields] if isinstance(fields, list) else []
    return _str_or_none(body.get("errorCode")), _str_or_none(body.get("message")), names


def _short_text(body: str | bytes) -> str | None:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = " ".join(re.sub(r"<[^>]+>", " ", text).split())
    return text[:200] or None


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value).strip()


def _field_name(detail: str | None) -> str | None:
    for pattern in _FIELD_PATTERNS:
        found = pattern.search(detail or "")
        if found:
            return found.group(1)
    return None


_DNS_MARKERS = ("Name or service not known", "nodename nor servname", "Temporary failure in name resolution",
                "NameResolutionError", "getaddrinfo failed", "No address associated")


def _from_transport(exc: BaseException, secrets: Iterable[str]) -> SalesforceError:
    import requests
    import urllib3

    url = _request_url(exc)
    where = f" ({url})" if url else ""
    host = urlsplit(url).netloc if url else "the Salesforce host"
    text = str(exc)
    reason = scrub(f"{type(exc).__name__}: {exc}", secrets)
    if isinstance(exc, requests.exceptions.SSLError) and "CERTIFICATE_VERIFY_FAILED" in text:
        return TrustError(
            f"the TLS certificate of {host} is not trusted on this machine (certificate verify failed). "
            "For a local sandbox org, use the same --home as the `sf-pipeline sandbox serve` that started it "
            "(its CA bundle is kept in that home's config) or set REQUESTS_CA_BUNDLE to its CA bundle; "
            "behind a TLS-inspecting proxy, set REQUESTS_CA_BUNDLE to your organisation's CA bundle.",
            url=url,
        )
    if isinstance(exc, requests.exceptions.ConnectionError) and not isinstance(
        exc, requests.exceptions.ReadTimeout
    ):
        if any(marker in text for marker in _DNS_MARKERS):
            return NetworkError(
                f"cannot resolve the host {host} (DNS): check the login URL or My Domain for a typo, "
                "and this machine's network", url=url)
        if "Connection refused" in text or "ConnectionRefusedError" in text:
            return NetworkError(
                f"{host} refused the connection: check the URL and port, and that the host is up", url=url)
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return NetworkError(
                f"{host} did not answer within the connect timeout: check this machine's network, firewall "
                "and proxy settings (HTTPS_PROXY)", url=url)
    if isinstance(
        exc,
        (
            requests.exceptions.ConnectionError,
            requests.exceptions.Timeout,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
            requests.exceptions.JSONDecodeError,  # a body cut short is not valid JSON
            urllib3.exceptions.HTTPError,
            ConnectionError,
            TimeoutError,
        ),
    ):
        return TransientError(f"network error talking to Salesforce{where}: {reason}", url=url)
    return SalesforceError(f"unexpected error talking to Salesforce{where}: {reason}", url=url)


def _request_url(exc: BaseException) -> str | None:
    request = getattr(exc, "request", None)
    url = getattr(request, "url", None)
    return strip_query(url) if isinstance(url, str) else None
