"""The run's hold on its integration: taken when the run starts, heartbeating, given back at its end.

A function-style resource (its setup and teardown are a context manager) so that it costs nothing
where it is not needed: Dagster initialises a resource only for runs whose steps require it, and
sensors never do. The run-scoped IO manager requires it, so every run that materializes a sync
asset (from the CLI, the dispatcher, the UI or a backfill) holds the lease. With the in-process
executor Dagster sets it up once per run, before the first step, in the run's worker process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import dagster as dg

from sf_pipeline import leases

LEASE_WAIT_ENV = "SF_PIPELINE_LEASE_WAIT_SECONDS"
DEFAULT_LEASE_WAIT_SECONDS = 7200.0
PARTITION_TAG = "dagster/partition"


@dg.resource(required_resource_keys={"sf_pipeline"})
def run_lease(context: dg.InitResourceContext) -> Iterator[None]:
    run = context.dagster_run
    name = run.tags.get(PARTITION_TAG) if run is not None else None
    if run is None or not name:
        yield None  # not a run about one integration
        return
    database = context.resources.sf_pipeline.services().database
    last_said = [0.0]

    def waiting(holder: leases.Holder | None) -> None:
        # Logged every heartbeat interval: a waiting run's events are its sign of life.
        if time.monotonic() - last_said[0] >= leases.heartbeat_interval() and context.log is not None:
            last_said[0] = time.monotonic()
            who = holder.describe() if holder else "another run"
            context.log.info(f"Waiting for {who} to finish with integration '{name}'")

    timeout = float(os.environ.get(LEASE_WAIT_ENV, DEFAULT_LEASE_WAIT_SECONDS))
    leases.acquire(database, name, run.run_id, timeout_s=timeout, on_wait=waiting)
    heartbeat = leases.Heartbeat.start(database, run.run_id)
    try:
        yield None
    finally:
        heartbeat.stop()
        leases.release(database, run.run_id)
