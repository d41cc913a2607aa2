"""Errors the sandbox answers with, each carrying its Salesforce ``errorCode`` and HTTP status.

    SandboxError                      REST errors: body ``[{"message": ..., "errorCode": ...}]``
    ├── InvalidSessionId              401
    ├── RequestLimitExceeded          403
    ├── MalformedQuery                400
    ├── InvalidField                  400
    ├── InvalidType                   400
    ├── InvalidQueryFilterOperator    400
    ├── QueryTimeout                  400
    ├── InvalidQueryLocator           400
    ├── BadRequest                    400  (bad JSON, bad body)
    ├── InvalidControlRequest         400  (control API misuse)
    ├── NotFound                      404
    ├── ControlAuthRequired           401  (control API without its secret)
    ├── MethodNotAllowed              405
    ├── LengthRequired                411
    ├── RequestTooLarge               413
    ├── UnknownException              500
    ├── ServerUnavailable             503
    ├── BulkApiError                  400  API_ERROR: SOQL Bulk API 2.0 cannot run (compound fields, subqueries)
    ├── InvalidJob                    400  INVALIDJOB: a bad job request or SOQL clause Bulk API 2.0 rejects
    ├── InvalidJobState               400  INVALIDJOBSTATE: a state change the job cannot make
    ├── BulkLimitExceeded             400  LIMIT_EXCEEDED: DailyBulkV2QueryJobs used up
    └── ApiVersionMismatch            409  results asked for with another API version than the job's
    OAuthError                        OAuth endpoints: body ``{"error": ..., "error_description": ...}``

State methods raise these; the server turns them into responses. Python callers of ``Org`` get
them as ordinary exceptions (``KeyError``/``ValueError`` are used for plain misuse of the test API).
"""

from __future__ import annotations

from typing import Any


class SandboxError(Exception):
    error_code = "UNKNOWN_EXCEPTION"
    status = 500

    def __init__(self, message: str, *, fields: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields

    def body(self) -> list[dict[str, Any]]:
        item: dict[str, Any] = {"message": self.message, "errorCode": self.error_code}
        if self.fields is not None:
            item["fields"] = self.fields
        return [item]


class InvalidSessionId(SandboxError):
    error_code, status = "INVALID_SESSION_ID", 401


class RequestLimitExceeded(SandboxError):
    error_code, status = "REQUEST_LIMIT_EXCEEDED", 403


class MalformedQuery(SandboxError):
    error_code, status = "MALFORMED_QUERY", 400


class InvalidField(SandboxError):
    error_code, status = "INVALID_FIELD", 400


class InvalidType(SandboxError):
    error_code, status = "INVALID_TYPE", 400


class InvalidQueryFilterOperator(SandboxError):
    error_code, status = "INVALID_QUERY_FILTER_OPERATOR", 400


class QueryTimeout(SandboxError):
    error_code, status = "QUERY_TIMEOUT", 400


class InvalidQueryLocator(SandboxError):
    error_code, status = "INVALID_QUERY_LOCATOR", 400


class BadRequest(SandboxError):
    error_code, status = "JSON_PARSER_ERROR", 400


class InvalidControlRequest(SandboxError):
    error_code, status = "INVALID_CONTROL_REQUEST", 400


class ControlAuthRequired(SandboxError):
    error_code, status = "INVALID_AUTH_HEADER", 401


class LengthRequired(SandboxError):
    error_code, status = "LENGTH_REQUIRED", 411


class NotFound(SandboxError):
    error_code, status = "NOT_FOUND", 404


class MethodNotAllowed(SandboxError):
    error_code, status = "METHOD_NOT_ALLOWED", 405


class RequestTooLarge(SandboxError):
    error_code, status = "REQUEST_TOO_LARGE", 413


class UnknownException(SandboxError):
    error_code, status = "UNKNOWN_EXCEPTION", 500


class ServerUnavailable(SandboxError):
    error_code, status = "SERVER_UNAVAILABLE", 503


class BulkApiError(SandboxError):
    error_code, status = "API_ERROR", 400


class InvalidJob(SandboxError):
    error_code, status = "INVALIDJOB", 400


class InvalidJobState(SandboxError):
    error_code, status = "INVALIDJOBSTATE", 400


class BulkLimitExceeded(SandboxError):
    error_code, status = "LIMIT_EXCEEDED", 400


class ApiVersionMismatch(SandboxError):
    error_code, status = "API_VERSION_MISMATCH", 409


class OAuthError(Exception):
    """An OAuth endpoint's error; Salesforce answers these with 400 and a flat JSON object."""

    status = 400

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}
