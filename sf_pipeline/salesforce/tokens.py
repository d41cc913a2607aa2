"""Where the client gets its access token, and how a stale one is replaced.

Salesforce sends no ``expires_in``: a token is known to be stale only when a call answers 401.
The client then asks its ``TokenSource`` to ``refresh(stale)``. A source refreshes at most once
per stale token: threads that hit the same 401 get the token the first one fetched.

``StoredTokenSource`` also coordinates *processes* through the stored credentials' version
(compare-and-swap): a run that loses the race adopts the winner's tokens instead of overwriting
them, so a rotated refresh token is never replaced by one Salesforce has already retired. Where
the credentials are stored is its ``TokenStore``'s business (the application database's is
``storage.integrations.CredentialStore``; ``salesforce.session`` wires the two).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import requests

from sf_pipeline.salesforce.errors import AuthenticationError, CredentialsRevokedError
from sf_pipeline.salesforce.oauth import ClientCredentials, TokenResponse, refresh_grant

# Seconds to wait, in turn, for a concurrent refresher to store the tokens it got.
_REVOKED_RECHECK_DELAYS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)


@dataclass(frozen=True)
class AccessGrant:
    access_token: str = field(repr=False)
    instance_url: str
    # The identity URL (``/id/{org}/{user}``) when known: every refresh grant names it.
    identity_url: str | None = None


class TokenSource(Protocol):
    def current(self) -> AccessGrant:
        """The access token to use now (fetching one if there is none yet)."""
        ...

    def refresh(self, stale: AccessGrant) -> AccessGrant:
        """A token newer than ``stale``: fetched, or the one another caller already fetched."""
        ...


class StoredTokens(Protocol):
    """Decrypted credentials as a ``TokenStore`` loads them; ``version`` is what ``save`` compares."""

    @property
    def client_id(self) -> str: ...
    @property
    def client_secret(self) -> str: ...
    @property
    def refresh_token(self) -> str: ...
    @property
    def access_token(self) -> str | None: ...
    @property
    def instance_url(self) -> str | None: ...
    @property
    def identity_url(self) -> str | None: ...
    @property
    def login_url(self) -> str | None: ...
    @property
    def version(self) -> int: ...


class TokenStore(Protocol):
    def load(self) -> StoredTokens: ...

    def save(self, *, access_token: str, refresh_token: str | None, expected_version: int) -> bool:
        """Store refreshed tokens if still at ``expected_version``; False when another writer won."""
        ...


class StaticRefreshTokenSource:
    """Keeps the refresh token in memory (scripts, tests, one-off tools)."""

    def __init__(
        self,
        login_url: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        *,
        grant: AccessGrant | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.login_url = login_url.rstrip("/")
        self._client = ClientCredentials(client_id, client_secret)
        self._refresh_token = refresh_token
        self._grant = grant
        self._session = session
        self._lock = threading.Lock()
        self.refreshes = 0

    @property
    def refresh_token(self) -> str:
        """The latest refresh token (Salesforce may rotate it on every refresh)."""
        return self._refresh_token

    def current(self) -> AccessGrant:
        with self._lock:
            if self._grant is None:
                self._grant = self._fetch()
            return self._grant

    def refresh(self, stale: AccessGrant) -> AccessGrant:
        with self._lock:
            if self._grant is None or self._grant.access_token == stale.access_token:
                self._grant = self._fetch()
            return self._grant

    def _fetch(self) -> AccessGrant:
        tokens = refresh_grant(self.login_url, self._client, self._refresh_token, session=self._session)
        self.refreshes += 1
        if tokens.refresh_token:
            self._refresh_token = tokens.refresh_token
        return _grant_from(tokens, fallback_identity=self._grant.identity_url if self._grant else None)


class StoredTokenSource:
    """Tokens of a stored integration, kept in step with its ``TokenStore``."""

    def __init__(
        self,
        store: TokenStore,
        integration_name: str,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.integration_name = integration_name
        self._session = session
        self._sleep = sleep
        self._lock = threading.Lock()
        self._grant: AccessGrant | None = None
        self.refreshes = 0

    def current(self) -> AccessGrant:
        with self._lock:
            if self._grant is None:
                stored = self._load()
                self._grant = _stored_grant(stored) or self._refresh_from(stored)
            return self._grant

    def refresh(self, stale: AccessGrant) -> AccessGrant:
        with self._lock:
            if self._grant is not None and self._grant.access_token != stale.access_token:
                return self._grant  # another thread of this process already refreshed
            stored = self._load()
            adopted = _stored_grant(stored)
            if adopted is not None and adopted.access_token != stale.access_token:
                self._grant = adopted  # another process refreshed since we last read
            else:
                self._grant = self._refresh_from(stored)
            return self._grant

    def _refresh_from(self, stored: StoredTokens) -> AccessGrant:
        if not stored.login_url:
            raise AuthenticationError(f"integration {self.integration_name!r} has no login URL stored")
        client = ClientCredentials(stored.client_id, stored.client_secret)
        try:
            tokens = refresh_grant(
                stored.login_url,
                client,
                stored.refresh_token,
                session=self._session,
                integration=self.integration_name,
            )
        except CredentialsRevokedError:
            # With rotation on, Salesforce retires a refresh token as soon as it is used: a
            # concurrent refresher may have spent it and not yet stored its result. Give it a
            # moment; if the stored credentials move on, theirs are good.
            for delay in _REVOKED_RECHECK_DELAYS:
                self._sleep(delay)
                latest = self._load()
                adopted = _stored_grant(latest)
                if latest.version != stored.version and adopted is not None:
                    return adopted
            raise
        self.refreshes += 1
        stored_ours = self.store.save(access_token=tokens.access_token, refresh_token=tokens.refresh_token,
                                      expected_version=stored.version)
        if not stored_ours:
            # Lost the compare-and-swap: another run refreshed at the same time and stored its
            # tokens first. Use those; ours (and any refresh token rotated to us) are dropped.
            adopted = _stored_grant(self._load())
            if adopted is not None:
                return adopted
        return _grant_from(tokens, fallback_identity=stored.identity_url)

    def _load(self) -> StoredTokens:
        return self.store.load()


def _stored_grant(stored: StoredTokens) -> AccessGrant | None:
    if not stored.access_token or not stored.instance_url:
        return None
    return AccessGrant(stored.access_token, stored.instance_url, stored.identity_url)


def _grant_from(tokens: TokenResponse, *, fallback_identity: str | None) -> AccessGrant:
    return AccessGrant(tokens.access_token, tokens.instance_url, tokens.identity_url or fallback_identity)
