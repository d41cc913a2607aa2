"""The latency profile: ``none`` answers as fast as the sandbox can; ``salesforce`` spends a real
org's order of server-side time on REST pages, Bulk job processing and result downloads."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from sf_pipeline.demo.launcher import start_sandbox
from sf_pipeline.sandbox import ControlError, Org, SandboxHandle, serve_in_thread
from sf_pipeline.sandbox import handlers as rest
from sf_pipeline.sandbox.latency import PROFILES
from sf_pipeline.sandbox.wire import Request
from sf_pipeline_tests.sandbox.conftest import Api, lead


def _query(org: Org, soql: str) -> Request:
    return Request("GET", "/services/data/v59.0/query", {"q": soql}, {}, b"", "", {"version": "59.0"})


@pytest.fixture
def leads(org: Org) -> list[str]:
    return org.create("Lead", [lead(LastName=f"L{i}") for i in range(30)])


def test_without_a_profile_answers_spend_no_server_time(org: Org, leads: list[str]) -> None:
    assert org.latency.name == "none"
    assert rest.query(org, _query(org, "SELECT Id FROM Lead")).delay == 0
    job = org.bulk.create(org, "query", "SELECT Id FROM Lead", api_version="59.0")
    assert org.bulk.get(org, job.id).state == "JobComplete"


def test_salesforce_profile_rest_page_time_grows_with_the_records_on_the_page(org: Org, leads: list[str]) -> None:
    org.set_latency_profile("salesforce")
    profile = PROFILES["salesforce"]
    one = rest.query(org, _query(org, "SELECT Id FROM Lead LIMIT 1")).delay
    thirty = rest.query(org, _query(org, "SELECT Id FROM Lead")).delay
    assert one == pytest.approx(profile.rest_page_fixed_seconds + profile.rest_page_per_record_seconds)
    assert thirty == pytest.approx(profile.rest_page_fixed_seconds + 30 * profile.rest_page_per_record_seconds)
    # A full 2,000-record page costs a few hundred milliseconds, as on a production org.
    assert 0.2 <= profile.rest_page(2000) <= 0.6


def test_salesforce_profile_bulk_jobs_take_fixed_plus_per_record_time(org: Org, leads: list[str]) -> None:
    org.set_latency_profile("salesforce")
    profile = PROFILES["salesforce"]
    job = org.bulk.create(org, "query", "SELECT Id FROM Lead", api_version="59.0")
    assert org.bulk.get(org, job.id).state == "InProgress"
    expected = profile.bulk_job_fixed_seconds + 30 * profile.bulk_job_per_record_seconds
    assert job.due - job.created_at == pytest.approx(expected)
    org.set_latency_profile("none")
    assert org.bulk.get(org, job.id).state == "JobComplete"


def test_salesforce_profile_is_spent_before_the_answer_over_http(org: Org, leads: list[str], api: Api) -> None:
    org.set_latency_profile("salesforce")
    profile = PROFILES["salesforce"]
    started = time.perf_counter()
    assert api.query("SELECT Id FROM Lead").status_code == 200
    assert time.perf_counter() - started >= profile.rest_page(30)
    org.set_bulk_processing_time(fixed_seconds=0, per_record_seconds=0)
    job = api.session.post(
        api.base + "/services/data/v59.0/jobs/query", json={"operation": "query", "query": "SELECT Id FROM Lead"}
    ).json()
    assert api.get(f"/services/data/v59.0/jobs/query/{job['id']}").json()["state"] == "JobComplete"
    started = time.perf_counter()
    assert api.get(f"/services/data/v59.0/jobs/query/{job['id']}/results").status_code == 200
    assert time.perf_counter() - started >= profile.bulk_download_fixed_seconds


def test_profile_is_chosen_when_serving_in_a_thread_and_over_the_control_api(monkeypatch: pytest.MonkeyPatch) -> None:
    with serve_in_thread(latency_profile="salesforce") as sandbox:
        assert sandbox.ca_bundle
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", sandbox.ca_bundle)
        assert sandbox.org.latency.name == "salesforce"
        assert sandbox.control.set_latency_profile("none")["name"] == "none"
        assert sandbox.org.latency == PROFILES["none"]
        with pytest.raises(ControlError) as refused:
            sandbox.control.set_latency_profile("warp")
        assert refused.value.status == 400 and "warp" in str(refused.value.body)


def test_unknown_profile_is_refused_by_name(org: Org) -> None:
    with pytest.raises(ValueError, match="unknown latency profile 'slow'"):
        org.set_latency_profile("slow")
    assert org.latency.name == "none"


def test_control_api_sets_bulk_processing_time_and_limits(sandbox: SandboxHandle) -> None:
    settings = sandbox.control.set_bulk_settings(fixed_seconds=2.5, per_record_seconds=0.001, max_jobs=7)
    assert settings["fixed_seconds"] == 2.5 and settings["per_record_seconds"] == 0.001
    assert settings["limits"]["DailyBulkV2QueryJobs"] == {"Max": 7, "Remaining": 7}
    with pytest.raises(ControlError) as refused:
        sandbox.control.set_bulk_settings(speed=3)
    assert refused.value.status == 400 and "speed" in str(refused.value.body)


def test_demo_launcher_starts_the_sandbox_with_a_latency_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    child, info = start_sandbox(
        tmp_path, records=3, seed=1, env=dict(os.environ), stop=threading.Event(), latency_profile="salesforce"
    )
    try:
        assert info.ca_bundle
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", info.ca_bundle)
        control = info.control()
        assert control.latency_profile() == PROFILES["salesforce"].as_json()
        assert control.bulk_settings()["fixed_seconds"] == PROFILES["salesforce"].bulk_job_fixed_seconds
    finally:
        child.stop(timeout=10)
