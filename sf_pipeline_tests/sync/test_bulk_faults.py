"""Bulk API 2.0 going wrong, in the sandbox org: each fault ends in a clear log line and either the
same users a REST sync makes, or a clean ``sync_failed`` with the watermark untouched.

Faults that must land mid-job are set off the moment the run writes its job down (the journal),
so they do not depend on timing. Objects are extracted in name order (Contact, then Lead), so the
first job, the one most faults hit, is Contact's."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from sf_pipeline.salesforce.errors import ApiLimitError
from sf_pipeline.sandbox.testing import SandboxHandle, serve_in_thread
from sf_pipeline.storage.bulk_jobs import JobJournal
from sf_pipeline.storage.models import BulkQueryJob, Integration, LogEvent, SyncRun, SyncState
from sf_pipeline_tests.conftest import trust
from sf_pipeline_tests.harness import TEST_KEY, Pipeline, pipeline
from sf_pipeline_tests.sync.test_bulk_sync import user_rows, with_api

PAGE_RECORDS = 500  # several results pages per job, so a fault can land between them


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxHandle]:
    with serve_in_thread(records=2000, seed=13) as sandbox:
        trust(monkeypatch, sandbox)
        yield sandbox


@pytest.fixture
def reference(sandbox: SandboxHandle, tmp_path: Path) -> dict[str, tuple[object, ...]]:
    """The users a REST sync of the same org makes."""
    (tmp_path / "reference").mkdir()
    with pipeline(sandbox, f"sqlite:///{tmp_path / 'reference.db'}", tmp_path / "reference", name="acme",
                  spec=with_api("rest")) as p:
        p.sync()
        return user_rows(p)


@pytest.fixture
def bulk_pipeline(sandbox: SandboxHandle, tmp_path: Path) -> Iterator[Pipeline]:
    (tmp_path / "bulk").mkdir()
    with pipeline(sandbox, f"sqlite:///{tmp_path / 'bulk.db'}", tmp_path / "bulk") as p:
        p.services.bulk_page_records = PAGE_RECORDS
        yield p


def when_job_created(monkeypatch: pytest.MonkeyPatch, action: Callable[[str, str], None], *, times: int = 1) -> None:
    """Run ``action(object_name, job_id)`` right after the run writes down each of its first
    ``times`` Bulk jobs."""
    remember = JobJournal.remember
    left = [times]

    def remember_then_act(self: JobJournal, object_name: str, job_id: str) -> None:
        remember(self, object_name, job_id)
        if left[0] > 0:
            left[0] -= 1
            action(object_name, job_id)

    monkeypatch.setattr(JobJournal, "remember", remember_then_act)


def messages(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("sf_pipeline"))


def watermarks(p: Pipeline) -> dict[str, Any]:
    with p.database.session() as session:
        return {s.object_name: s.watermark for s in session.scalars(select(SyncState))}


def test_a_failed_job_falls_back_to_rest_for_that_object(
    sandbox: SandboxHandle, bulk_pipeline: Pipeline, reference: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    sandbox.org.fail_next_bulk_job("Query timed out in the sandbox")
    summary = bulk_pipeline.sync()
    assert summary["apis"] == {"Contact": "rest", "Lead": "bulk"}
    assert "Contact: Bulk API 2.0 job" in messages(caplog)
    assert "ended Failed: Query timed out in the sandbox); falling back to REST" in messages(caplog)
    assert user_rows(bulk_pipeline) == reference
    with bulk_pipeline.database.session() as session:
        event = session.scalars(select(LogEvent).where(LogEvent.type == "sync_completed")).one()
        assert "Query timed out in the sandbox" in event.details["api_fallbacks"]["Contact"]
        assert session.scalars(select(BulkQueryJob)).all() == []


def test_a_job_salesforce_will_not_create_falls_back_to_rest(
    sandbox: SandboxHandle, bulk_pipeline: Pipeline, reference: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    sandbox.org.inject_fault("bulk_job", "status", count=4, status=503)  # every attempt at Contact's job
    summary = bulk_pipeline.sync()
    assert summary["apis"] == {"Contact": "rest", "Lead": "bulk"}
    assert "Contact: Bulk API 2.0 job not created" in messages(caplog)
    assert "SERVER_UNAVAILABLE" in messages(caplog)
    assert user_rows(bulk_pipeline) == reference


@pytest.mark.parametrize("soql", ["SELECT COUNT() FROM Lead", "SELECT Status, COUNT(Id) FROM Lead GROUP BY Status",
                                  "SELECT Id FROM Lead LIMIT 5 OFFSET 5"])
def test_a_query_bulk_api_2_refuses_is_reported_as_not_created(
    sandbox: SandboxHandle, bulk_pipeline: Pipeline, soql: str
) -> None:
    """What makes the sync fall back to REST: Salesforce refuses to create the job."""
    from sf_pipeline.salesforce.bulk import BulkQueryClient
    from sf_pipeline.salesforce.errors import SalesforceError

    with bulk_pipeline.services.open_client("acme") as client, pytest.raises(SalesforceError) as refused:
        BulkQueryClient(client).create(soql)
    assert refused.value.status == 400
    assert refused.value.error_code in ("INVALIDJOB", "API_ERROR")
    assert sandbox.org.bulk.jobs(sandbox.org) == []


def test_an_expired_locator_falls_back_to_rest(
    sandbox: SandboxHandle, bulk_pipeline: Pipeline, reference: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    when_job_created(monkeypatch, lambda _obj, job_id: sandbox.org.expire_bulk_locator(job_id))
    summary = bulk_pipeline.sync()
    assert summary["apis"] == {"Contact": "rest", "Lead": "bulk"}
    assert "INVALID_QUERY_LOCATOR" in messages(caplog)
    assert "falling back to REST" in messages(caplog)
    assert user_rows(bulk_pipeline) == reference


@pytest.mark.parametrize("fault", [{"kind": "status", "status": 503}, {"kind": "status", "status": 500},
                                   {"kind": "drop"}, {"kind": "truncate"}])
def test_a_results_download_cut_or_refused_is_fetched_again(
    sandbox: SandboxHandle, bulk_pipeline: Pipeline, reference: dict[str, Any], fault: dict[str, Any],
    caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    sandbox.org.inject_fault("bulk_results", fault["kind"], count=2, status=fault.get("status", 500))
    summary = bulk_pipeline.sync()
    assert summary["apis"] == {"Lead": "bulk", "Contact": "bulk"}
    assert sandbox.org.faults.pending() == [], "both faulted downloads happened"
    assert user_rows(bulk_pipeline) == reference


def test_a_download_that_keeps_failing_falls_back_to_rest(
    sandbox: SandboxHandle, bulk_pipeline: Pipeline, reference: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    sandbox.org.inject_fault("bulk_results", "truncate", count=4)  # every attempt at one page
    summary = bulk_pipeline.sync()
    assert summary["apis"] == {"Contact": "rest", "Lead": "bulk"}
    assert "results page of job" in messages(caplog) and "is incomplete" in messages(caplog)
    assert "@" not in messages(caplog), "no record values in the log"
    assert user_rows(bulk_pipeline) == reference


def test_a_token_expiring_between_polls_is_refreshed_and_the_job_read(
    sandbox: SandboxHandle, bulk_pipeline: Pipeline, reference: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox.org.set_bulk_processing_time(fixed_seconds=0.3)  # a few polls while InProgress
    when_job_created(monkeypatch, lambda _obj, _job: sandbox.org.expire_sessions(), times=2)
    summary = bulk_pipeline.sync()
    assert summary["apis"] == {"Lead": "bulk", "Contact": "bulk"}
    assert user_rows(bulk_pipeline) == reference


def test_quota_exhausted_mid_job_fails_the_sync_cleanly(
    sandbox: SandboxHandle, bulk_pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    first = bulk_pipeline.sync()
    marks = watermarks(bulk_pipeline)
    before = user_rows(bulk_pipeline)
    sandbox.org.touch_random("Contact", 50)

    def exhaust(object_name: str, _job: str) -> None:
        if object_name == "Lead":  # both jobs exist; the next call (Contact's first poll) is refused
            _used, quota = sandbox.org.api_usage()
            sandbox.org.set_api_quota(used=quota)

    when_job_created(monkeypatch, exhaust, times=2)
    with pytest.raises(ApiLimitError):
        bulk_pipeline.sync(full=True)
    assert "Salesforce API limit reached" in messages(caplog) and "stopped" in messages(caplog)
    assert watermarks(bulk_pipeline) == marks
    assert user_rows(bulk_pipeline) == before
    with bulk_pipeline.database.session() as session:
        failed = session.scalars(select(LogEvent).where(LogEvent.type == "sync_failed")).one()
        assert "API limit" in (failed.error or "")
        # The jobs could not be aborted under the exhausted quota: they are kept for the next run.
        left = [j.job_id for j in session.scalars(select(BulkQueryJob))]
    assert len(left) == 2

    sandbox.org.set_api_quota(used=0)
    again = bulk_pipeline.sync(full=True)
    assert again["apis"] == {"Lead": "bulk", "Contact": "bulk"}
    for job_id in left:  # aborted, or (finished meanwhile) left alone: never read again
        assert f"Aborted Bulk API job {job_id}" in messages(caplog) or \
            (f"Bulk API job {job_id} (" in messages(caplog) and "its results are ignored" in messages(caplog))
    assert again["fetched"] == first["fetched"], "nothing counted twice"
    assert again["created"] == 0
    assert open_jobs(bulk_pipeline) == []


def test_a_sync_killed_mid_job_leaves_nothing_and_its_job_is_aborted_next_time(
    sandbox: SandboxHandle, bulk_pipeline: Pipeline, reference: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    p = bulk_pipeline
    sandbox.org.set_bulk_processing_time(fixed_seconds=600)  # the job stays InProgress until the kill
    env = {**os.environ, "SF_PIPELINE_HOME": str(p.services.settings.home),
           "SF_PIPELINE_DATABASE_URL": p.database.url.render_as_string(hide_password=False),
           "SF_PIPELINE_SECRET_KEY": TEST_KEY}
    child = subprocess.Popen([sys.executable, "-m", "sf_pipeline_tests.sync.sync_child", p.name], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and child.poll() is None and not open_jobs(p):
            time.sleep(0.01)
        assert open_jobs(p), "the child wrote its Bulk job down"
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    left = open_jobs(p)
    with p.database.session() as session:
        assert [r.status for r in session.scalars(select(SyncRun))] == ["started"]
    assert watermarks(p) == {} and user_rows(p) == {}

    # The jobs the killed run left are still InProgress (600 s). The next run aborts them first
    # thing; it reads over REST here so no new job has to wait out the 600 s.
    assert {j.state for j in sandbox.org.bulk.jobs(sandbox.org)} == {"InProgress"}
    with p.database.session() as session:
        session.execute(update(Integration).values(api="rest"))
    summary = p.sync()
    assert summary["apis"] == {"Lead": "rest", "Contact": "rest"}
    states = {j.id: j.state for j in sandbox.org.bulk.jobs(sandbox.org)}
    assert left and all(states[job] == "Aborted" for job in left)
    assert f"Aborted Bulk API job {left[0]}" in messages(caplog)
    assert user_rows(p) == reference
    assert open_jobs(p) == []
    assert summary["created"] == len(reference), "nothing from the killed run counted"


def open_jobs(p: Pipeline) -> list[str]:
    with p.database.session() as session:
        return [j.job_id for j in session.scalars(select(BulkQueryJob))]
