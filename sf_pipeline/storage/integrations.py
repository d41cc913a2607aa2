"""Integrations, their credentials and their setup status: the rules every writer goes through.

- An integration's name is its id everywhere (Dagster partition key, CLI argument, external IDs).
- One Salesforce org belongs to one integration (and so one project).
- Secrets are stored encrypted; ``StoredCredentials`` is the decrypted view.
- Token refreshes compare-and-swap on ``Credential.version`` so concurrent refreshers never
  corrupt the stored credentials.
- Setup is complete with credentials, saved objects and saved mappings; an Incomplete integration
  that becomes complete turns Active and asks for its initial sync.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from ipaddress import ip_address
from typing import Any, cast
from urllib.parse import urlsplit

from sqlalchemy import CursorResult, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sf_pipeline.errors import ConfigError, ConflictError, NotFoundError
from sf_pipeline.mapping_spec import MappingSpec, as_spec, default_mappings
from sf_pipeline.secrets import Cipher
from sf_pipeline.storage.database import Database
from sf_pipeline.storage.models import Credential, FieldMapping, Integration, IntegrationStatus, utcnow

NAME_RULE = "lower-case letters, digits and '-', 1 to 63 characters, starting with a letter"
_NAME = re.compile(r"[a-z][a-z0-9-]{0,62}")
MIN_FREQUENCY_MINUTES = 5
MAX_FREQUENCY_MINUTES = 7 * 24 * 60
DEFAULT_FREQUENCY_MINUTES = 60
STANDARD_LOGIN_HOSTS = ("login.salesforce.com", "test.salesforce.com")
MY_DOMAIN_SUFFIX = ".my.salesforce.com"
_LOOPBACK_HOSTS = ("localhost",)


# --- validation shared by the integration file, the CLI and the connect flow -----------------------


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"invalid name {name!r}: use {NAME_RULE}")
    return name


def check_frequency(minutes: int) -> int:
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        raise ValueError(f"must be a whole number of minutes, got {minutes!r}")
    if not MIN_FREQUENCY_MINUTES <= minutes <= MAX_FREQUENCY_MINUTES:
        raise ValueError(f"must be between {MIN_FREQUENCY_MINUTES} and {MAX_FREQUENCY_MINUTES} minutes, got {minutes}")
    return minutes


def normalize_login_url(url: str) -> str:
    """``https://<host>`` for Salesforce's production or sandbox login host, a My Domain host, or
    (for the local sandbox) a loopback address with a port. Tokens and the client secret are sent to
    this host, so nothing else is accepted."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if parts.scheme != "https":
        raise ValueError(f"{url!r} must be an https:// URL")
    if parts.username or parts.password or parts.query or parts.fragment or parts.path not in ("", "/"):
        raise ValueError(f"{url!r} must be just the login host, like https://login.salesforce.com")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{url!r} has an invalid port") from exc
    if _is_loopback(host):
        if port is None:
            raise ValueError(f"{url!r}: a local sandbox URL needs its port, like https://127.0.0.1:8443")
        return f"https://{parts.netloc.lower()}"
    salesforce_host = host in STANDARD_LOGIN_HOSTS or (
        host.endswith(MY_DOMAIN_SUFFIX) and len(host) > len(MY_DOMAIN_SUFFIX)
    )
    if not salesforce_host:
        raise ValueError(
            f"{url!r} is not a Salesforce login URL: use https://login.salesforce.com (production), "
            f"https://test.salesforce.com (sandbox) or your My Domain, https://<domain>{MY_DOMAIN_SUFFIX}"
        )
    if port not in (None, 443):
        raise ValueError(f"{url!r}: Salesforce login hosts take no port")
    return f"https://{host}"


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_HOSTS:
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def _checked(key: str, check: Any, value: Any) -> Any:
    try:
        return check(value)
    except ValueError as exc:
        raise ConfigError(str(exc), key=key) from exc


# --- integrations --------------------------------------------------------------------------------


def find_integration(session: Session, name: str) -> Integration | None:
    return session.scalars(select(Integration).where(Integration.name == name)).one_or_none()


def get_integration(session: Session, name: str) -> Integration:
    integration = find_integration(session, name)
    if integration is None:
        raise NotFoundError(f"no integration named {name!r} (see `sf-pipeline integration list`)")
    return integration


def list_integrations(session: Session) -> list[Integration]:
    return list(session.scalars(select(Integration).order_by(Integration.name)))


def create_integration(
    session: Session,
    *,
    name: str,
    project_id: int,
    login_url: str,
    frequency_minutes: int = DEFAULT_FREQUENCY_MINUTES,
) -> Integration:
    """A new Incomplete integration with the default field mappings (not yet saved by the admin)."""
    _checked("name", check_name, name)
    _checked("frequency_minutes", check_frequency, frequency_minutes)
    login_url = _checked("login_url", normalize_login_url, login_url)
    if isinstance(project_id, bool) or not isinstance(project_id, int) or project_id <= 0:
        raise ConfigError(f"must be a positive whole number, got {project_id!r}", key="project_id")
    if find_integration(session, name) is not None:
        raise ConflictError(f"an integration named {name!r} already exists")
    integration = Integration(
        name=name,
        project_id=project_id,
        login_url=login_url,
        frequency_minutes=frequency_minutes,
        status=IntegrationStatus.INCOMPLETE.value,
        objects_saved=False,
        mappings_saved=False,
        full_sync_requested=False,
        consecutive_failures=0,
    )
    set_default_mappings(integration)
    session.add(integration)
    try:
        session.flush()
    except IntegrityError as exc:  # created by another process since the check above
        raise ConflictError(f"an integration named {name!r} already exists") from exc
    return integration


# --- field mappings --------------------------------------------------------------------------------


def mapping_specs(integration: Integration) -> list[MappingSpec]:
    """The integration's field mappings in order, as ``compile_object_mapping`` takes them."""
    return [as_spec(row) for row in integration.mappings]


def replace_mappings(integration: Integration, specs: Iterable[MappingSpec]) -> None:
    """Replace every field mapping (the old rows are deleted). Does not mark mappings saved."""
    integration.mappings = [
        FieldMapping(position=i, field=s.field, property=s.property, object_name=s.object_name, type=s.type)
        for i, s in enumerate(specs)
    ]


def set_default_mappings(integration: Integration) -> None:
    """Email→email, FirstName→first_name, LastName→last_name, Phone→phone."""
    replace_mappings(integration, default_mappings())


# --- setup status ----------------------------------------------------------------------------------


def setup_complete(integration: Integration) -> bool:
    return integration.credential is not None and integration.objects_saved and integration.mappings_saved


def refresh_setup_status(integration: Integration, now: datetime) -> bool:
    """Turn an Incomplete integration whose setup is now complete Active, and ask for the initial
    sync (the dispatcher launches it at its next tick). Inactive and Error are never changed here.
    Returns whether the integration was activated."""
    if integration.status != IntegrationStatus.INCOMPLETE.value or not setup_complete(integration):
        return False
    integration.status = IntegrationStatus.ACTIVE.value
    integration.activated_at = now
    integration.sync_requested_at = now
    return True


# --- credentials -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredCredentials:
    """An integration's OAuth credentials, decrypted. ``version`` is what ``update_tokens`` compares."""

    client_id: str
    client_secret: str
    refresh_token: str
    access_token: str | None = None
    instance_url: str | None = None
    identity_url: str | None = None
    org_id: str | None = None
    user_id: str | None = None
    login_url: str | None = None
    version: int = 0

    def __repr__(self) -> str:
        return (
            f"StoredCredentials(client_id={self.client_id!r}, org_id={self.org_id!r}, "
            f"instance_url={self.instance_url!r}, version={self.version}, secrets=<hidden>)"
        )


def save_credentials(
    session: Session,
    integration: Integration,
    creds: StoredCredentials,
    cipher: Cipher,
    *,
    now: datetime | None = None,
) -> Credential:
    """Store (or replace, on reconnect) the integration's credentials, every secret encrypted, then
    refresh its setup status. ``creds.version`` is ignored: saving always bumps the stored version.

    Raises ConflictError when the org already belongs to another integration, or when this
    integration is connected to a different org (its users and watermarks belong to that org)."""
    if creds.org_id is not None:
        holder = session.scalars(
            select(Integration).where(Integration.org_id == creds.org_id, Integration.id != integration.id)
        ).one_or_none()
        if holder is not None:
            raise ConflictError(
                f"Salesforce org {creds.org_id} is already connected to integration {holder.name!r}; "
                "an org can belong to only one integration"
            )
        if integration.org_id is not None and integration.org_id != creds.org_id:
            raise ConflictError(
                f"integration {integration.name!r} is connected to org {integration.org_id}, not "
                f"{creds.org_id}: reconnect it as a user of that org, or create a new integration"
            )
    if creds.login_url is not None:
        integration.login_url = _checked("login_url", normalize_login_url, creds.login_url)
    credential = integration.credential
    if credential is None:
        credential = Credential(version=0)
        integration.credential = credential
    credential.client_id = creds.client_id
    credential.client_secret_enc = cipher.encrypt(creds.client_secret)
    credential.refresh_token_enc = cipher.encrypt(creds.refresh_token)
    credential.access_token_enc = None if creds.access_token is None else cipher.encrypt(creds.access_token)
    credential.instance_url = creds.instance_url
    credential.identity_url = creds.identity_url
    credential.org_id = creds.org_id
    credential.user_id = creds.user_id
    credential.version = (credential.version or 0) + 1
    if creds.org_id is not None:
        integration.org_id = creds.org_id
    refresh_setup_status(integration, now or utcnow())
    try:
        session.flush()
    except IntegrityError as exc:  # the org was connected elsewhere since the check above
        raise ConflictError(f"Salesforce org {creds.org_id} was just connected to another integration") from exc
    return credential


def load_credentials(session: Session, name: str, cipher: Cipher) -> StoredCredentials:
    integration = get_integration(session, name)
    credential = integration.credential
    if credential is None:
        raise NotFoundError(
            f"integration {name!r} has no Salesforce credentials yet: connect it first "
            f"(`sf-pipeline integration connect {name} ...`)"
        )
    session.refresh(credential)  # another process may have rotated the tokens since this session read them
    access_token = credential.access_token_enc
    return StoredCredentials(
        client_id=credential.client_id,
        client_secret=cipher.decrypt(credential.client_secret_enc),
        refresh_token=cipher.decrypt(credential.refresh_token_enc),
        access_token=None if access_token is None else cipher.decrypt(access_token),
        instance_url=credential.instance_url,
        identity_url=credential.identity_url,
        org_id=credential.org_id,
        user_id=credential.user_id,
        login_url=integration.login_url,
        version=credential.version,
    )


def update_tokens(
    session: Session,
    name: str,
    cipher: Cipher,
    *,
    access_token: str,
    refresh_token: str | None = None,
    expected_version: int,
) -> bool:
    """Store refreshed tokens if the credentials are still at ``expected_version`` (compare-and-swap).

    Returns False when another writer stored tokens first: reload with ``load_credentials`` and use
    theirs. The refresh token is kept unless a new one is given (Salesforce rotates it only when the
    connected app is configured to)."""
    integration_id = select(Integration.id).where(Integration.name == name).scalar_subquery()
    values: dict[str, Any] = {
        "access_token_enc": cipher.encrypt(access_token),
        "version": Credential.version + 1,
        "updated_at": utcnow(),
    }
    if refresh_token is not None:
        values["refresh_token_enc"] = cipher.encrypt(refresh_token)
    statement = (
        update(Credential)
        .where(Credential.integration_id == integration_id, Credential.version == expected_version)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    result = cast(CursorResult[Any], session.execute(statement))
    if result.rowcount == 1:
        return True
    if get_integration(session, name).credential is None:
        raise NotFoundError(f"integration {name!r} has no Salesforce credentials to update")
    return False


class CredentialStore:
    """One integration's stored credentials, as a token source reads and refreshes them (each
    call its own short transaction, so concurrent refreshers see each other's writes)."""

    def __init__(self, database: Database, cipher: Cipher, name: str) -> None:
        self.database = database
        self.cipher = cipher
        self.name = name

    def load(self) -> StoredCredentials:
        with self.database.session() as session:
            return load_credentials(session, self.name, self.cipher)

    def save(self, *, access_token: str, refresh_token: str | None, expected_version: int) -> bool:
        with self.database.session() as session:
            return update_tokens(session, self.name, self.cipher, access_token=access_token,
                                 refresh_token=refresh_token, expected_version=expected_version)
