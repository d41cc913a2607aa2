"""The org's connected app, its one approved user, and every OAuth token it has issued.

Grant logic lives here with no HTTP: ``authorize`` decides where the browser is sent,
``grant`` answers ``/services/oauth2/token``, ``check_access`` guards the REST API. Times come
from the org clock. Salesforce token responses carry no ``expires_in``: clients learn an access
token died from a 401 ``INVALID_SESSION_ID``, and so it is here (inactivity timeout, revocation,
or ``expire_sessions``).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import urlencode, urlsplit

from sf_pipeline.sandbox.clock import OrgClock
from sf_pipeline.sandbox.errors import InvalidSessionId, OAuthError

CODE_LIFETIME = timedelta(minutes=15)
DEFAULT_SCOPE = "api refresh_token id"


@dataclass(frozen=True)
class ConnectedApp:
    client_id: str
    client_secret: str
    callback_urls: tuple[str, ...] = ()  # empty: any http(s) URL on localhost / 127.0.0.1

    def accepts_redirect(self, uri: str) -> bool:
        if self.callback_urls:
            return uri in self.callback_urls
        parts = urlsplit(uri)
        return parts.scheme in ("http", "https") and parts.hostname in ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class User:
    user_id: str
    username: str
    password: str
    security_token: str
    first_name: str
    last_name: str
    email: str

    @property
    def display_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass
class AccessToken:
    value: str
    scope: str
    issued_at: datetime
    last_used: datetime
    refresh_token: str | None
    valid: bool = True


@dataclass
class RefreshToken:
    value: str
    scope: str
    issued_at: datetime
    valid: bool = True


@dataclass
class AuthCode:
    value: str
    redirect_uri: str
    scope: str
    issued_at: datetime
    challenge: str | None
    challenge_method: str
    used: bool = False


@dataclass(frozen=True)
class Grant:
    """What a successful token request produced; the handler shapes it into JSON."""

    access_token: str
    scope: str
    issued_at: datetime
    refresh_token: str | None = None


@dataclass
class AuthSettings:
    refresh_token_rotation: bool = False
    deny_consent: bool = False
    session_timeout: timedelta = timedelta(hours=2)
    require_secret: bool = True


@dataclass
class Auth:
    app: ConnectedApp
    user: User
    org_id: str
    clock: OrgClock
    settings: AuthSettings = field(default_factory=AuthSettings)
    _access: dict[str, AccessToken] = field(default_factory=dict)
    _refresh: dict[str, RefreshToken] = field(default_factory=dict)
    _codes: dict[str, AuthCode] = field(default_factory=dict)
    _expire_countdown: int | None = None
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # -- authorization endpoint ---------------------------------------------------------------------

    def authorize(self, params: Mapping[str, str]) -> str:
        """The URL to redirect the browser to; OAuthError when there is nowhere safe to redirect."""
        if params.get("client_id") != self.app.client_id:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        redirect_uri = params.get("redirect_uri", "")
        if not self.app.accepts_redirect(redirect_uri):
            raise OAuthError("redirect_uri_mismatch", "redirect_uri must match configuration")
        state = params.get("state")

        def back(**query: str) -> str:
            if state is not None:
                query["state"] = state
            sep = "&" if urlsplit(redirect_uri).query else "?"
            return redirect_uri + sep + urlencode(query)

        if params.get("response_type") != "code":
            return back(error="unsupported_response_type", error_description="response type not supported")
        method = params.get("code_challenge_method", "S256" if params.get("code_challenge") else "")
        if params.get("code_challenge") and method not in ("S256", "plain"):
            return back(error="invalid_request", error_description="invalid code_challenge_method")
        if self.settings.deny_consent:
            return back(error="access_denied", error_description="end-user denied authorization")
        with self._lock:
            code = AuthCode(
                value="aPrx" + secrets.token_urlsafe(48),
                redirect_uri=redirect_uri,
                scope=params.get("scope") or DEFAULT_SCOPE,
                issued_at=self.clock.now(),
                challenge=params.get("code_challenge") or None,
                challenge_method=method,
            )
            self._codes[code.value] = code
        return back(code=code.value)

    # -- token endpoint -----------------------------------------------------------------------------

    def grant(self, form: Mapping[str, str], basic: tuple[str, str] | None = None) -> Grant:
        grant_type = form.get("grant_type", "")
        client_id = basic[0] if basic else form.get("client_id", "")
        client_secret = basic[1] if basic else form.get("client_secret")
        with self._lock:
            if grant_type == "authorization_code":
                self._check_client(client_id, client_secret)
                return self._code_grant(form)
            if grant_type == "refresh_token":
                self._check_client(client_id, client_secret)
                return self._refresh_grant(form)
            if grant_type == "password":
                self._check_client(client_id, client_secret, secret_required=True)
                return self._password_grant(form)
        raise OAuthError("unsupported_grant_type", "grant type not supported")

    def _check_client(self, client_id: str, secret: str | None, *, secret_required: bool = False) -> None:
        if client_id != self.app.client_id:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        if secret is None and not (secret_required or self.settings.require_secret):
            return
        if secret is None or not _same(secret, self.app.client_secret):
            raise OAuthError("invalid_client", "invalid client credentials")

    def _code_grant(self, form: Mapping[str, str]) -> Grant:
        code = self._codes.get(form.get("code", ""))
        if code is None or code.used:
            raise OAuthError("invalid_grant", "invalid authorization code")
        if self.clock.now() - code.issued_at > CODE_LIFETIME:
            raise OAuthError("invalid_grant", "expired authorization code")
        if form.get("redirect_uri") != code.redirect_uri:
            raise OAuthError("redirect_uri_mismatch", "redirect_uri must match configuration")
        if code.challenge is not None and not _verifier_matches(
            form.get("code_verifier"), code.challenge, code.challenge_method
        ):
            raise OAuthError("invalid_grant", "invalid code verifier")
        code.used = True
        refresh = None
        if {"refresh_token", "offline_access", "full"} & set(code.scope.split()):
            refresh = self._new_refresh(code.scope).value
        return self._new_access(code.scope, refresh, include_refresh=True)

    def _refresh_grant(self, form: Mapping[str, str]) -> Grant:
        current = self._refresh.get(form.get("refresh_token", ""))
        if current is None or not current.valid:
            raise OAuthError("invalid_grant", "expired access/refresh token")
        if self.settings.refresh_token_rotation:
            current.valid = False
            rotated = self._new_refresh(current.scope)
            return self._new_access(current.scope, rotated.value, include_refresh=True)
        return self._new_access(current.scope, current.value, include_refresh=False)

    def _password_grant(self, form: Mapping[str, str]) -> Grant:
        password = form.get("password", "")
        if form.get("username") != self.user.username or password not in (
            self.user.password,
            self.user.password + self.user.security_token,
        ):
            raise OAuthError("invalid_grant", "authentication failure")
        return self._new_access("api id", None, include_refresh=False)

    def _new_refresh(self, scope: str) -> RefreshToken:
        token = RefreshToken("5Aep861" + secrets.token_urlsafe(60), scope, self.clock.now())
        self._refresh[token.value] = token
        return token

    def _new_access(self, scope: str, refresh: str | None, *, include_refresh: bool) -> Grant:
        now = self.clock.now()
        value = f"{self.org_id[:15]}!AQ{secrets.token_urlsafe(72)}"
        self._access[value] = AccessToken(value, scope, now, now, refresh)
        return Grant(value, scope, now, refresh if include_refresh else None)

    def issue_refresh_token(self, scope: str = DEFAULT_SCOPE) -> Grant:
        """As if the user had approved the app in a browser and the code had been exchanged."""
        with self._lock:
            refresh = self._new_refresh(scope)
            return self._new_access(scope, refresh.value, include_refresh=True)

    # -- revocation and sessions --------------------------------------------------------------------

    def revoke(self, token: str) -> Literal["refresh", "access"]:
        with self._lock:
            refresh = self._refresh.get(token)
            if refresh is not None:
                refresh.valid = False
                for access in self._access.values():
                    if access.refresh_token == token:
                        access.valid = False
                return "refresh"
            session = self._access.get(token)
            if session is not None:
                session.valid = False
                return "access"
        raise OAuthError("unsupported_token_type", "this token type is not supported")

    def revoke_all(self) -> None:
        with self._lock:
            for refresh in self._refresh.values():
                refresh.valid = False
            for access in self._access.values():
                access.valid = False

    def expire_sessions(self, after_requests: int = 0) -> None:
        """Invalidate every access token issued so far, now or once ``after_requests`` more API
        requests have been served. Tokens issued later stay valid, so clients can log in again."""
        with self._lock:
            if after_requests <= 0:
                self._expire_all()
                self._expire_countdown = None
            else:
                self._expire_countdown = after_requests

    def _expire_all(self) -> None:
        for access in self._access.values():
            access.valid = False

    def check_access(self, token: str | None) -> AccessToken:
        with self._lock:
            access = self._access.get(token or "")
            if access is None or not access.valid:
                raise InvalidSessionId("Session expired or invalid")
            now = self.clock.now()
            if now - access.last_used > self.settings.session_timeout:
                access.valid = False
                raise InvalidSessionId("Session expired or invalid")
            access.last_used = max(now, access.last_used)
            return access

    def note_api_request(self) -> None:
        with self._lock:
            if self._expire_countdown is not None:
                self._expire_countdown -= 1
                if self._expire_countdown <= 0:
                    self._expire_countdown = None
                    self._expire_all()


def _verifier_matches(verifier: str | None, challenge: str, method: str) -> bool:
    if not verifier:
        return False
    if method == "plain":
        return _same(verifier, challenge)
    digest = hashlib.sha256(verifier.encode()).digest()
    expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return _same(expected, challenge)


def _same(given: str, expected: str) -> bool:
    return secrets.compare_digest(given.encode(), expected.encode())
