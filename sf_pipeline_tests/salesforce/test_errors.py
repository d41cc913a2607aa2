"""``map_error``: what simple-salesforce, requests and OAuth endpoints report, classified into one
tree, with messages that never carry a credential. Client-level behaviour (retries, refresh) is
tested against the sandbox in ``test_client.py``; this file pins the classification table."""

from __future__ import annotations

import json

import pytest
import requests
from simple_salesforce import exceptions as sf

from sf_pipeline.salesforce.errors import (
    ApiLimitError,
    AuthenticationError,
    CredentialsRevokedError,
    NotFoundError,
    QueryError,
    SalesforceError,
    TransientError,
    map_error,
    scrub,
)

QUERY_URL = "https://acme.my.salesforce.com/services/data/v59.0/query/?q=SELECT+Id+FROM+Lead"
TOKEN = "00D5g000004XXXXEAA!AQ0AQHmm.secret_token_value"


def _rest(cls: type[sf.SalesforceError], status: int, code: str, message: str) -> sf.SalesforceError:
    return cls(QUERY_URL, status, "query", [{"errorCode": code, "message": message}])  # type: ignore[arg-type]


def _oauth_response(status: int, error: str, description: str) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.url = "https://login.salesforce.com/services/oauth2/token"
    response._content = json.dumps({"error": error, "error_description": description}).encode()
    return response


def test_invalid_field_is_a_query_error_naming_the_field() -> None:
    error = map_error(
        _rest(
            sf.SalesforceMalformedRequest,
            400,
            "INVALID_FIELD",
            "\nSELECT Id, Foo FROM Lead\n           ^\nERROR at Row:1:Column:12\n"
            "No such column 'Foo' on entity 'Lead'. If you are attempting to use a custom field, ...",
        )
    )
    assert isinstance(error, QueryError)
    assert error.field == "Foo"
    assert (error.status, error.error_code) == (400, "INVALID_FIELD")


@pytest.mark.parametrize("code", ["MALFORMED_QUERY", "INVALID_TYPE"])
def test_malformed_query_and_unknown_object_are_query_errors(code: str) -> None:
    error = map_error(_rest(sf.SalesforceMalformedRequest, 400, code, "unexpected token: 'OR'"))
    assert isinstance(error, QueryError)
    assert error.field is None


def test_url_on_the_error_has_no_query_string() -> None:
    error = map_error(_rest(sf.SalesforceMalformedRequest, 400, "MALFORMED_QUERY", "bad"))
    assert error.url == "https://acme.my.salesforce.com/services/data/v59.0/query/"
    assert "SELECT" not in str(error)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (_rest(sf.SalesforceMalformedRequest, 400, "QUERY_TIMEOUT", "running for too long"), TransientError),
        (_rest(sf.SalesforceGeneralError, 503, "SERVER_UNAVAILABLE", "down"), TransientError),
        (_rest(sf.SalesforceGeneralError, 500, "UNKNOWN_EXCEPTION", "oops"), TransientError),
        (sf.SalesforceGeneralError(QUERY_URL, 502, "query", b"<html>Bad gateway</html>"), TransientError),
        (
            _rest(sf.SalesforceExpiredSession, 401, "INVALID_SESSION_ID", "Session expired"),
            AuthenticationError,
        ),
        (
            _rest(sf.SalesforceRefusedRequest, 403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit"),
            ApiLimitError,
        ),
        (_rest(sf.SalesforceResourceNotFound, 404, "NOT_FOUND", "does not exist"), NotFoundError),
        (requests.ConnectionError("Connection reset by peer"), TransientError),
        (requests.ReadTimeout("read timed out"), TransientError),
        (requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead"), TransientError),
    ],
)
def test_errors_are_classified(exc: BaseException, expected: type[SalesforceError]) -> None:
    assert type(map_error(exc)) is expected


def test_concurrent_request_limit_is_transient_not_quota() -> None:
    error = map_error(
        _rest(
            sf.SalesforceRefusedRequest,
            403,
            "REQUEST_LIMIT_EXCEEDED",
            "ConcurrentPerOrgLongTxn Limit exceeded.",
        )
    )
    assert isinstance(error, TransientError)


def test_invalid_grant_means_revoked_credentials_and_advises_reconnect() -> None:
    error = map_error(_oauth_response(400, "invalid_grant", "expired access/refresh token"), integration="acme")
    assert isinstance(error, CredentialsRevokedError)
    assert isinstance(error, AuthenticationError)
    assert "sf-pipeline integration reconnect acme" in str(error)
    assert error.detail == "expired access/refresh token"


def test_wrong_client_secret_is_an_authentication_error() -> None:
    error = map_error(_oauth_response(400, "invalid_client", "invalid client credentials"))
    assert type(error) is AuthenticationError


def test_messages_never_contain_tokens_or_secrets() -> None:
    leaky = requests.ConnectionError(
        f"failed: Authorization: Bearer {TOKEN} refresh_token=5Aep861.rotated client_secret=s3cr3t"
    )
    error = map_error(leaky, secrets=["s3cr3t"])
    text = str(error)
    assert TOKEN not in text
    assert "5Aep861.rotated" not in text
    assert "s3cr3t" not in text
    assert isinstance(error, TransientError)


def test_oauth_error_echoing_a_secret_is_scrubbed() -> None:
    response = _oauth_response(400, "invalid_grant", "bad token 5Aep861.my-refresh-token for app")
    error = map_error(response, secrets=["5Aep861.my-refresh-token"])
    assert "5Aep861.my-refresh-token" not in str(error)
    assert "5Aep861.my-refresh-token" not in (error.detail or "")


def test_scrub_leaves_salesforce_error_codes_readable() -> None:
    text = "INVALID_SESSION_ID: Session expired or invalid"
    assert scrub(text) == text


def test_scrub_masks_a_secret_with_stars_and_keeps_the_words_around_it() -> None:
    text = ("HTTPSConnectionPool(host='nosuch-org.my.salesforce.com', port=443): Max retries exceeded "
            "(Caused by NameResolutionError) while sending refresh_token=5Aep861.abcdefgh for client s3cr3t-value-xy")
    scrubbed = scrub(text, secrets=["s3cr3t-value-xy", "y"])  # a one-letter "secret" must not cut words
    assert "nosuch-org.my.salesforce.com" in scrubbed and "Caused by NameResolutionError" in scrubbed
    assert "refresh_token=*** for client ***" in scrubbed
    assert "5Aep861" not in scrubbed and "s3cr3t" not in scrubbed


def _transport(exc_type: type[requests.RequestException], message: str) -> requests.RequestException:
    request = requests.Request("GET", "https://acme.my.salesforce.com/services/oauth2/token?x=1").prepare()
    return exc_type(message, request=request)


@pytest.mark.parametrize(
    ("exc_type", "message", "says"),
    [
        (requests.exceptions.ConnectionError,
         "Failed to resolve 'acme.my.salesforce.com' ([Errno -2] Name or service not known)", "cannot resolve"),
        (requests.exceptions.ConnectionError, "[Errno 111] Connection refused", "refused the connection"),
        (requests.exceptions.ConnectTimeout, "timed out", "did not answer"),
    ],
)
def test_dns_refused_and_connect_timeouts_are_network_problems_naming_the_host(
    exc_type: type[requests.RequestException], message: str, says: str
) -> None:
    from sf_pipeline.salesforce.errors import NetworkError, is_local

    error = map_error(_transport(exc_type, message))
    assert isinstance(error, NetworkError) and isinstance(error, TransientError) and is_local(error)
    assert says in error.message and "acme.my.salesforce.com" in error.message


def test_an_untrusted_certificate_is_a_trust_problem_not_credentials() -> None:
    from sf_pipeline.salesforce.errors import TrustError, is_local

    error = map_error(_transport(requests.exceptions.SSLError,
                                 "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"))
    assert isinstance(error, TrustError) and is_local(error)
    assert not isinstance(error, (AuthenticationError, TransientError))
    assert "not trusted" in error.message and "REQUESTS_CA_BUNDLE" in error.message
