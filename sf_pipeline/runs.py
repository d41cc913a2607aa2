"""Running the pipeline's Dagster jobs from the CLI on the project's own Dagster instance, so
every run the CLI starts appears in the Dagster UI beside scheduled ones; and noticing runs
whose worker died.

Every run that works on an integration holds its lease (``sf_pipeline.leases``) and heartbeats
it. A run the CLI executes takes the lease *before* its Dagster run exists, so a second
``sf-pipeline sync`` waits without a run of its own; a run the daemon launched takes it in its
first moments (``SfPipelineResource.setup_for_execution``) and waits there if the CLI got it
first. A run is dead when Dagster still shows it in progress but nothing in it has shown life
for the lease's time to live: the lease's heartbeat for a holder, the run's last event for a run
still waiting for the lease. Dead runs are reaped: Dagster marks them failed with the reason, the
lease is freed, and the sync records ``sync_failed`` (see ``record_lost_run``).
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
from sqlalchemy.exc import IntegrityError

from sf_pipeline import leases
from sf_pipeline.settings import Settings, load_settings
from sf_pipeline.storage.database import Database
from sf_pipeline.storage.integrations import find_integration
from sf_pipeline.storage.models import IntegrationStatus, SyncRun
from sf_pipeline.sync import lifecycle

ProgressCallback = Callable[[int, int | None], None]
PARTITION_TAG = "dagster/partition"
# Statuses in which a run may be working on its integration. QUEUED runs are not: the queue
# launches them only when the partition is free, and they take the lease when they start.
RUNNING_STATUSES = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
SYNC_ASSETS = frozenset({dg.AssetKey("salesforce_records"), dg.AssetKey("user_changes"), dg.AssetKey("spotzee_users")})
SYNC_JOB = "sync_integration"


def dagster_instance(settings: Settings) -> dg.DagsterInstance:
    """The instance under ``DAGSTER_HOME`` (default ``<home>/dagster``), given the project's
    ``dagster.yaml`` on first use when run from the project folder."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() and Path("dagster.yaml").exists():
        shutil.copyfile("dagster.yaml", config)
    os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


def ensure_partition(instance: dg.DagsterInstance, name: str) -> None:
    from sf_pipeline.defs.partitions import PARTITIONS_NAME

    if not instance.has_dynamic_partition(PARTITIONS_NAME, name):
        try:
            instance.add_dynamic_partitions(PARTITIONS_NAME, [name])
        except IntegrityError:
            # Dagster's SQL storage checks then inserts: another process added it in between.
            if not instance.has_dynamic_partition(PARTITIONS_NAME, name):
                raise


def register_partition(settings: Settings, name: str) -> None:
    """Give a new integration its Dagster partition at once (the dispatcher would add it at its
    next tick), so it can be materialized from the UI straight away."""
    instance = dagster_instance(settings)
    try:
        ensure_partition(instance, name)
    finally:
        instance.dispose()


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


def wait_for_partition(
    instance: dg.DagsterInstance, name: str, *, timeout_s: float, on_wait: Callable[[str], None] | None = None
) -> None:
    """Wait until no run of ``name`` is starting or running (dead ones are not waited for: see
    ``execute``, which reaps them)."""
    deadline = time.monotonic() + timeout_s
    announced = False
    while True:
        records = running_runs(instance, name)
        if not records:
            return
        if on_wait and not announced:
            on_wait(records[0].dagster_run.run_id)
            announced = True
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {records[0].dagster_run.run_id} of '{name}' is still in progress")
        time.sleep(0.5)


@dataclass
class JobOutcome:
    run_id: str
    success: bool
    error: str | None


def execute(
    instance: dg.DagsterInstance,
    job_name: str,
    *,
    name: str,
    tags: dict[str, str],
    partitioned: bool,
    database: Database | None = None,
    on_progress: ProgressCallback | None = None,
    wait_timeout_s: float = 3600,
    on_wait: Callable[[str], None] | None = None,
) -> JobOutcome:
    """Run ``job_name`` for integration ``name`` in this process, holding the integration's lease.

    Waits (up to ``wait_timeout_s``, then ``TimeoutError``) while another live run holds the lease
    or is starting; dead runs in the way are reaped first. ``on_wait`` gets the run id waited for,
    once."""
    from sf_pipeline.definitions import defs

    settings = load_settings()
    own_database = database is None
    db = database or Database.from_settings(settings)
    job = defs.resolve_job_def(job_name)
    run_id = str(uuid.uuid4())  # Dagster's run ids are UUID4 strings
    announced: list[str] = []

    def no_run_starting() -> bool:
        reap_dead_runs(instance, db, settings, name)
        return not running_runs(instance, name)

    def waiting(holder: leases.Holder | None) -> None:
        if on_wait is None or announced:
            return
        starting = running_runs(instance, name)
        who = holder.run_id if holder else (starting[0].dagster_run.run_id if starting else None)
        if who:
            announced.append(who)
            on_wait(who)

    heartbeat: leases.Heartbeat | None = None
    stop = threading.Event()
    watcher = None
    try:
        leases.acquire(db, name, run_id, timeout_s=wait_timeout_s, may_take=no_run_starting, on_wait=waiting)
        heartbeat = leases.Heartbeat.start(db, run_id)
        if on_progress is not None:
            watcher = threading.Thread(target=_watch, args=(db, run_id, on_progress, stop), daemon=True)
            watcher.start()
        result = job.execute_in_process(
            instance=instance,
            partition_key=name if partitioned else None,
            tags=tags if partitioned else {**tags, PARTITION_TAG: name},
            run_id=run_id,
            raise_on_error=False,
        )
    finally:
        stop.set()
        if watcher is not None:
            watcher.join()
        if heartbeat is not None:
            heartbeat.stop()
        leases.release(db, run_id)
        if own_database:
            db.dispose()
    error = None
    if not result.success:
        failures = [e for e in result.all_events if e.is_step_failure]
        error = _failure_description(failures[0]) if failures else _run_failure(instance, run_id)
        # The run's own files are useless once it failed; a later run starts afresh.
        shutil.rmtree(settings.work_dir / name / run_id, ignore_errors=True)
    return JobOutcome(run_id=run_id, success=result.success, error=error)


def _run_failure(instance: dg.DagsterInstance, run_id: str) -> str:
    failure = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_FAILURE, limit=1,
                                           ascending=False).records
    message = failure[0].event_log_entry.dagster_event.message if failure else None  # type: ignore[union-attr]
    return str(message) if message else "run failed"


def _failure_description(event: Any) -> str:
    data = event.step_failure_data
    if data.user_failure_data is not None and data.user_failure_data.description:
        return str(data.user_failure_data.description)
    return str(data.error.message).strip() if data.error else "run failed"


def _watch(database: Database, run_id: str, on_progress: ProgressCallback, stop: threading.Event) -> None:
    while not stop.wait(0.3):
        with database.session() as session:
            run = session.get(SyncRun, run_id)
            if run is not None:
                on_progress(run.fetched, run.total)
