"""Dispatchers that follow the database, not cron strings.

A frequency lives in the database and changes while Dagster runs, so one sensor ticks every
30 seconds, reads every integration, and requests a run for each that is due: a per-integration
cron schedule would be fixed when the code location loads. The run key carries the due slot,
because Dagster never launches a run key twice for the same sensor.
"""


import os
from datetime import timedelta

import dagster as dg

from sf_pipeline import lifecycle, scheduling
from sf_pipeline.defs.jobs import health_job, sync_job
from sf_pipeline.defs.partitions import PARTITIONS_NAME, integrations
from sf_pipeline.defs.resources import SfPipelineResource
from sf_pipeline.health import latest_results
from sf_pipeline.storage.integrations import list_integrations

TICK_SECONDS = 30
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
    busy = busy_partitions(context.instance, sync_job.name)
    requests = []
    with services.database.session() as session:
        rows = list_integrations(session)
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
