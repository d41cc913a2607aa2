"""Injected faults, session expiry and the API quota, as clients see them."""

from __future__ import annotations

import time

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

from sf_pipeline.sandbox import Org, SandboxHandle
from sf_pipeline_tests.sandbox.conftest import Api


@pytest.fixture
def leads(org: Org) -> list[str]:
    org.set_options(batch_size=5)
    return org.create("Lead", [{"LastName": f"L{i}", "Company": "C"} for i in range(12)])


def test_latency_fault_delays_the_next_matching_requests_only(org: Org, api: Api, leads: list[str]) -> None:
    org.inject_fault("query", "latency", latency_ms=300, count=1)
    started = time.perf_counter()
    assert api.query("SELECT Id FROM Lead").status_code == 200
    assert time.perf_counter() - started >= 0.3  # a lower bound: load only makes it longer
    assert org.faults.pending() == []  # used up: the next request is not delayed


@pytest.mark.parametrize(("status", "code"), [(500, "UNKNOWN_EXCEPTION"), (503, "SERVER_UNAVAILABLE")])
def test_status_fault_answers_salesforce_server_errors(
    org: Org, api: Api, sf: Salesforce, leads: list[str], status: int, code: int
) -> None:
    org.inject_fault("query_more", "status", status=status, count=2)
    first = api.query("SELECT Id FROM Lead").json()
    response = api.get(first["nextRecordsUrl"])
    assert response.status_code == status
    assert response.json()[0]["errorCode"] == code
    with pytest.raises(SalesforceGeneralError):
        sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert len(api.get(first["nextRecordsUrl"]).json()["records"]) == 5  # the cursor survived


def test_dropped_connection_mid_body_breaks_the_read_then_recovers(org: Org, api: Api, leads: list[str]) -> None:
    first = api.query("SELECT Id FROM Lead").json()
    org.inject_fault("query_more", "drop")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        api.get(first["nextRecordsUrl"])
    assert len(api.get(first["nextRecordsUrl"]).json()["records"]) == 5


def test_query_timeout_fault_is_a_400_query_timeout(org: Org, sf: Salesforce, leads: list[str]) -> None:
    org.inject_fault("query", "query_timeout")
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query("SELECT Id FROM Lead")
    assert caught.value.content == [
        {"message": "Your query request was running for too long.", "errorCode": "QUERY_TIMEOUT"}
    ]
    assert sf.query("SELECT Id FROM Lead")["totalSize"] == 12


@pytest.mark.parametrize("endpoint", ["describe", "limits"])
def test_faults_target_one_endpoint_kind(org: Org, sf: Salesforce, endpoint: str) -> None:
    org.inject_fault(endpoint, "status", status=503)
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == 0
    with pytest.raises(SalesforceGeneralError):
        sf.Lead.describe() if endpoint == "describe" else sf.limits()


def test_token_and_identity_faults(org: Org, sandbox: SandboxHandle) -> None:
    org.inject_fault("token", "status", status=503)
    response = sandbox.session().post(sandbox.login_url + "/services/oauth2/token", data={}, timeout=10)
    assert response.status_code == 503
    tokens = sandbox.issue_tokens()
    org.inject_fault("identity", "drop")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        sandbox.session().get(tokens["id"], headers={"Authorization": f"Bearer {tokens['access_token']}"}, timeout=10)


def test_fault_injection_rejects_unknown_kinds(org: Org) -> None:
    with pytest.raises(ValueError):
        org.inject_fault("query", "explode")
    with pytest.raises(ValueError):
        org.inject_fault("nowhere", "latency")
    with pytest.raises(ValueError):
        org.inject_fault("query", "status", status=418)


def test_counters_count_requests_per_endpoint(sandbox: SandboxHandle, sf: Salesforce, leads: list[str]) -> None:
    sandbox.control.reset_counters()
    sf.query_all("SELECT Id FROM Lead")
    sf.Lead.describe()
    sf.limits()
    counts = sandbox.control.counters()
    assert (counts["query"], counts["query_more"], counts["describe"], counts["limits"]) == (1, 2, 1, 1)


def test_sessions_expire_after_n_more_requests(org: Org, sf: Salesforce) -> None:
    org.expire_sessions(after_requests=2)
    sf.query("SELECT COUNT() FROM Lead")
    sf.query("SELECT COUNT() FROM Lead")
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT COUNT() FROM Lead")


def test_sessions_expire_after_two_idle_hours_of_org_clock(org: Org, sf: Salesforce) -> None:
    sf.query("SELECT COUNT() FROM Lead")
    org.clock.advance(3600)
    sf.query("SELECT COUNT() FROM Lead")  # use keeps the session alive
    org.clock.advance(2 * 3600 + 1)
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT COUNT() FROM Lead")


def test_simple_salesforce_logs_in_again_when_its_session_expires(org: Org, sandbox: SandboxHandle) -> None:
    sf = Salesforce(
        username=sandbox.username,
        password=sandbox.password,
        consumer_key=sandbox.client_id,
        consumer_secret=sandbox.client_secret,
        session=sandbox.login_session(),
    )
    first = sf.session_id
    org.expire_sessions()
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == 0
    assert sf.session_id != first


def test_quota_exhaustion_is_403_request_limit_exceeded_with_limit_info(org: Org, api: Api, sf: Salesforce) -> None:
    org.set_api_quota(max=100, used=98)
    assert api.query("SELECT COUNT() FROM Lead").headers["Sforce-Limit-Info"] == "api-usage=99/100"
    assert api.query("SELECT COUNT() FROM Lead").headers["Sforce-Limit-Info"] == "api-usage=100/100"
    refused = api.query("SELECT COUNT() FROM Lead")
    assert refused.status_code == 403
    assert refused.json() == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    assert refused.headers["Sforce-Limit-Info"] == "api-usage=100/100"
    with pytest.raises(SalesforceRefusedRequest):
        sf.query("SELECT COUNT() FROM Lead")


def test_limits_resource_agrees_with_the_usage_header(org: Org, sf: Salesforce) -> None:
    org.set_api_quota(max=15000, used=10)
    limits = sf.limits()
    assert limits["DailyApiRequests"] == {"Max": 15000, "Remaining": 14989}
    assert sf.api_usage["api-usage"].used == 11
    assert sf.api_usage["api-usage"].total == 15000
