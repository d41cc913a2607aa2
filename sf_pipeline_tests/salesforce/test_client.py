"""``SalesforceClient`` against the sandbox org over real HTTPS: paging, metadata, and how it
survives expired sessions, flaky networks and refusals. Every test uses the real client and
simple-salesforce underneath; faults are injected in the org, not mocked in the client."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from sf_pipeline.salesforce.client import QueryPage, SalesforceClient
from sf_pipeline.salesforce.errors import (
    ApiLimitError,
    AuthenticationError,
    CredentialsRevokedError,
    NotFoundError,
    QueryError,
    SalesforceError,
    TransientError,
)
from sf_pipeline.salesforce.tokens import StaticRefreshTokenSource
from sf_pipeline.sandbox.testing import SandboxHandle
from sf_pipeline_tests.salesforce.conftest import LEADS, FakeSleep

LEAD_SOQL = "SELECT Id, Email, LastModifiedDate FROM Lead ORDER BY Id"

MakeClient = Callable[..., SalesforceClient]


def _ids(pages: list[QueryPage]) -> list[str]:
    return [record["Id"] for page in pages for record in page.records]


# ------------------------------------------------------------------------------------- paging


@pytest.mark.parametrize("batch_size", [200, 500, 2000])
def test_query_pages_yield_every_record_once_in_order(
    client: SalesforceClient, sandbox: SandboxHandle, batch_size: int
) -> None:
    pages = list(client.query_pages(LEAD_SOQL, batch_size=batch_size))

    expected = sorted(r["Id"] for r in sandbox.org.records("Lead"))
    assert _ids(pages) == expected
    assert [len(p.records) for p in pages[:-1]] == [batch_size] * (len(pages) - 1)
    assert 0 < len(pages[-1].records) <= batch_size
    assert all(p.total_size == LEADS for p in pages)
    assert [p.done for p in pages] == [False] * (len(pages) - 1) + [True]
    assert client.api_calls == len(pages)


def test_query_pages_are_lazy(client: SalesforceClient) -> None:
    pages = client.query_pages(LEAD_SOQL, batch_size=200)
    assert client.api_calls == 0
    next(pages)
    assert client.api_calls == 1


def test_include_deleted_also_returns_soft_deleted_records(client: SalesforceClient, sandbox: SandboxHandle) -> None:
    gone = sorted(r["Id"] for r in sandbox.org.records("Lead"))[:25]
    sandbox.org.delete("Lead", gone)
    soql = "SELECT Id, IsDeleted FROM Lead ORDER BY Id"

    live = [r for p in client.query_pages(soql) for r in p.records]
    everything = [r for p in client.query_pages(soql, include_deleted=True) for r in p.records]

    assert len(live) == LEADS - 25
    assert not {r["Id"] for r in live} & set(gone)
    assert len(everything) == LEADS
    assert sorted(r["Id"] for r in everything if r["IsDeleted"]) == gone


def test_empty_result_is_one_done_page(client: SalesforceClient) -> None:
    pages = list(client.query_pages("SELECT Id FROM Lead WHERE Email = 'nobody@nowhere.invalid'"))
    assert pages == [QueryPage(records=[], total_size=0, done=True)]


def test_count_returns_the_number_of_matching_records(client: SalesforceClient, sandbox: SandboxHandle) -> None:
    with_email = sum(1 for r in sandbox.org.records("Lead") if r.get("Email"))
    assert client.count("SELECT COUNT() FROM Lead") == LEADS
    assert client.count("SELECT COUNT() FROM Lead WHERE Email != null") == with_email


def test_batch_size_outside_salesforce_bounds_is_refused(client: SalesforceClient) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        next(client.query_pages(LEAD_SOQL, batch_size=2001))


# ------------------------------------------------------------------------------------- metadata


def test_describe_returns_typed_fields_and_is_fetched_once(client: SalesforceClient) -> None:
    lead = client.describe("Lead")
    assert lead.name == "Lead"
    email = lead.field("email")
    assert email is not None and email.type == "email"
    assert lead.field("LastModifiedDate") is not None

    assert client.describe("Lead") is lead
    assert client.describe("lead") is lead
    assert client.api_calls == 1


def test_describe_of_an_unknown_object_raises_not_found(client: SalesforceClient, sleep: FakeSleep) -> None:
    with pytest.raises(NotFoundError):
        client.describe("NoSuchObject__c")
    assert sleep.delays == []


def test_limits_report_the_daily_api_quota(client: SalesforceClient, sandbox: SandboxHandle) -> None:
    sandbox.org.set_api_quota(max=15000, used=100)
    limits = client.limits()
    assert limits.max == 15000
    assert limits.remaining == 15000 - 101  # the limits call itself counts
    assert limits.remaining_fraction == pytest.approx(limits.remaining / 15000)


def test_api_usage_comes_from_the_last_response_header(client: SalesforceClient, sandbox: SandboxHandle) -> None:
    assert client.api_usage is None
    sandbox.org.set_api_quota(max=5000, used=41)
    client.count("SELECT COUNT() FROM Lead")
    assert client.api_usage is not None
    assert (client.api_usage.used, client.api_usage.max) == (42, 5000)


def test_identity_names_the_org_and_user(client: SalesforceClient, sandbox: SandboxHandle) -> None:
    identity = client.identity()
    assert identity.org_id == sandbox.org.org_id
    assert identity.user_id == sandbox.org.auth.user.user_id
    assert identity.username == sandbox.username


# ------------------------------------------------------------------------------------- sessions


def test_session_expiring_mid_query_is_refreshed_without_losing_or_repeating_records(
    make_client: MakeClient, sandbox: SandboxHandle
) -> None:
    uninterrupted = list(make_client().query_pages(LEAD_SOQL, batch_size=200))

    client = make_client()
    pages = client.query_pages(LEAD_SOQL, batch_size=200)
    fetched = [next(pages), next(pages)]
    sandbox.org.expire_sessions(after_requests=1)  # the next page's request is the last one served
    fetched.extend(pages)

    assert fetched == uninterrupted
    assert len(_ids(fetched)) == len(set(_ids(fetched))) == LEADS
    assert client.token_refreshes == 1
    # The refused request is counted, and so is its repeat.
    assert client.api_calls == len(uninterrupted) + 1


def test_session_expired_before_a_query_starts_is_refreshed(client: SalesforceClient, sandbox: SandboxHandle) -> None:
    client.count("SELECT COUNT() FROM Lead")
    sandbox.org.expire_sessions()
    assert len(_ids(list(client.query_pages(LEAD_SOQL)))) == LEADS
    assert client.describe("Contact").name == "Contact"
    assert client.limits().max > 0
    assert client.token_refreshes == 1


def test_identity_with_an_expired_session_is_refreshed(client: SalesforceClient, sandbox: SandboxHandle) -> None:
    client.identity()
    sandbox.org.expire_sessions()
    assert client.identity().org_id == sandbox.org.org_id
    assert client.token_refreshes == 1


def test_clients_sharing_a_token_source_refresh_once(tokens: StaticRefreshTokenSource, sandbox: SandboxHandle) -> None:
    clients = [SalesforceClient(tokens) for _ in range(4)]
    for c in clients:
        c.count("SELECT COUNT() FROM Lead")
    before = tokens.refreshes
    sandbox.org.expire_sessions()
    barrier = threading.Barrier(len(clients))
    counts: list[int] = []

    def work(c: SalesforceClient) -> None:
        barrier.wait()
        counts.append(c.count("SELECT COUNT() FROM Lead"))

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert counts == [LEADS] * len(clients)
    assert tokens.refreshes == before + 1


def test_rotated_refresh_token_is_kept_by_the_static_source(
    client: SalesforceClient, tokens: StaticRefreshTokenSource, sandbox: SandboxHandle
) -> None:
    sandbox.org.set_options(refresh_token_rotation=True)
    client.count("SELECT COUNT() FROM Lead")
    original = tokens.refresh_token
    sandbox.org.expire_sessions()

    assert client.count("SELECT COUNT() FROM Lead") == LEADS
    assert tokens.refresh_token != original
    sandbox.org.expire_sessions()
    assert client.count("SELECT COUNT() FROM Lead") == LEADS  # the rotated token works


def test_revoked_refresh_token_raises_credentials_revoked(
    client: SalesforceClient, tokens: StaticRefreshTokenSource, sandbox: SandboxHandle, sleep: FakeSleep
) -> None:
    client.count("SELECT COUNT() FROM Lead")
    sandbox.org.revoke_all_tokens()

    with pytest.raises(CredentialsRevokedError) as raised:
        client.count("SELECT COUNT() FROM Lead")

    assert raised.value.error_code == "invalid_grant"
    assert "reconnect" in str(raised.value)
    assert tokens.refresh_token not in str(raised.value)
    assert sleep.delays == []


def test_session_rejected_even_after_refresh_raises_authentication_error(
    client: SalesforceClient, sandbox: SandboxHandle
) -> None:
    sandbox.org.set_options(session_timeout_seconds=0)  # every token is stale by its first use
    with pytest.raises(AuthenticationError) as raised:
        client.count("SELECT COUNT() FROM Lead")
    assert not isinstance(raised.value, CredentialsRevokedError)
    assert raised.value.status == 401
    assert client.token_refreshes == 3  # then it gives up instead of looping


# ------------------------------------------------------------------------------------- retries


@pytest.mark.parametrize(
    ("kind", "status"),
    [("status", 500), ("status", 503), ("drop", 500), ("query_timeout", 500)],
    ids=["500", "503", "dropped-connection", "QUERY_TIMEOUT"],
)
def test_transient_failures_mid_query_are_retried_from_the_same_page(
    make_client: MakeClient, sandbox: SandboxHandle, sleep: FakeSleep, kind: str, status: int
) -> None:
    uninterrupted = list(make_client().query_pages(LEAD_SOQL, batch_size=200))
    sandbox.org.inject_fault("query_more", kind, count=2, status=status)

    client = make_client()
    pages = list(client.query_pages(LEAD_SOQL, batch_size=200))

    assert pages == uninterrupted
    assert len(sleep.delays) == 2
    assert client.retries == 2
    assert client.api_calls == len(uninterrupted) + 2


def test_transient_failure_of_the_first_request_is_retried(
    client: SalesforceClient, sandbox: SandboxHandle, sleep: FakeSleep
) -> None:
    client.count("SELECT COUNT() FROM Lead")
    sandbox.org.inject_fault("describe", "status", status=503)
    assert client.describe("Lead").name == "Lead"
    assert len(sleep.delays) == 1


def test_persistent_failure_raises_transient_error_after_max_attempts(
    make_client: MakeClient, sandbox: SandboxHandle, sleep: FakeSleep
) -> None:
    client = make_client(max_attempts=3)
    client.count("SELECT COUNT() FROM Lead")
    sandbox.org.inject_fault("query", "status", count=10, status=503)

    with pytest.raises(TransientError) as raised:
        client.count("SELECT COUNT() FROM Lead")

    assert raised.value.status == 503
    assert len(sleep.delays) == 2
    assert client.api_calls == 1 + 3


def test_backoff_is_exponential_with_jitter_and_capped(
    make_client: MakeClient, sandbox: SandboxHandle, sleep: FakeSleep
) -> None:
    client = make_client(max_attempts=7, base_delay=0.5, max_delay=4.0)
    client.count("SELECT COUNT() FROM Lead")
    sandbox.org.inject_fault("query", "status", count=10, status=500)

    with pytest.raises(TransientError):
        client.count("SELECT COUNT() FROM Lead")

    caps = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert len(sleep.delays) == len(caps)
    for delay, cap in zip(sleep.delays, caps, strict=True):
        assert cap / 2 <= delay <= cap


def test_transient_failure_of_the_token_endpoint_is_retried(
    client: SalesforceClient, sandbox: SandboxHandle, sleep: FakeSleep
) -> None:
    client.count("SELECT COUNT() FROM Lead")
    sandbox.org.expire_sessions()
    sandbox.org.inject_fault("token", "status", status=503)

    assert client.count("SELECT COUNT() FROM Lead") == LEADS
    assert len(sleep.delays) == 1
    assert client.token_refreshes == 2


def test_transient_failure_fetching_the_first_token_is_retried(sandbox: SandboxHandle, sleep: FakeSleep) -> None:
    tokens = StaticRefreshTokenSource(
        sandbox.login_url, sandbox.client_id, sandbox.client_secret, sandbox.issue_refresh_token()
    )
    sandbox.org.inject_fault("token", "drop")
    with SalesforceClient(tokens, sleep=sleep) as client:
        assert client.count("SELECT COUNT() FROM Lead") == LEADS
        assert client.api_calls == 1  # the failed token request never reached the instance
    assert len(sleep.delays) == 1


# ------------------------------------------------------------------------------------- refusals


def test_exhausted_quota_raises_api_limit_error_without_retrying(
    client: SalesforceClient, sandbox: SandboxHandle, sleep: FakeSleep
) -> None:
    sandbox.org.set_api_quota(max=100, used=100)
    with pytest.raises(ApiLimitError) as raised:
        client.count("SELECT COUNT() FROM Lead")
    assert raised.value.error_code == "REQUEST_LIMIT_EXCEEDED"
    assert raised.value.status == 403
    assert sleep.delays == []
    assert client.api_calls == 1


def test_unknown_field_raises_query_error_naming_it_without_retrying(
    client: SalesforceClient, sleep: FakeSleep
) -> None:
    with pytest.raises(QueryError) as raised:
        next(client.query_pages("SELECT Id, Favourite_Colour__c FROM Lead"))
    assert raised.value.error_code == "INVALID_FIELD"
    assert raised.value.field == "Favourite_Colour__c"
    assert sleep.delays == []


@pytest.mark.parametrize(
    ("soql", "code"),
    [("SELECT Id FROM Lead WHERE", "MALFORMED_QUERY"), ("SELECT Id FROM Leed", "INVALID_TYPE")],
)
def test_bad_queries_raise_query_error(client: SalesforceClient, soql: str, code: str) -> None:
    with pytest.raises(QueryError) as raised:
        client.count(soql)
    assert raised.value.error_code == code


def test_error_messages_never_contain_tokens_or_the_client_secret(
    make_client: MakeClient, tokens: StaticRefreshTokenSource, sandbox: SandboxHandle
) -> None:
    errors: list[SalesforceError] = []

    def dropped(c: SalesforceClient) -> object:
        sandbox.org.inject_fault("query", "drop")
        return c.count("SELECT COUNT() FROM Lead")

    scenarios: list[Callable[[SalesforceClient], object]] = [
        lambda c: c.count("SELECT Id FROM Leed"),
        lambda c: c.describe("Nope"),
        dropped,
    ]
    client = make_client(max_attempts=1)
    client.count("SELECT COUNT() FROM Lead")
    access_token = tokens.current().access_token
    for scenario in scenarios:
        with pytest.raises(SalesforceError) as raised:
            scenario(client)
        errors.append(raised.value)
    sandbox.org.revoke_all_tokens()
    with pytest.raises(CredentialsRevokedError) as revoked:
        client.count("SELECT COUNT() FROM Lead")
    errors.append(revoked.value)

    secrets = [access_token, tokens.refresh_token, sandbox.client_secret]
    for error in errors:
        text = " ".join([str(error), repr(error), error.detail or "", error.url or ""])
        assert not any(secret in text for secret in secrets), text
