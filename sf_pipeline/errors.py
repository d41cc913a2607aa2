"""Errors a user can cause and fix. The CLI prints their message (never a traceback) and exits
with ``exit_code``: 2 for a usage or validation error, 1 for an operation that ran and failed.

    UserError
    ├── ConfigError          an integration file or setting is invalid (names the key and reason)
    ├── NotFoundError        no integration (or other thing) by that name
    ├── ConflictError        the request contradicts stored state (org already connected, ...)
    └── ConnectError         the OAuth connect flow was asked wrongly (no login URL, ...)
        └── ConnectRefusedError  it ran and failed: consent denied, Salesforce refused, host unreachable

Salesforce's own errors live in ``sf_pipeline.salesforce.errors``.
"""

from __future__ import annotations


class UserError(Exception):
    """An error whose message is meant for the admin who caused it."""

    exit_code = 2


class ConfigError(UserError):
    def __init__(self, message: str, *, key: str | None = None) -> None:
        self.key = key
        super().__init__(f"{key}: {message}" if key else message)


class NotFoundError(UserError):
    pass


class ConflictError(UserError):
    pass


class ConnectError(UserError):
    pass


class ConnectRefusedError(ConnectError):
    exit_code = 1
