"""Requests and responses as handlers see them, independent of the socket server."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl

from sf_pipeline.sandbox.errors import BadRequest, OAuthError, SandboxError
from sf_pipeline.sandbox.faults import EndpointKind

if TYPE_CHECKING:
    from sf_pipeline.sandbox.state import Org

JSON_TYPE = "application/json;charset=UTF-8"
# public: anyone; api: Bearer token, counts against the API quota; control: X-Sandbox-Secret header.
Access = Literal["public", "api", "control"]


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str]  # case-insensitive lookups
    body: bytes
    base_url: str
    params: dict[str, str] = field(default_factory=dict)

    def form(self) -> dict[str, str]:
        """URL-encoded form fields from the body (or the query string for GET)."""
        if self.method == "GET":
            return dict(self.query)
        try:
            return dict(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise OAuthError("invalid_request", "request body is not valid UTF-8") from None

    def json(self) -> Any:
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f"The request body is not valid JSON: {exc}") from None

    def bearer(self) -> str | None:
        value = self.headers.get("Authorization") or ""
        scheme, _, token = value.strip().partition(" ")
        # Salesforce accepts the older "OAuth <token>" scheme as well as "Bearer <token>".
        if scheme.lower() in ("bearer", "oauth") and token.strip():
            return token.strip()
        return None

    def basic(self) -> tuple[str, str] | None:
        value = self.headers.get("Authorization") or ""
        scheme, _, encoded = value.strip().partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return (user, password) if sep else None


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str | None = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)
    drop_midway: bool = False  # fault injection: close the connection halfway through the body
    # Server-side time to spend before answering (the latency profile), in seconds.
    delay: float = 0.0


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(payload, ensure_ascii=False).encode("utf-8"))


def json_text_response(text: str, status: int = 200) -> Response:
    return Response(status, text.encode("utf-8", "replace"))


def error_response(err: SandboxError) -> Response:
    return json_response(err.body(), err.status)


def oauth_error_response(err: OAuthError) -> Response:
    return json_response(err.body(), err.status)


def redirect_response(location: str) -> Response:
    return Response(302, b"", None, {"Location": location})


Handler = Callable[["Org", Request], Response]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    endpoint: EndpointKind
    access: Access
