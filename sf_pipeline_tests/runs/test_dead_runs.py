"""A dead sync never wedges its integration. With the real ``dagster-daemon`` on a PostgreSQL-backed
instance, a run's worker is SIGKILLed before its first step and mid-step, and the CLI process
running a sync is SIGKILLed mid-step: each time Dagster ends the run FAILURE, ``sync_failed`` is
logged with the reason, the integration shows Error, and the dispatcher's next sync runs and
succeeds on its own within two minutes of the kill."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from sf_pipeline import leases
from sf_pipeline.sandbox.testing import SandboxHandle
from sf_pipeline.storage.integrations import get_integration
from sf_pipeline_tests.dbs import empty_database_url
from sf_pipeline_tests.harness import Pipeline, pipeline
from sf_pipeline_tests.runs.procs import (
    FAST_RUN_SETTINGS,
    SF_PIPELINE,
    Deployment,
    deployment,
    events,
    sync_runs,
    wait_until,
)

pytestmark = [pytest.mark.usefixtures("dagster_env"), pytest.mark.timeout(1800), pytest.mark.postgres]
WITHIN_S = 120  # the promise: the next sync runs within two minutes of the kill
PID = re.compile(r"Started process for run \(pid: (\d+)\)")


@pytest.fixture
def fast_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in FAST_RUN_SETTINGS.items():
        monkeypatch.setenv(key, value)


@dataclass
class Outcome:
    detected_s: float
    next_success_s: float
    saw_error: bool


def sync_records(d: Deployment) -> list[dg.RunRecord]:
    return list(d.instance.get_run_records(dg.RunsFilter(job_name="sync_integration")))


def status(p: Pipeline) -> str:
    with p.database.session() as session:
        return get_integration(session, p.name).status


def request_sync(p: Pipeline) -> None:
    with p.database.session() as session:
        get_integration(session, p.name).sync_requested_at = datetime.now(UTC)


def new_run(d: Deployment, known: set[str]) -> Callable[[], dg.RunRecord | None]:
    def find() -> dg.RunRecord | None:
        fresh = [r for r in sync_records(d) if r.dagster_run.run_id not in known]
        return fresh[0] if fresh else None
    return find


def worker_pid(d: Deployment, run_id: str) -> int | None:
    for entry in d.instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        match = PID.search(entry.message or "")
        if match:
            return int(match.group(1))
    return None


def logged(d: Deployment, run_id: str, text: str) -> bool:
    return any(text in (entry.message or "") for entry in d.instance.all_logs(run_id))


def after_kill(p: Pipeline, d: Deployment, killed: str, known: set[str], killed_at: float) -> Outcome:
    """Wait for the killed run to be failed and recorded, and for the next sync to succeed."""
    saw_error = False

    def failed_and_recorded() -> bool:
        nonlocal saw_error
        saw_error = saw_error or status(p) == "error"
        record = d.instance.get_run_record_by_id(killed)
        recorded = any(e.run_id == killed for e in events(p, "sync_failed"))
        return bool(record and record.dagster_run.status == dg.DagsterRunStatus.FAILURE and recorded)

    wait_until(failed_and_recorded, timeout_s=WITHIN_S, what=f"run {killed} to be failed and recorded", poll_s=0.1)
    detected = time.monotonic() - killed_at

    def next_succeeded() -> bool:
        nonlocal saw_error
        saw_error = saw_error or status(p) == "error"
        return any(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS
                   for r in sync_records(d) if r.dagster_run.run_id not in known | {killed})

    remaining = WITHIN_S - (time.monotonic() - killed_at)
    wait_until(next_succeeded, timeout_s=max(remaining, 1), what="the next sync to succeed", poll_s=0.1)
    return Outcome(detected, time.monotonic() - killed_at, saw_error)


def check(p: Pipeline, d: Deployment, killed: str, outcome: Outcome) -> None:
    """Whoever noticed first (the watchdog, or Dagster itself when the worker's parent saw it exit),
    the run is FAILURE and ``sync_failed`` carries Dagster's reason."""
    record = d.instance.get_run_record_by_id(killed)
    assert record is not None and record.dagster_run.status == dg.DagsterRunStatus.FAILURE
    failure = d.instance.all_logs(killed, of_type=dg.DagsterEventType.RUN_FAILURE)
    assert len(failure) == 1
    failed = [e for e in events(p, "sync_failed") if e.run_id == killed]
    message = failure[0].dagster_event.message if failure[0].dagster_event else None
    assert len(failed) == 1 and failed[0].error == message, ([e.error for e in failed], message)
    assert outcome.saw_error, "the integration showed Error after the kill"
    assert outcome.next_success_s <= WITHIN_S
    assert status(p) == "active", "the next successful sync returns it to Active"
    assert leases.holder(p.database, p.name) is None or leases.holder(p.database, p.name).run_id != killed  # type: ignore[union-attr]
    print(f"{killed}: failed and recorded {outcome.detected_s:.1f} s after the kill, "
          f"next sync succeeded {outcome.next_success_s:.1f} s after it")


@pytest.fixture
def deployed(small_sandbox: SandboxHandle, tmp_path: Path, fast_runs: None) -> Iterator[tuple[Pipeline, Deployment]]:
    with empty_database_url("postgres", tmp_path / "app") as url, pipeline(small_sandbox, url, tmp_path / "home") as p:
        (tmp_path / "deploy").mkdir()
        with deployment(p, tmp_path / "deploy") as d:
            # Applying the integration made it Active with its initial sync requested: the daemon runs it.
            wait_until(lambda: any(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in sync_records(d)),
                       timeout_s=600, what="the initial sync launched by the dispatcher")
            yield p, d


def test_killed_workers_and_cli_syncs_fail_their_run_and_the_next_sync_runs_on_its_own(
    deployed: tuple[Pipeline, Deployment],
) -> None:
    p, d = deployed

    # 1. A daemon-launched run's worker killed before its first step. The test holds the lease the
    #    moment the run appears, so the worker stops in its first moments, waiting for the lease.
    known = {r.dagster_run.run_id for r in sync_records(d)}
    request_sync(p)
    run = wait_until(new_run(d, known), timeout_s=300, what="the dispatcher's run", poll_s=0.05)
    assert leases.try_acquire(p.database, p.name, "test-holder")
    holding = leases.Heartbeat.start(p.database, "test-holder")
    try:
        killed = run.dagster_run.run_id
        wait_until(lambda: logged(d, killed, "Waiting for run test-holder"), timeout_s=300,
                   what="the worker to wait for the lease")
        pid = worker_pid(d, killed)
        assert pid is not None
        assert not d.instance.all_logs(killed, of_type=dg.DagsterEventType.STEP_START), "before its first step"
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
    finally:
        holding.stop()
        leases.release(p.database, "test-holder")
    outcome = after_kill(p, d, killed, known, killed_at)
    check(p, d, killed, outcome)
    assert not [r for r in sync_runs(p) if r.run_id == killed], "it died before the sync was recorded"

    # 2. A daemon-launched run's worker killed mid-step (extract waiting on a slow Salesforce).
    known = {r.dagster_run.run_id for r in sync_records(d)}
    p.sandbox.control.inject_fault("query", "latency", count=2, latency_ms=8000)
    request_sync(p)
    run = wait_until(new_run(d, known), timeout_s=300, what="the dispatcher's run", poll_s=0.05)
    killed = run.dagster_run.run_id
    wait_until(lambda: any(r.run_id == killed and r.status == "started" for r in sync_runs(p)), timeout_s=300,
               what="the run's sync to start")
    holder = leases.holder(p.database, p.name)
    assert holder is not None and holder.run_id == killed and holder.pid is not None
    assert d.instance.all_logs(killed, of_type=dg.DagsterEventType.STEP_START), "mid-step"
    os.kill(holder.pid, signal.SIGKILL)
    outcome = after_kill(p, d, killed, known, time.monotonic())
    check(p, d, killed, outcome)

    # 3. The CLI process running a sync killed mid-step.
    known = {r.dagster_run.run_id for r in sync_records(d)}
    p.sandbox.control.inject_fault("query", "latency", count=2, latency_ms=8000)
    cli = subprocess.Popen([SF_PIPELINE, "sync", p.name, "--json"], env=d.env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        run = wait_until(new_run(d, known), timeout_s=300, what="the CLI's run", poll_s=0.05)
        killed = run.dagster_run.run_id
        wait_until(lambda: any(r.run_id == killed and r.status == "started" for r in sync_runs(p)),
                   timeout_s=300, what="the CLI's sync to start")
        cli.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
    finally:
        if cli.poll() is None:
            cli.kill()
        cli.wait()
    outcome = after_kill(p, d, killed, known, killed_at)
    check(p, d, killed, outcome)
