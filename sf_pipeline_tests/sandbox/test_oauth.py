"""OAuth 2.0 against the sandbox: authorization code with PKCE, refresh, password, identity, revoke."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from simple_salesforce import Salesforce

from sf_pipeline.sandbox import Org, SandboxHandle

REDIRECT = "http://localhost:8765/oauth/callback"


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize(sandbox: SandboxHandle, **overrides: str) -> requests.Response:
    params = {
        "response_type": "code",
        "client_id": sandbox.client_id,
        "redirect_uri": REDIRECT,
        "state": "st-123",
        "scope": "api refresh_token id",
    }
    params.update(overrides)
    return sandbox.session().get(
        sandbox.login_url + "/services/oauth2/authorize", params=params, allow_redirects=False, timeout=10
    )


def redirected_query(response: requests.Response) -> dict[str, str]:
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def token(sandbox: SandboxHandle, **form: str) -> requests.Response:
    return sandbox.session().post(sandbox.login_url + "/services/oauth2/token", data=form, timeout=10)


def exchange(sandbox: SandboxHandle, code: str, verifier: str | None, **extra: str) -> requests.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
        "redirect_uri": REDIRECT,
        **extra,
    }
    if verifier is not None:
        form["code_verifier"] = verifier
    return token(sandbox, **form)


def code_for(sandbox: SandboxHandle) -> tuple[str, str]:
    verifier, challenge = _pkce()
    query = redirected_query(authorize(sandbox, code_challenge=challenge, code_challenge_method="S256"))
    return query["code"], verifier


def test_authorization_code_flow_with_pkce_and_state(sandbox: SandboxHandle) -> None:
    verifier, challenge = _pkce()
    query = redirected_query(authorize(sandbox, code_challenge=challenge, code_challenge_method="S256"))
    assert query["state"] == "st-123"
    response = exchange(sandbox, query["code"], verifier)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "access_token",
        "refresh_token",
        "signature",
        "scope",
        "instance_url",
        "id",
        "token_type",
        "issued_at",
    }
    assert body["instance_url"] == sandbox.instance_url
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "api refresh_token id"
    assert body["issued_at"].isdigit() and len(body["issued_at"]) == 13
    assert body["id"] == f"{sandbox.login_url}/id/{sandbox.org.org_id}/{sandbox.org.auth.user.user_id}"
    expected = hmac.new(
        sandbox.client_secret.encode(), (body["id"] + body["issued_at"]).encode(), hashlib.sha256
    ).digest()
    assert base64.b64decode(body["signature"]) == expected
    assert body["access_token"].startswith(sandbox.org.org_id[:15] + "!")


def test_tokens_from_the_code_flow_work_with_simple_salesforce(sandbox: SandboxHandle) -> None:
    code, verifier = code_for(sandbox)
    body = exchange(sandbox, code, verifier).json()
    sf = Salesforce(instance_url=body["instance_url"], session_id=body["access_token"], session=requests.Session())
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == 0


@pytest.mark.parametrize(
    ("tamper", "error", "description"),
    [
        ({"code_verifier": "wrong-verifier"}, "invalid_grant", "invalid code verifier"),
        ({"code_verifier": ""}, "invalid_grant", "invalid code verifier"),
        (
            {"redirect_uri": "http://localhost:9999/other"},
            "redirect_uri_mismatch",
            "redirect_uri must match configuration",
        ),
        ({"client_secret": "nope"}, "invalid_client", "invalid client credentials"),
        ({"client_id": "nope"}, "invalid_client_id", "client identifier invalid"),
        ({"code": "forged"}, "invalid_grant", "invalid authorization code"),
    ],
)
def test_code_exchange_errors(sandbox: SandboxHandle, tamper: dict[str, str], error: str, description: str) -> None:
    code, verifier = code_for(sandbox)
    form: dict[str, Any] = {"code_verifier": verifier, **tamper}
    response = exchange(sandbox, tamper.get("code", code), None, **{k: v for k, v in form.items() if k != "code"})
    assert response.status_code == 400
    assert response.json() == {"error": error, "error_description": description}


def test_authorization_code_is_single_use(sandbox: SandboxHandle) -> None:
    code, verifier = code_for(sandbox)
    assert exchange(sandbox, code, verifier).status_code == 200
    again = exchange(sandbox, code, verifier)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_authorization_code_expires_after_fifteen_minutes_of_org_clock(org: Org, sandbox: SandboxHandle) -> None:
    code, verifier = code_for(sandbox)
    org.clock.advance(15 * 60 + 1)
    response = exchange(sandbox, code, verifier)
    assert response.json() == {"error": "invalid_grant", "error_description": "expired authorization code"}


def test_consent_denial_redirects_with_access_denied_and_state(org: Org, sandbox: SandboxHandle) -> None:
    org.set_options(deny_consent=True)
    query = redirected_query(authorize(sandbox))
    assert query == {
        "error": "access_denied",
        "error_description": "end-user denied authorization",
        "state": "st-123",
    }


def test_authorize_rejects_unknown_clients_and_unregistered_redirects_without_redirecting(
    org: Org, sandbox: SandboxHandle
) -> None:
    unknown = authorize(sandbox, client_id="someone-else")
    assert unknown.status_code == 400
    assert unknown.json()["error"] == "invalid_client_id"
    org.set_options(callback_urls=["https://app.example/callback"])
    mismatch = authorize(sandbox)
    assert mismatch.status_code == 400
    assert mismatch.json()["error"] == "redirect_uri_mismatch"


def test_authorize_with_another_response_type_redirects_an_error(sandbox: SandboxHandle) -> None:
    assert redirected_query(authorize(sandbox, response_type="token"))["error"] == "unsupported_response_type"


def _refresh(sandbox: SandboxHandle, refresh_token: str) -> requests.Response:
    return token(
        sandbox,
        grant_type="refresh_token",
        refresh_token=refresh_token,
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
    )


def test_refresh_grant_returns_a_new_access_token_without_rotating(sandbox: SandboxHandle, api_check: Any) -> None:
    refresh_token = sandbox.issue_refresh_token()
    body = _refresh(sandbox, refresh_token).json()
    assert "refresh_token" not in body
    assert body["instance_url"] == sandbox.instance_url
    api_check(body["access_token"])
    assert _refresh(sandbox, refresh_token).status_code == 200


def test_refresh_token_rotation_returns_a_new_token_and_invalidates_the_old(org: Org, sandbox: SandboxHandle) -> None:
    org.set_options(refresh_token_rotation=True)
    old = sandbox.issue_refresh_token()
    body = _refresh(sandbox, old).json()
    assert body["refresh_token"] != old
    stale = _refresh(sandbox, old)
    assert stale.status_code == 400
    assert stale.json() == {"error": "invalid_grant", "error_description": "expired access/refresh token"}
    assert _refresh(sandbox, body["refresh_token"]).status_code == 200


def test_refresh_with_basic_client_authentication(sandbox: SandboxHandle) -> None:
    refresh_token = sandbox.issue_refresh_token()
    response = sandbox.session().post(
        sandbox.login_url + "/services/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(sandbox.client_id, sandbox.client_secret),
        timeout=10,
    )
    assert response.status_code == 200


def test_revoked_refresh_token_is_invalid_grant_and_its_access_tokens_die(
    sandbox: SandboxHandle, api_check: Any
) -> None:
    tokens = sandbox.issue_tokens()
    revoke = sandbox.session().post(
        sandbox.login_url + "/services/oauth2/revoke", data={"token": tokens["refresh_token"]}, timeout=10
    )
    assert revoke.status_code == 200
    assert _refresh(sandbox, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    api_check(tokens["access_token"], status=401)


def test_revoking_an_access_token_keeps_the_refresh_token(sandbox: SandboxHandle, api_check: Any) -> None:
    tokens = sandbox.issue_tokens()
    sandbox.session().post(
        sandbox.login_url + "/services/oauth2/revoke", data={"token": tokens["access_token"]}, timeout=10
    )
    api_check(tokens["access_token"], status=401)
    assert _refresh(sandbox, tokens["refresh_token"]).status_code == 200


def test_revoking_an_unknown_token_is_an_oauth_error(sandbox: SandboxHandle) -> None:
    response = sandbox.session().post(sandbox.login_url + "/services/oauth2/revoke", data={"token": "x"}, timeout=10)
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_token_type"


def test_revoke_all_tokens_from_the_control_api(sandbox: SandboxHandle, api_check: Any) -> None:
    tokens = sandbox.issue_tokens()
    sandbox.control.revoke_all_tokens()
    api_check(tokens["access_token"], status=401)
    assert _refresh(sandbox, tokens["refresh_token"]).json()["error"] == "invalid_grant"


def test_password_grant_issues_an_access_token_only(sandbox: SandboxHandle) -> None:
    response = token(
        sandbox,
        grant_type="password",
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
        username=sandbox.username,
        password=sandbox.password,
    )
    assert response.status_code == 200
    assert "refresh_token" not in response.json()


@pytest.mark.parametrize(
    ("form", "error", "description"),
    [
        ({"password": "wrong"}, "invalid_grant", "authentication failure"),
        ({"username": "someone@else.test"}, "invalid_grant", "authentication failure"),
        ({"client_secret": "wrong"}, "invalid_client", "invalid client credentials"),
        ({"client_id": "wrong"}, "invalid_client_id", "client identifier invalid"),
        ({"grant_type": "client_credentials"}, "unsupported_grant_type", "grant type not supported"),
        ({"grant_type": ""}, "unsupported_grant_type", "grant type not supported"),
    ],
)
def test_password_grant_errors(sandbox: SandboxHandle, form: dict[str, str], error: str, description: str) -> None:
    base = {
        "grant_type": "password",
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
        "username": sandbox.username,
        "password": sandbox.password,
    }
    response = token(sandbox, **{**base, **form})
    assert response.status_code == 400
    assert response.json() == {"error": error, "error_description": description}


def test_simple_salesforce_oauth_password_login_through_a_login_session(sandbox: SandboxHandle) -> None:
    sf = Salesforce(
        username=sandbox.username,
        password=sandbox.password,
        consumer_key=sandbox.client_id,
        consumer_secret=sandbox.client_secret,
        session=sandbox.login_session(),
    )
    assert sf.sf_instance == sandbox.instance_url.removeprefix("https://")
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == 0


def test_token_endpoint_requires_post(sandbox: SandboxHandle) -> None:
    response = sandbox.session().get(sandbox.login_url + "/services/oauth2/token", timeout=10)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request", "error_description": "must use HTTP POST"}


def test_identity_url_describes_the_user(sandbox: SandboxHandle) -> None:
    tokens = sandbox.issue_tokens()
    session = sandbox.session()
    response = session.get(tokens["id"], headers={"Authorization": f"Bearer {tokens['access_token']}"}, timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["organization_id"] == sandbox.org.org_id
    assert body["user_id"] == sandbox.org.auth.user.user_id
    assert body["username"] == sandbox.username
    assert body["display_name"] == "Integration User"
    assert body["email"]
    assert body["urls"]["rest"] == f"{sandbox.instance_url}/services/data/v{{version}}/"
    assert body["id"] == tokens["id"]


def test_identity_url_with_a_bad_token_is_a_bare_403(sandbox: SandboxHandle) -> None:
    tokens = sandbox.issue_tokens()
    response = sandbox.session().get(tokens["id"], headers={"Authorization": "Bearer nope"}, timeout=10)
    assert response.status_code == 403
    assert response.text == "Bad_OAuth_Token"


@pytest.fixture
def api_check(sandbox: SandboxHandle) -> Any:
    def check(access_token: str, status: int = 200) -> None:
        response = sandbox.session().get(
            sandbox.instance_url + "/services/data/v59.0/limits",
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=10,
        )
        assert response.status_code == status

    return check
