"""Ending an integration: ``disconnect`` (revoke and forget the credentials; rules, mappings and
watermarks stay, the integration becomes Incomplete) and ``delete`` (revoke, then remove its
configuration, credentials, watermarks, runs, events and health results; synced users are kept
unless asked otherwise).

The refresh token is revoked at Salesforce (``/services/oauth2/revoke``) before anything is
forgotten locally, so a failed revoke loses nothing: the admin can retry, or skip the revoke and
revoke the app's access in Salesforce Setup instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select

from sf_pipeline.errors import UserError
from sf_pipeline.salesforce.errors import SalesforceError
from sf_pipeline.salesforce.oauth import revoke_token
from sf_pipeline.secrets import Cipher
from sf_pipeline.storage.database import Database
from sf_pipeline.storage.integrations import get_integration, load_credentials
from sf_pipeline.storage.models import IntegrationStatus, User


class RevokeFailedError(UserError):
    """Salesforce could not be asked to revoke the token: nothing was changed (exit 1)."""

    exit_code = 1


@dataclass(frozen=True)
class Revocation:
    """``revoked``: Salesforce revoked the token now; False when it was already invalid, or when
    the integration had no credentials (``had_credentials``) or the revoke was skipped."""

    had_credentials: bool
    revoked: bool
    skipped: bool = False


@dataclass(frozen=True)
class Deleted:
    name: str
    revocation: Revocation
    users_kept: int
    users_deleted: int


def revoke(database: Database, cipher: Cipher, name: str, *, skip: bool = False) -> Revocation:
    with database.session() as session:
        integration = get_integration(session, name)
        if integration.credential is None:
            return Revocation(had_credentials=False, revoked=False)
        if skip:
            return Revocation(had_credentials=True, revoked=False, skipped=True)
        credentials = load_credentials(session, name, cipher)
        login_url = integration.login_url
    try:
        return Revocation(had_credentials=True, revoked=revoke_token(login_url, credentials.refresh_token))
    except SalesforceError as exc:
        raise RevokeFailedError(
            f"could not revoke the refresh token at {login_url}: {exc.message} Nothing was changed; try again, "
            "or give --skip-revoke and revoke the app's access in Salesforce Setup (Connected Apps OAuth Usage)."
        ) from None


def disconnect(database: Database, cipher: Cipher, name: str, *, skip_revoke: bool = False) -> Revocation:
    revocation = revoke(database, cipher, name, skip=skip_revoke)
    with database.session() as session:
        integration = get_integration(session, name)
        integration.credential = None  # delete-orphan: the row and its ciphertexts go
        if integration.status != IntegrationStatus.INACTIVE.value:
            integration.status = IntegrationStatus.INCOMPLETE.value
        integration.sync_requested_at = None
    return revocation


def delete_integration(
    database: Database, cipher: Cipher, name: str, *, keep_users: bool, skip_revoke: bool = False
) -> Deleted:
    revocation = revoke(database, cipher, name, skip=skip_revoke)
    with database.session() as session:
        integration = get_integration(session, name)
        users = session.scalar(select(func.count()).select_from(User).where(User.integration_id == integration.id))
        if not keep_users:
            session.execute(delete(User).where(User.integration_id == integration.id))
        # Runs, events, health results and watermarks go with it (ON DELETE CASCADE); kept users
        # lose only their link to it (ON DELETE SET NULL) and keep their external IDs.
        session.delete(integration)
    count = int(users or 0)
    return Deleted(name=name, revocation=revocation, users_kept=count if keep_users else 0,
                   users_deleted=0 if keep_users else count)


def user_count(database: Database, name: str) -> int:
    with database.session() as session:
        integration = get_integration(session, name)
        return int(session.scalar(select(func.count()).select_from(User)
                                  .where(User.integration_id == integration.id)) or 0)
