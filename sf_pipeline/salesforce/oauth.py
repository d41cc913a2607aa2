"""Salesforce OAuth 2.0: the token endpoint, the identity URL, and the
authorization-code flow with PKCE through a loopback redirect.

Everything here talks to the *login* host (``login.salesforce.com``, ``test.salesforce.com``, a
My Domain, or the local sandbox); data calls go to the instance URL a token response names.
Failures of the browser flow are ``ConnectError``; token-endpoint failures are mapped by
``errors.map_error`` and wrapped by the caller that knows what they mean.
"""

from __future__ import annotations

import base64
import hashlib
import html
import http.server
import re
import secrets
import threading
import webbrowser
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import requests

from sf_pipeline.errors import ConnectError, ConnectRefusedError
from sf_pipeline.salesforce.errors import SalesforceError, map_error

SCOPE = "api refresh_token"
OAUTH_TIMEOUT = (10.0, 60.0)
# A login host that does not answer within this is a typo or a network problem: say so in seconds,
# before the admin waits minutes at a browser page that will never load.
HOST_CHECK_TIMEOUT = (5.0, 10.0)

_ID_PATH = re.compile(r"/id/([A-Za-z0-9]{15,18})/([A-Za-z0-9]{15,18})/?$")

OpenBrowser = Callable[[str], object]


@dataclass(frozen=True)
class ClientCredentials:
    """The connected app's consumer key and secret."""

    client_id: str
    client_secret: str = field(repr=False)


@dataclass(frozen=True)
class TokenResponse:
    access_token: str = field(repr=False)
    instance_url: str
    identity_url: str
    # Present for authorization_code grants, and for refresh grants when the connected app
    # rotates refresh tokens.
    refresh_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Identity:
    org_id: str
    user_id: str
    username: str


@dataclass(frozen=True)
class Authorization:
    """What a successful connect learned: enough to store credentials for an integration."""

    login_url: str
    client: ClientCredentials
    refresh_token: str = field(repr=False)
    access_token: str = field(repr=False)
    instance_url: str
    identity_url: str
    identity: Identity


# --------------------------------------------------------------------------- token endpoint


def refresh_grant(
    login_url: str,
    client: ClientCredentials,
    refresh_token: str,
    *,
    session: requests.Session | None = None,
    integration: str | None = None,
) -> TokenResponse:
    """Trade a refresh token for a new access token (and maybe a rotated refresh token)."""
    form = {
        "grant_type": "refresh_token",
        "client_id": client.client_id,
        "client_secret": client.client_secret,
        "refresh_token": refresh_token,
    }
    return _token_request(login_url, form, session=session, integration=integration)


def exchange_code(
    login_url: str,
    client: ClientCredentials,
    *,
    code: str,
    redirect_uri: str,
    code_verifier: str,
    session: requests.Session | None = None,
) -> TokenResponse:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": client.client_id,
        "client_secret": client.client_secret,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    }
    return _token_request(login_url, form, session=session, integration=None)


def _token_request(
    login_url: str, form: dict[str, str], *, session: requests.Session | None, integration: str | None
) -> TokenResponse:
    secret_values = [form.get("client_secret", ""), form.get("refresh_token", ""), form.get("code", "")]
    http = session or requests.Session()
    try:
        response = http.post(
            f"{login_url}/services/oauth2/token",
            data=form,
            headers={"Accept": "application/json"},
            timeout=OAUTH_TIMEOUT,
        )
        if response.status_code != 200:
            raise map_error(response, integration=integration, secrets=secret_values)
        body = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise map_error(exc, integration=integration, secrets=secret_values) from None
    finally:
        if session is None:
            http.close()
    if not isinstance(body, dict) or not body.get("access_token") or not body.get("instance_url"):
        raise SalesforceError("Salesforce's token response had no access_token or instance_url", status=200)
    return TokenResponse(
        access_token=str(body["access_token"]),
        instance_url=str(body["instance_url"]).rstrip("/"),
        identity_url=str(body.get("id") or ""),
        refresh_token=str(body["refresh_token"]) if body.get("refresh_token") else None,
    )


def revoke_token(login_url: str, token: str, *, session: requests.Session | None = None) -> bool:
    """Revoke a refresh token (and the access tokens issued from it) at ``/services/oauth2/revoke``.

    Salesforce answers 200 when it revoked the token and 400 (``unsupported_token_type`` /
    ``invalid_token``) when the token is already invalid: that returns False. Anything else raises."""
    http = session or requests.Session()
    try:
        response = http.post(f"{login_url}/services/oauth2/revoke", data={"token": token},
                             headers={"Accept": "application/json"}, timeout=OAUTH_TIMEOUT)
    except requests.RequestException as exc:
        raise map_error(exc, secrets=[token]) from None
    finally:
        if session is None:
            http.close()
    if response.status_code == 200:
        return True
    if response.status_code == 400:
        return False
    raise map_error(response, secrets=[token])


def check_login_host(login_url: str, *, session: requests.Session | None = None) -> None:
    """Fail fast, naming the problem (DNS, refused, timeout, untrusted certificate), when the login
    host does not answer HTTPS. Any HTTP answer will do: only reachability is checked."""
    http = session or requests.Session()
    try:
        http.get(f"{login_url}/services/oauth2/authorize", timeout=HOST_CHECK_TIMEOUT, allow_redirects=False)
    except requests.RequestException as exc:
        raise ConnectRefusedError(f"cannot reach the login host {login_url}: {map_error(exc).message}") from None
    finally:
        if session is None:
            http.close()


def fetch_identity(identity_url: str, access_token: str, *, session: requests.Session | None = None) -> Identity:
    """Ask the identity URL (``/id/{org}/{user}``) who the token belongs to."""
    http = session or requests.Session()
    try:
        response = http.get(
            identity_url,
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
            timeout=OAUTH_TIMEOUT,
        )
        if response.status_code != 200:
            raise map_error(response, secrets=[access_token])
        body = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise map_error(exc, secrets=[access_token]) from None
    finally:
        if session is None:
            http.close()
    return parse_identity(identity_url, body)


def parse_identity(identity_url: str, body: Any) -> Identity:
    """Org and user ids come from the identity response, or failing that from its URL path."""
    from_path = _ID_PATH.search(urlsplit(identity_url).path)
    data = body if isinstance(body, dict) else {}
    org_id = data.get("organization_id") or (from_path.group(1) if from_path else None)
    user_id = data.get("user_id") or (from_path.group(2) if from_path else None)
    if not org_id or not user_id:
        raise SalesforceError("Salesforce's identity response named no organization or user")
    return Identity(org_id=str(org_id), user_id=str(user_id), username=str(data.get("username") or ""))


# --------------------------------------------------------------------------- PKCE + loopback


def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return verifier, challenge


def authorize_url(login_url: str, client_id: str, *, redirect_uri: str, state: str, code_challenge: str) -> str:
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
            "scope": SCOPE,
        }
    )
    return f"{login_url}/services/oauth2/authorize?{query}"


class _CallbackHandler(http.server.BaseHTTPRequestHandler):
    def __init__(self, receiver: CallbackServer, *args: Any) -> None:
        self._receiver = receiver
        super().__init__(*args)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != "/callback":
            self._answer(404, "Not found.")
            return
        accepted = self._receiver.deliver(dict(parse_qsl(parts.query)))
        if not accepted:
            self._answer(409, "This login was already completed. You can close this window.")
        elif "error" in self._receiver.params:
            self._answer(200, "Salesforce did not authorise sf-pipeline. You can close this window.")
        else:
            self._answer(200, "sf-pipeline received the authorisation. You can close this window.")

    def _answer(self, status: int, text: str) -> None:
        body = f"<!doctype html><title>sf-pipeline</title><p>{html.escape(text)}</p>".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # The default logs the request line to stderr, and that line carries the code.
        return


class CallbackServer:
    """A one-shot HTTP server on 127.0.0.1 that receives the OAuth redirect on ``/callback``."""

    def __init__(self, port: int = 0) -> None:
        self.params: dict[str, str] = {}
        self._received = threading.Event()
        self._lock = threading.Lock()
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), partial(_CallbackHandler, self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="oauth-callback", daemon=True)

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/callback"

    def deliver(self, params: dict[str, str]) -> bool:
        with self._lock:
            if self._received.is_set():
                return False
            self.params = params
            self._received.set()
            return True

    def wait(self, timeout: float) -> dict[str, str] | None:
        return self.params if self._received.wait(timeout) else None

    def __enter__(self) -> CallbackServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def open_in_browser(url: str) -> None:
    """Open the consent page; on a machine without a browser, print the URL instead."""
    try:
        opened = webbrowser.open(url)
    except webbrowser.Error:
        opened = False
    if not opened:
        print(f"Open this URL in a browser to authorise sf-pipeline:\n{url}", flush=True)


# --------------------------------------------------------------------------- the two ways in


@dataclass(frozen=True)
class BrowserLogin:
    """The authorization-code flow: the admin signs in and approves in a browser."""

    login_url: str
    client: ClientCredentials
    open_browser: OpenBrowser = open_in_browser
    timeout: float = 300.0
    callback_port: int = 0

    def authorize(self, session: requests.Session | None = None) -> Authorization:
        check_login_host(self.login_url, session=session)
        verifier, challenge = pkce_pair()
        state = secrets.token_urlsafe(32)
        try:
            server = CallbackServer(self.callback_port)
        except OSError as exc:
            raise ConnectError(f"could not listen on 127.0.0.1:{self.callback_port} for the redirect: {exc}") from None
        with server:
            url = authorize_url(
                self.login_url,
                self.client.client_id,
                redirect_uri=server.redirect_uri,
                state=state,
                code_challenge=challenge,
            )
            self.open_browser(url)
            params = server.wait(self.timeout)
        if params is None:
            raise ConnectRefusedError(
                f"timed out after {self.timeout:g}s waiting for Salesforce to redirect back; nothing was stored"
            )
        if not secrets.compare_digest(params.get("state", ""), state):
            raise ConnectError(
                "the OAuth redirect's state does not match this login attempt (possible forgery); nothing was stored"
            )
        if "error" in params:
            raise _consent_error(params)
        code = params.get("code")
        if not code:
            raise ConnectError("Salesforce redirected back without an authorization code; nothing was stored")
        try:
            tokens = exchange_code(
                self.login_url,
                self.client,
                code=code,
                redirect_uri=server.redirect_uri,
                code_verifier=verifier,
                session=session,
            )
        except SalesforceError as exc:
            raise _connect_error("exchange the authorization code", self.login_url, exc) from None
        if not tokens.refresh_token:
            raise ConnectError(
                "Salesforce issued no refresh token: allow the 'refresh_token' scope on the connected app"
            )
        return _finish(self.login_url, self.client, tokens, tokens.refresh_token, session)


@dataclass(frozen=True)
class RefreshTokenImport:
    """For servers and CI: adopt a refresh token obtained elsewhere, after proving it works."""

    login_url: str
    client: ClientCredentials
    refresh_token: str = field(repr=False)

    def authorize(self, session: requests.Session | None = None) -> Authorization:
        try:
            tokens = refresh_grant(self.login_url, self.client, self.refresh_token, session=session)
        except SalesforceError as exc:
            raise _connect_error("validate the refresh token", self.login_url, exc) from None
        return _finish(self.login_url, self.client, tokens, tokens.refresh_token or self.refresh_token, session)


def _finish(
    login_url: str,
    client: ClientCredentials,
    tokens: TokenResponse,
    refresh_token: str,
    session: requests.Session | None,
) -> Authorization:
    if not tokens.identity_url:
        raise ConnectError("Salesforce's token response had no identity URL, so the org is unknown")
    try:
        identity = fetch_identity(tokens.identity_url, tokens.access_token, session=session)
    except SalesforceError as exc:
        raise _connect_error("read the identity URL", login_url, exc) from None
    return Authorization(
        login_url=login_url,
        client=client,
        refresh_token=refresh_token,
        access_token=tokens.access_token,
        instance_url=tokens.instance_url,
        identity_url=tokens.identity_url,
        identity=identity,
    )


def _consent_error(params: Mapping[str, str]) -> ConnectError:
    error = params.get("error", "")
    description = params.get("error_description", "")
    if error == "access_denied":
        return ConnectRefusedError(f"consent denied in Salesforce ({description or error}); nothing was stored")
    return ConnectRefusedError(f"Salesforce refused the authorisation: {error} {description}".strip())


def _connect_error(action: str, login_url: str, exc: SalesforceError) -> ConnectError:
    if exc.status is None:
        return ConnectRefusedError(f"could not reach Salesforce at {login_url} to {action}: {exc.message}")
    reason = f"{exc.error_code}: {exc.detail}" if exc.error_code and exc.detail else exc.error_code or exc.message
    return ConnectRefusedError(f"Salesforce refused to {action} ({reason}); nothing was stored")
