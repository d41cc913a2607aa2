"""Runs that died or ended without saying how: finding them, failing them in Dagster, and
recording the lost sync so the integration is never wedged.

Every run that works on an integration holds its lease (``sf_pipeline.leases``) and heartbeats
it. A run is dead when Dagster still shows it in progress but nothing in it has shown life: the
lease's heartbeat for a holder; before it holds the lease, its worker process (see
``death_reason``). Dead runs are reaped: Dagster marks them failed with the reason, the lease is
freed, and the sync records ``sync_failed`` (see ``record_lost_run``). The run-status sensors use
``record_lost_run`` for runs Dagster ended FAILURE or CANCELED.
"""

from __future__ import annotations

import os
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

from sf_pipeline import leases
from sf_pipeline.settings import Settings
from sf_pipeline.storage.database import Database
from sf_pipeline.storage.integrations import find_integration
from sf_pipeline.storage.models import IntegrationStatus, SyncRun
from sf_pipeline.sync import lifecycle

PARTITION_TAG = "dagster/partition"
# Statuses in which a run may be working on its integration. QUEUED runs are not: the queue
# launches them only when the partition is free, and they take the lease when they start.
RUNNING_STATUSES = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
SYNC_ASSETS = frozenset({dg.AssetKey("salesforce_records"), dg.AssetKey("user_changes"), dg.AssetKey("spotzee_users")})
SYNC_JOB = "sync_integration"


def is_sync_run(run: dg.DagsterRun) -> bool:
    """A run that materializes the sync's assets: the sync job, or an asset job launched from the
    UI (Materialize, a backfill) that selected any of them."""
    if run.job_name == SYNC_JOB:
        return True
    return run.job_name.startswith("__ASSET_JOB") and bool(SYNC_ASSETS & set(run.asset_selection or ()))


def running_runs(instance: dg.DagsterInstance, name: str | None = None) -> list[dg.RunRecord]:
    tags = {PARTITION_TAG: name} if name else None
    return list(instance.get_run_records(dg.RunsFilter(statuses=RUNNING_STATUSES, tags=tags)))


def death_reason(instance: dg.DagsterInstance, database: Database, record: dg.RunRecord) -> str | None:
    """Why an in-progress run is dead, or None while it shows life.

    A run holding its lease is alive while its heartbeat is within the lease's TTL. Before it
    holds the lease (its worker is starting, or waiting for another run), a worker that Dagster's
    default launcher started is alive while its process exists: that launcher starts workers on
    the code server's host, and sensors run in the code server, so the worker's pid (from
    Dagster's "Started process for run" event) can be checked here. Any other run is given the
    start grace from its last event (other launchers' own health checks cover their workers)."""
    run = record.dagster_run
    now = leases.wall_clock()
    ttl_s = f"{leases.ttl().total_seconds():.0f} s"
    held = leases.held_by(database, run.run_id)
    if held is not None:
        _, holder = held
        if holder.alive(now):
            return None
        since = holder.heartbeat_at.isoformat(timespec="seconds") if holder.heartbeat_at else "its start"
        return f"the run's worker stopped: no heartbeat from pid {holder.pid} on {holder.host} since {since} " \
               f"(more than {ttl_s})"
    pid = worker_pid(instance, run.run_id) if isinstance(instance.run_launcher, dg.DefaultRunLauncher) else None
    if pid is not None:
        if process_alive(pid):
            return None
        return f"the run's worker (pid {pid}) is gone; it stopped before it took the integration's lease"
    last = _last_sign_of_life(instance, record)
    if now - last <= start_grace():
        return None
    return (f"the run's worker stopped before it took the integration's lease: nothing from it since "
            f"{last.isoformat(timespec='seconds')} (more than {start_grace().total_seconds():.0f} s)")


START_GRACE_ENV = "SF_PIPELINE_RUN_START_GRACE_SECONDS"
_STARTED_PROCESS = re.compile(r"Started process for run \(pid: (\d+)\)")


def start_grace() -> timedelta:
    return timedelta(seconds=float(os.environ.get(START_GRACE_ENV, 120)))


def worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        match = _STARTED_PROCESS.search(entry.message or "")
        if match:
            return int(match.group(1))
    return None


def process_alive(pid: int) -> bool:
    """The process exists and has not exited (a killed child its parent has not reaped yet is a
    zombie: gone for our purposes)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc: existence is all we can tell
    return state not in ("Z", "X")


def _last_sign_of_life(instance: dg.DagsterInstance, record: dg.RunRecord) -> datetime:
    latest = instance.get_records_for_run(record.dagster_run.run_id, limit=1, ascending=False).records
    stamps = [record.create_timestamp.timestamp()]
    if record.start_time:
        stamps.append(record.start_time)
    if latest:
        stamps.append(latest[0].event_log_entry.timestamp)
    return datetime.fromtimestamp(max(stamps), UTC)


def reap(instance: dg.DagsterInstance, database: Database, settings: Settings, record: dg.RunRecord,
         reason: str) -> None:
    """Mark a dead run failed in Dagster, free its lease and record the lost sync."""
    run = record.dagster_run
    reason = f"Run marked failed: {reason}"  # the same words in Dagster's run and in sync_failed
    current = instance.get_run_by_id(run.run_id)
    if current is not None and current.status in RUNNING_STATUSES:
        instance.report_run_failed(current, reason)
    leases.release(database, run.run_id)
    if is_sync_run(run) and run.tags.get(PARTITION_TAG):
        started = datetime.fromtimestamp(record.start_time, UTC) if record.start_time else None
        record_lost_run(database, settings, run.tags[PARTITION_TAG], run.run_id, reason, started_at=started)


def reap_dead_runs(instance: dg.DagsterInstance, database: Database, settings: Settings,
                   name: str | None = None) -> list[str]:
    """Reap every dead in-progress run (of one integration, or of all); their run ids."""
    reaped = []
    for record in running_runs(instance, name):
        if not record.dagster_run.tags.get(PARTITION_TAG):
            continue
        reason = death_reason(instance, database, record)
        if reason is not None:
            reap(instance, database, settings, record, reason)
            reaped.append(record.dagster_run.run_id)
    return reaped


def record_lost_run(database: Database, settings: Settings, name: str, run_id: str, reason: str, *,
                    started_at: datetime | None) -> bool:
    """A sync run ended (failed, canceled, or its worker died) without recording how: record
    ``sync_failed`` with the reason and set Error. Its slot is freed: the attempt counts (so the
    run key changes) and the first such loss in a row is retried at the dispatcher's next tick,
    later ones back off like any failure. False when the run had already recorded its end."""
    # The run's own files are useless once it ended badly, whether or not it recorded that.
    shutil.rmtree(settings.work_dir / name / run_id, ignore_errors=True)
    now = leases.wall_clock()
    with database.session() as session:
        integration = find_integration(session, name)
        if integration is None:
            return False
        run = session.get(SyncRun, run_id)
        if run is not None and run.status != "started":
            return False
        duration = (now - run.started_at).total_seconds() if run is not None else None
        lifecycle.fail_run(session, integration, run_id, reason, now=now, duration_s=duration)
        attempted = started_at or (run.started_at if run is not None else now)
        if integration.last_attempt_at is None or integration.last_attempt_at < attempted:
            integration.last_attempt_at = attempted
        # The slot must move, or the dispatcher would request the same run key forever (Dagster
        # skips a key it has seen): retry at the next tick once, then back off from this attempt.
        retry = integration.consecutive_failures == 1 and integration.status == IntegrationStatus.ERROR.value
        integration.sync_requested_at = now if retry else None
    return True


def refused_before_sync(instance: dg.DagsterInstance, database: Database, run_id: str) -> bool:
    """The run failed in a step of its own before the sync began (no sync run was recorded): an
    asset materialized alone that could not get its inputs, say. It changed nothing and said why,
    so the integration's status stays as it was."""
    with database.session() as session:
        if session.get(SyncRun, run_id) is not None:
            return False
    return bool(instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_FAILURE, limit=1).records)
