"""A sync run that Dagster ends FAILURE or CANCELED without the sync recording it (its worker was
lost, it was canceled from the UI) becomes ``sync_failed`` and Error with Dagster's reason, and
frees its slot: the dispatcher's next tick requests a fresh run under a new run key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from sf_pipeline.definitions import defs
from sf_pipeline.defs.sensors import sync_canceled_sensor, sync_dispatcher, sync_failure_sensor
from sf_pipeline.sandbox.testing import SandboxHandle
from sf_pipeline.scheduling import sync_interval
from sf_pipeline.storage.integrations import get_integration
from sf_pipeline.sync import lifecycle
from sf_pipeline_tests.harness import Pipeline, dagster_resource, pipeline
from sf_pipeline_tests.runs.procs import events

pytestmark = pytest.mark.usefixtures("dagster_env")


def settle(p: Pipeline) -> None:
    """As after a successful scheduled sync: Active, nothing requested, just attempted."""
    with p.database.session() as session:
        integration = get_integration(session, p.name)
        integration.sync_requested_at = None
        integration.last_attempt_at = datetime.now(UTC)


def dispatch(p: Pipeline, instance: dg.DagsterInstance) -> list[dg.RunRequest]:
    context = dg.build_sensor_context(instance=instance, resources={"sf_pipeline": dagster_resource(p)})
    result = sync_dispatcher(context)
    assert isinstance(result, dg.SensorResult)
    return list(result.run_requests or [])


def end_run(instance: dg.DagsterInstance, p: Pipeline, *, canceled: bool, started_sync: bool) -> dg.DagsterRun:
    run = instance.create_run_for_job(defs.resolve_job_def("sync_integration"), tags={"dagster/partition": p.name})
    if started_sync:
        with p.database.session() as session:
            lifecycle.begin_run(session, get_integration(session, p.name), run.run_id, full=False,
                                now=datetime.now(UTC))
    sensor = sync_canceled_sensor if canceled else sync_failure_sensor
    event = (instance.report_run_canceled(run, "Canceled from the UI") if canceled
             else instance.report_run_failed(run, "Run worker lost"))
    ended = instance.get_run_by_id(run.run_id)
    assert ended is not None
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name, dagster_event=event, dagster_instance=instance, dagster_run=ended,
        resources={"sf_pipeline": dagster_resource(p)},
    )
    sensor(context)
    return ended


@pytest.mark.parametrize("canceled", [False, True], ids=["failed", "canceled"])
@pytest.mark.parametrize("started_sync", [True, False], ids=["mid-sync", "before-the-sync-started"])
def test_a_sync_run_ended_by_dagster_records_sync_failed_and_frees_its_slot(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path, dagster_instance: dg.DagsterInstance,
    canceled: bool, started_sync: bool,
) -> None:
    with pipeline(small_sandbox, database_url, tmp_path) as p:
        dagster_instance.add_dynamic_partitions("integrations", [p.name])
        settle(p)
        assert dispatch(p, dagster_instance) == [], "not due: the frequency is an hour"
        run = end_run(dagster_instance, p, canceled=canceled, started_sync=started_sync)

        failed = [e for e in events(p, "sync_failed") if e.run_id == run.run_id]
        assert len(failed) == 1
        assert failed[0].error == ("Canceled from the UI" if canceled else "Run worker lost")
        with p.database.session() as session:
            integration = get_integration(session, p.name)
            assert integration.status == "error"
            assert integration.consecutive_failures == 1
            assert integration.last_error == failed[0].error
        requests = dispatch(p, dagster_instance)
        assert [r.partition_key for r in requests] == [p.name], "the next tick launches a fresh run"

        # The same run's end seen again (a sensor retry) records nothing more.
        end_again = dg.build_run_status_sensor_context(
            sensor_name=sync_failure_sensor.name,
            dagster_event=dagster_instance.report_run_failed(run, "again"),
            dagster_instance=dagster_instance, dagster_run=run, resources={"sf_pipeline": dagster_resource(p)})
        if started_sync:
            sync_failure_sensor(end_again)
            assert len([e for e in events(p, "sync_failed") if e.run_id == run.run_id]) == 1


def test_a_second_loss_in_a_row_backs_off_under_a_new_run_key(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path, dagster_instance: dg.DagsterInstance,
) -> None:
    with pipeline(small_sandbox, database_url, tmp_path) as p:
        dagster_instance.add_dynamic_partitions("integrations", [p.name])
        settle(p)
        end_run(dagster_instance, p, canceled=False, started_sync=False)
        first = dispatch(p, dagster_instance)
        assert [r.partition_key for r in first] == [p.name]
        end_run(dagster_instance, p, canceled=False, started_sync=False)
        assert dispatch(p, dagster_instance) == [], "the second loss in a row waits for the backed-off slot"
        with p.database.session() as session:
            integration = get_integration(session, p.name)
            assert integration.consecutive_failures == 2 and integration.sync_requested_at is None
        with p.database.session() as session:
            when = datetime.now(UTC) + sync_interval(get_integration(session, p.name)) + timedelta(seconds=1)
        later = dg.build_sensor_context(instance=dagster_instance,
                                        resources={"sf_pipeline": dagster_resource(p, now=when)})
        result = sync_dispatcher(later)
        assert isinstance(result, dg.SensorResult)
        keys = [r.run_key for r in result.run_requests or []]
        assert len(keys) == 1 and keys[0] != first[0].run_key


