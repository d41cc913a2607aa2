"""Dispatchers that follow the database, not cron strings.

A frequency lives in the database and changes while Dagster runs, so one sensor ticks every
30 seconds, reads every integration, and requests a run for each that is due: a per-integration
cron schedule would be fixed when the code location loads. The run key carries the due slot,
because Dagster never launches a run key twice for the same sensor.

Runs also end badly outside any step: a worker killed or out of memory, a run canceled from the
UI. ``run_watchdog`` marks runs whose worker stopped showing life as failed, and the two run
status sensors turn any sync run that ended FAILURE or CANCELED without recording how into
``sync_failed`` and Error, with Dagster's reason; either way the integration's slot is freed, so
the dispatcher requests a fresh run (see ``sf_pipeline.lost_runs``).
"""


import os
from datetime import UTC, datetime, timedelta

import dagster as dg

from sf_pipeline import leases, lifecycle, lost_runs, scheduling
from sf_pipeline.defs.jobs import health_job, sync_job
from sf_pipeline.defs.partitions import PARTITIONS_NAME, integrations
from sf_pipeline.defs.resources import SfPipelineResource
from sf_pipeline.health import latest_results
from sf_pipeline.storage.integrations import list_integrations

TICK_SECONDS = int(os.environ.get("SF_PIPELINE_DISPATCH_SECONDS", "30"))
# How often dead runs are looked for, and how soon a failed run's outcome is recorded. With the
# lease's time to live (45 s) a dead run is failed within about a minute of its last heartbeat.
WATCHDOG_SECONDS = int(os.environ.get("SF_PIPELINE_WATCHDOG_SECONDS", "10"))
HEALTH_INTERVAL_ENV = "SF_PIPELINE_HEALTH_INTERVAL_MINUTES"
# QUEUED is not among Dagster's "in progress" statuses, so list them all.
ACTIVE_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def busy_partitions(instance: dg.DagsterInstance, job_name: str) -> set[str]:
    records = instance.get_run_records(dg.RunsFilter(job_name=job_name, statuses=ACTIVE_STATUSES))
    return {r.dagster_run.tags.get("dagster/partition", "") for r in records}


def health_interval() -> timedelta:
    minutes = os.environ.get(HEALTH_INTERVAL_ENV)
    return timedelta(minutes=int(minutes)) if minutes else scheduling.DEFAULT_HEALTH_INTERVAL


@dg.sensor(job=sync_job, minimum_interval_seconds=TICK_SECONDS, default_status=dg.DefaultSensorStatus.RUNNING)
def sync_dispatcher(context: dg.SensorEvaluationContext, sf_pipeline: SfPipelineResource) -> dg.SensorResult:
    services = sf_pipeline.services()
    now = services.now()
    # Busy: a sync run queued or running, or any run holding the integration's lease (a sync
    # from the CLI or the UI, a health run).
    busy = busy_partitions(context.instance, sync_job.name) | set(leases.live_holders(services.database))
    requests = []
    with services.database.session() as session:
        rows = scheduling.schedule_rows(session)
        names = {row.name for row in rows}
        for row in rows:
            if row.name in busy or not scheduling.is_due(row, now):
                continue
            trigger = "activation" if row.sync_requested_at is not None else "schedule"
            requests.append(dg.RunRequest(partition_key=row.name, run_key=scheduling.run_key(row),
                                          tags={"sf_pipeline/trigger": trigger}))
    known = set(context.instance.get_dynamic_partitions(PARTITIONS_NAME))
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[integrations.build_add_request(sorted(names - known))] if names - known else [],
    )


@dg.sensor(job=health_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def health_dispatcher(context: dg.SensorEvaluationContext, sf_pipeline: SfPipelineResource) -> dg.SensorResult:
    services = sf_pipeline.services()
    now = services.now()
    interval = health_interval()
    busy = busy_partitions(context.instance, health_job.name) | busy_partitions(context.instance, sync_job.name)
    known = set(context.instance.get_dynamic_partitions(PARTITIONS_NAME))
    requests = []
    with services.database.session() as session:
        for row in list_integrations(session):
            if not lifecycle.is_monitored(row) or row.name in busy or row.name not in known:
                continue
            if not scheduling.health_due(latest_results(session, row), now, interval):
                continue
            slot = scheduling.health_slot(now, interval)
            # A run of only partitioned checks takes its partition from this tag, not partition_key.
            requests.append(dg.RunRequest(run_key=f"health:{row.name}:{slot}",
                                          tags={"dagster/partition": row.name, "sf_pipeline/trigger": "health"}))
    return dg.SensorResult(run_requests=requests)


@dg.sensor(minimum_interval_seconds=WATCHDOG_SECONDS, default_status=dg.DefaultSensorStatus.RUNNING)
def run_watchdog(context: dg.SensorEvaluationContext, sf_pipeline: SfPipelineResource) -> dg.SkipReason:
    """Fails in-progress runs whose worker died: the lease holder's heartbeat (or, before it took
    the lease, the run's last event) is older than the lease's time to live. Covers runs the CLI
    executes in its own process as well as runs the daemon launched, on any host."""
    services = sf_pipeline.services()
    reaped = lost_runs.reap_dead_runs(context.instance, services.database, services.settings)
    return dg.SkipReason(f"marked failed: {', '.join(reaped)}" if reaped else "every running run is alive")


def _record_unfinished_sync(context: dg.RunStatusSensorContext, sf_pipeline: SfPipelineResource) -> None:
    run = context.dagster_run
    name = run.tags.get(lost_runs.PARTITION_TAG)
    if not name or not lost_runs.is_sync_run(run):
        return
    services = sf_pipeline.services()
    leases.release(services.database, run.run_id)
    if lost_runs.refused_before_sync(context.instance, services.database, run.run_id):
        return
    reason = context.dagster_event.message or f"run {run.status.value.lower()}"
    record = context.instance.get_run_record_by_id(run.run_id)
    started = record.start_time if record is not None else None
    if lost_runs.record_lost_run(services.database, services.settings, name, run.run_id, reason,
                            started_at=datetime.fromtimestamp(started, UTC) if started else None):
        context.log.info(f"Recorded sync_failed for run {run.run_id} of '{name}': {reason}")


# ``monitor_all_code_locations``: runs the CLI executes in its own process carry no code location,
# and Dagster would skip them for a sensor watching only this location's jobs.
@dg.run_status_sensor(run_status=dg.DagsterRunStatus.FAILURE, monitor_all_code_locations=True,
                      minimum_interval_seconds=WATCHDOG_SECONDS, default_status=dg.DefaultSensorStatus.RUNNING)
def sync_failure_sensor(context: dg.RunStatusSensorContext, sf_pipeline: SfPipelineResource) -> None:
    """A sync run that failed without recording ``sync_failed`` (outside a step) records it now."""
    _record_unfinished_sync(context, sf_pipeline)


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.CANCELED, monitor_all_code_locations=True,
                      minimum_interval_seconds=WATCHDOG_SECONDS, default_status=dg.DefaultSensorStatus.RUNNING)
def sync_canceled_sensor(context: dg.RunStatusSensorContext, sf_pipeline: SfPipelineResource) -> None:
    """A sync run canceled (from the UI, or by Dagster's run monitoring) records ``sync_failed``."""
    _record_unfinished_sync(context, sf_pipeline)
