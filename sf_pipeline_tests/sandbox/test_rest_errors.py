"""Every REST error in Salesforce's JSON-list shape, and bad input that must not break the server."""

from __future__ import annotations

import socket
import ssl

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)

from sf_pipeline.sandbox import SandboxHandle
from sf_pipeline_tests.sandbox.conftest import Api


def test_every_response_carries_limit_info_and_json_content_type(api: Api) -> None:
    for response in (
        api.query("SELECT Id FROM Lead"),
        api.query("SELECT Nope FROM Lead"),
        api.get("/nowhere"),
    ):
        assert response.headers["Sforce-Limit-Info"].startswith("api-usage=")
        assert response.headers["Content-Type"] == "application/json;charset=UTF-8"


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELECT Id FROM Lead WHERE", "MALFORMED_QUERY"),
        ("SELECT Id, Nope FROM Lead", "INVALID_FIELD"),
        ("SELECT Id FROM Nope", "INVALID_TYPE"),
        ("SELECT Id FROM Lead WHERE Id = 'x'", "INVALID_QUERY_FILTER_OPERATOR"),
    ],
)
def test_query_errors_are_400_json_lists(api: Api, sf: Salesforce, soql: str, code: str) -> None:
    response = api.query(soql)
    assert response.status_code == 400
    [error] = response.json()
    assert error["errorCode"] == code
    assert error["message"]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query(soql)
    assert caught.value.content[0]["errorCode"] == code


def test_missing_query_string_is_malformed(api: Api) -> None:
    response = api.get("/services/data/v59.0/query")
    assert response.status_code == 400
    assert response.json() == [{"message": "A query string has to be specified", "errorCode": "MALFORMED_QUERY"}]


@pytest.mark.parametrize("authorization", [None, "Bearer nope", "Basic abc", "Bearer"])
def test_missing_or_unknown_token_is_invalid_session_id(sandbox: SandboxHandle, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = sandbox.session().get(sandbox.instance_url + "/services/data/v59.0/limits", headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    assert response.headers["Sforce-Limit-Info"].startswith("api-usage=")


def test_oauth_scheme_is_accepted_like_bearer(sandbox: SandboxHandle, token: str) -> None:
    response = sandbox.session().get(
        sandbox.instance_url + "/services/data/v59.0/limits",
        headers={"Authorization": f"OAuth {token}"},
        timeout=10,
    )
    assert response.status_code == 200


def test_direct_mode_simple_salesforce_sees_expired_session(sandbox: SandboxHandle, sf: Salesforce) -> None:
    sandbox.org.expire_sessions()
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT Id FROM Lead")


def test_unknown_paths_and_objects_are_not_found(api: Api, sf: Salesforce) -> None:
    for path in ("/services/data/v59.0/nope", "/services/data/v59.0/sobjects/Nope/describe", "/%00%ff", "/"):
        response = api.get(path)
        assert response.status_code == 404
        assert response.json() == [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]
    with pytest.raises(SalesforceResourceNotFound):
        sf.restful("sobjects/Nope/describe")


def test_wrong_method_is_method_not_allowed(api: Api) -> None:
    response = api.session.post(api.base + "/services/data/v59.0/query", data=b"{}", timeout=10)
    assert response.status_code == 405
    assert response.json()[0]["errorCode"] == "METHOD_NOT_ALLOWED"


def _raw(sandbox: SandboxHandle, payload: bytes, *, read_timeout: float = 10.0) -> bytes:
    """Send raw bytes over TLS and return whatever the server answers before closing."""
    assert sandbox.ca_bundle
    context = ssl.create_default_context(cafile=sandbox.ca_bundle)
    with (
        socket.create_connection(("127.0.0.1", sandbox.server.port), timeout=read_timeout) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as conn,
    ):
        conn.sendall(payload)
        chunks = []
        try:
            while chunk := conn.recv(65536):
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks) and b"Connection: close" not in b"".join(chunks):
                    break
        except (TimeoutError, ssl.SSLError, ConnectionResetError):
            pass
        return b"".join(chunks)


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        (b"GARBAGE\r\n\r\n", b"400"),
        (b"BREW /coffee HTTP/1.1\r\nHost: x\r\n\r\n", b"501"),
        (b"GET /services/data/v59.0/query HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n", b"400"),
        (b"POST /services/oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n", b"413"),
        (
            b"POST /services/oauth2/token HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"411",
        ),
        (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", b"414"),
    ],
)
def test_bad_requests_get_json_errors(sandbox: SandboxHandle, payload: bytes, status: bytes) -> None:
    answer = _raw(sandbox, payload)
    assert answer.startswith(b"HTTP/1.1 " + status)
    assert b'"errorCode"' in answer
    assert sandbox.control.state()["records"]["Lead"] == 0  # still serving


def test_truncated_body_is_answered_after_a_short_wait_and_the_server_keeps_serving(
    sandbox: SandboxHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sf_pipeline.sandbox.server.BODY_TIMEOUT", 0.3)
    answer = _raw(sandbox, b"POST /services/oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort")
    assert answer.startswith(b"HTTP/1.1 400")
    assert b"shorter than its Content-Length" in answer
    assert sandbox.control.state()["records"]["Lead"] == 0


def test_bad_control_bodies_are_json_errors(sandbox: SandboxHandle) -> None:
    session = sandbox.session()
    session.headers["X-Sandbox-Secret"] = sandbox.client_secret
    url = sandbox.instance_url + "/__sandbox__/records/Lead"
    assert session.post(url, data=b"{not json", timeout=10).json()[0]["errorCode"] == "JSON_PARSER_ERROR"
    assert session.post(url, json=[1, 2], timeout=10).json()[0]["errorCode"] == "INVALID_CONTROL_REQUEST"
    assert session.post(url, json={"records": [{"Nope": 1}]}, timeout=10).status_code == 404
    assert session.post(url, json={"records": [{"NumberOfEmployees": "x"}]}, timeout=10).status_code == 400
    assert session.post(url, data="\udcff".encode("utf-8", "surrogatepass"), timeout=10).status_code == 400


def test_oauth_garbage_is_an_oauth_error(sandbox: SandboxHandle) -> None:
    response = sandbox.session().post(sandbox.login_url + "/services/oauth2/token", data=b"\xff\xfe%%%", timeout=10)
    assert response.status_code == 400
    assert "error" in response.json()


def test_keep_alive_serves_many_requests_on_one_connection(api: Api) -> None:
    for _ in range(20):
        assert api.get("/services/data/v59.0/limits").status_code == 200
    pools = api.session.get_adapter(api.base).poolmanager.pools
    [key] = pools.keys()
    assert pools[key].num_connections == 1
