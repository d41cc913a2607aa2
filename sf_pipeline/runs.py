"""Running the pipeline's Dagster jobs from the CLI on the project's own Dagster instance, so
every run the CLI starts appears in the Dagster UI beside scheduled ones."""

from __future__ import annotations

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

from sf_pipeline.settings import Settings
from sf_pipeline.storage.database import Database
from sf_pipeline.storage.models import SyncRun

ProgressCallback = Callable[[int, int | None], None]


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
        instance.add_dynamic_partitions(PARTITIONS_NAME, [name])


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
    """A run of the same integration is in progress or queued: wait for it, like the run queue does."""
    from sf_pipeline.defs.sensors import ACTIVE_STATUSES

    deadline = time.monotonic() + timeout_s
    announced = False
    while True:
        records = instance.get_run_records(dg.RunsFilter(tags={"dagster/partition": name}, statuses=ACTIVE_STATUSES))
        if not records:
            return
        if on_wait and not announced:
            on_wait(records[0].dagster_run.run_id)
            announced = True
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {records[0].dagster_run.run_id} of '{name}' is still in progress")
        time.sleep(1.0)


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
) -> JobOutcome:
    from sf_pipeline.definitions import defs

    job = defs.resolve_job_def(job_name)
    run_id = str(uuid.uuid4())  # the form Dagster's own run ids take
    stop = threading.Event()
    watcher = None
    if on_progress is not None and database is not None:
        watcher = threading.Thread(target=_watch, args=(database, run_id, on_progress, stop), daemon=True)
        watcher.start()
    try:
        result = job.execute_in_process(
            instance=instance,
            partition_key=name if partitioned else None,
            tags=tags if partitioned else {**tags, "dagster/partition": name},
            run_id=run_id,
            raise_on_error=False,
        )
    finally:
        stop.set()
        if watcher is not None:
            watcher.join()
    error = None
    if not result.success:
        failures = [e for e in result.all_events if e.is_step_failure]
        error = _failure_description(failures[0]) if failures else "run failed"
    return JobOutcome(run_id=run_id, success=result.success, error=error)


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
