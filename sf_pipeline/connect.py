"""Connecting a Salesforce org to an integration, and reconnecting it.

Connect: authorise (browser consent or an imported refresh token), learn the org from the identity
URL, then in one transaction create the integration if it is new (Incomplete, with the four
default mappings) and store its encrypted credentials. An org already held by any integration is
refused, naming the holder. Reconnect replaces only the credentials of an existing integration, and
only with credentials for the same org. Any failure stores nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import requests

from sf_pipeline.errors import ConfigError, ConflictError, ConnectError
from sf_pipeline.salesforce.oauth import Authorization
from sf_pipeline.secrets import Cipher
from sf_pipeline.storage.database import Database
from sf_pipeline.storage.integrations import (
    StoredCredentials,
    check_name,
    create_integration,
    find_integration,
    get_integration,
    normalize_login_url,
    save_credentials,
)
from sf_pipeline.storage.models import utcnow

ENVIRONMENTS: Mapping[str, str] = {
    "production": "https://login.salesforce.com",
    # Salesforce's sandbox login host. The local sandbox (sf_pipeline.sandbox) is a custom host.
    "sandbox": "https://test.salesforce.com",
}
_HOST = re.compile(r"(?:(?!-)[A-Za-z0-9-]{1,63}(?<!-)\.)+(?!-)[A-Za-z0-9-]{1,63}(?<!-)(?::\d{1,5})?|localhost:\d{1,5}")


class Authorizer(Protocol):
    """A way to obtain an org's tokens: ``oauth.BrowserLogin`` or ``oauth.RefreshTokenImport``."""

    @property
    def login_url(self) -> str: ...

    def authorize(self, session: requests.Session | None = None) -> Authorization: ...


@dataclass(frozen=True)
class ConnectResult:
    integration: str
    org_id: str
    username: str
    status: str
    created: bool


def login_url_for(environment: str, domain: str | None = None) -> str:
    """``production`` and ``sandbox`` name Salesforce's login hosts; ``custom`` takes a full host,
    such as ``acme.my.salesforce.com`` (or ``127.0.0.1:PORT`` for the local sandbox)."""
    env = environment.strip().lower()
    if env in ENVIRONMENTS:
        if domain:
            raise ConnectError(f"--domain is only used with --env custom, not with --env {environment}")
        return ENVIRONMENTS[env]
    if env != "custom":
        choices = ", ".join([*ENVIRONMENTS, "custom"])
        raise ConnectError(f"unknown environment {environment!r}: choose one of {choices}")
    if not domain:
        raise ConnectError("--env custom needs --domain HOST, such as --domain acme.my.salesforce.com")
    host = domain.strip().removeprefix("https://").rstrip("/")
    if not _HOST.fullmatch(host):
        raise ConnectError(
            f"malformed Salesforce host {domain!r}: give the full host name, such as acme.my.salesforce.com"
        )
    return checked_login_url(f"https://{host}", shown=domain)


def checked_login_url(url: str, *, shown: str | None = None) -> str:
    """A login URL given whole (``--login-url``), checked before any token is sent to it."""
    try:
        return normalize_login_url(url)
    except ValueError as exc:
        raise ConnectError(f"cannot log in at {shown or url!r}: {exc}") from None


def connect(
    database: Database,
    cipher: Cipher,
    name: str,
    authorizer: Authorizer,
    *,
    project_id: int | None = None,
    now: datetime | None = None,
) -> ConnectResult:
    """Connect integration ``name`` to the org the admin authorises. A new integration needs
    ``project_id``; an existing one (created from an integration file) must not be connected yet."""
    with database.session() as session:
        existing = find_integration(session, name)
        if existing is None:
            _check_new(name, project_id)
        else:
            _check_connectable(name, existing.project_id, existing.credential is not None, project_id)
    authorization = authorizer.authorize()
    with database.session() as session:
        integration = find_integration(session, name)
        created = integration is None
        if integration is None:
            assert project_id is not None
            integration = create_integration(
                session, name=name, project_id=project_id, login_url=authorization.login_url
            )
        else:
            _check_connectable(name, integration.project_id, integration.credential is not None, project_id)
        save_credentials(session, integration, _credentials(authorization), cipher, now=now or utcnow())
        return ConnectResult(
            integration=name,
            org_id=authorization.identity.org_id,
            username=authorization.identity.username,
            status=integration.status,
            created=created,
        )


def reconnect(
    database: Database,
    cipher: Cipher,
    name: str,
    authorizer: Authorizer,
    *,
    now: datetime | None = None,
) -> ConnectResult:
    """Replace the credentials of integration ``name``; its rules, mappings, history and
    watermarks stay. The new credentials must be for the org the integration already holds."""
    with database.session() as session:
        get_integration(session, name)
    authorization = authorizer.authorize()
    with database.session() as session:
        integration = get_integration(session, name)
        held = integration.org_id
        if held is not None and held != authorization.identity.org_id:
            raise ConflictError(
                f"integration {name!r} is connected to Salesforce org {held}, but you authorised org "
                f"{authorization.identity.org_id}: reconnect as a user of org {held}, or connect the "
                "other org as a new integration. Nothing was stored."
            )
        save_credentials(session, integration, _credentials(authorization), cipher, now=now or utcnow())
        return ConnectResult(
            integration=name,
            org_id=authorization.identity.org_id,
            username=authorization.identity.username,
            status=integration.status,
            created=False,
        )


def stored_login_url(database: Database, name: str) -> str:
    """The login URL integration ``name`` was connected through (the default for reconnect)."""
    with database.session() as session:
        return get_integration(session, name).login_url


def _check_new(name: str, project_id: int | None) -> None:
    try:
        check_name(name)
    except ValueError as exc:
        raise ConfigError(str(exc), key="name") from None
    if project_id is None:
        raise ConnectError(f"integration {name!r} does not exist yet: give --project-id to create it")
    if isinstance(project_id, bool) or project_id <= 0:
        raise ConfigError(f"must be a positive whole number, got {project_id!r}", key="project_id")


def _check_connectable(name: str, held_project: int, connected: bool, project_id: int | None) -> None:
    if connected:
        raise ConflictError(
            f"integration {name!r} is already connected: use `sf-pipeline integration reconnect {name}` "
            "to replace its credentials"
        )
    if project_id is not None and project_id != held_project:
        raise ConflictError(f"integration {name!r} belongs to project {held_project}, not {project_id}")


def _credentials(authorization: Authorization) -> StoredCredentials:
    return StoredCredentials(
        client_id=authorization.client.client_id,
        client_secret=authorization.client.client_secret,
        refresh_token=authorization.refresh_token,
        access_token=authorization.access_token,
        instance_url=authorization.instance_url,
        identity_url=authorization.identity_url,
        org_id=authorization.identity.org_id,
        user_id=authorization.identity.user_id,
        login_url=authorization.login_url,
    )
