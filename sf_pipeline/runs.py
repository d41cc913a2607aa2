"""Running the pipeline's Dagster jobs from the CLI on the project's own Dagster instance, so
every run the CLI starts appears in the Dagster UI beside scheduled ones.

A run the CLI executes takes its integration's lease (``sf_pipeline.leases``) *before* its Dagster
run exists, so a second ``sf-pipeline sync`` waits without a run of its own, and runs the job in
this process; a run the daemon launched takes the lease in its first moments (the ``run_lease``
resource) and waits there if the CLI got it first. Dead runs in the way are reaped first
(``sf_pipeline.lost_runs``).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from sqlalchemy.exc import IntegrityError

from sf_pipeline import leases
from sf_pipeline.lost_runs import PARTITION_TAG, reap_dead_runs, running_runs
from sf_pipeline.settings import Settings, load_settings
from sf_pipeline.storage.database import Database
from sf_pipeline.storage.models import SyncRun

ProgressCallback = Callable[[int, int | None], None]
# The project's instance settings (run queue limits, run monitoring, managed loggers) sit beside
# the package in a source checkout or the deployment image.
PROJECT_INSTANCE_CONFIG = Path(__file__).resolve().parent.parent / "dagster.yaml"
# Without any dagster.yaml, Dagster prints a warning on every instance load: in the CLI, on every
# sync. An installation without the project file gets Dagster's defaults, said in a file.
DEFAULT_INSTANCE_CONFIG = """\
# Dagster's default instance settings: runs, events and schedules in SQLite in this folder.
# The project's dagster.yaml (run queue limits, run monitoring) can replace this file.
telemetry:
  enabled: false
"""


def dagster_instance(settings: Settings) -> dg.DagsterInstance:
    """The instance under ``DAGSTER_HOME`` (default ``<home>/dagster``), given the project's
    ``dagster.yaml`` on first use (the one in the current folder, else the project's own)."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        source = next((p for p in (Path("dagster.yaml"), PROJECT_INSTANCE_CONFIG) if p.is_file()), None)
        if source is not None:
            shutil.copyfile(source, config)
        else:
            config.write_text(DEFAULT_INSTANCE_CONFIG, encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(home)
    ready = home / ".storage-ready"
    if ready.exists():
        return dg.DagsterInstance.get()
    # Dagster's SQLite storages create their tables and stamp Alembic's version the first time each
    # is opened, with no lock: processes opening a new instance at once (three `sf-pipeline sync`
    # started together) both insert the version row and one fails. The first open of each storage
    # therefore happens under a file lock, once per Dagster home.
    with open(home / ".storage-init.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            instance = dg.DagsterInstance.get()
            instance.get_runs_count()  # run storage
            instance.has_dynamic_partition("integrations", "")  # event log storage
            instance.all_instigator_state()  # schedule storage
            ready.touch()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return instance


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
    run_config: dict[str, Any] | None = None,
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
            run_config=run_config,
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
