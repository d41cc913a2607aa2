"""The dispatcher: runs follow each integration's frequency as stored in the database, pause
stops them, resume brings the next scheduled one, and a busy integration is never doubled up."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from sf_pipeline import runs
from sf_pipeline.defs.sensors import sync_dispatcher
from sf_pipeline.sandbox.testing import SandboxHandle
from sf_pipeline.storage.integrations import get_integration
from sf_pipeline_tests.harness import Pipeline, cli, dagster_resource, pipeline

pytestmark = pytest.mark.usefixtures("dagster_env")


def tick(p: Pipeline, instance: dg.DagsterInstance, now: datetime) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, resources={"sf_pipeline": dagster_resource(p, now=now)})
    result = sync_dispatcher(context)
    assert isinstance(result, dg.SensorResult)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions("integrations", list(request.partition_keys))
    return result


def add_run(instance: dg.DagsterInstance, status: dg.DagsterRunStatus) -> dg.DagsterRun:
    """A run of ``acme``'s sync job in ``status``, as the run queue or a launcher would leave it."""
    return instance.add_run(dg.DagsterRun(job_name="sync_integration", run_id=str(uuid.uuid4()), status=status,
                                          tags={"dagster/partition": "acme"}))


def requested(result: dg.SensorResult) -> list[str]:
    return [r.partition_key for r in result.run_requests or []]


def last_attempt(p: Pipeline) -> datetime:
    with p.database.session() as session:
        value = get_integration(session, p.name).last_attempt_at
        assert value is not None
        return value


def snapshot(p: Pipeline) -> tuple[object, ...]:
    with p.database.session() as session:
        i = get_integration(session, p.name)
        assert i.credential is not None
        return (
            [(o.object_name, o.match, o.rules) for o in i.objects],
            [(m.field, m.property) for m in i.mappings],
            i.credential.refresh_token_enc,
            i.frequency_minutes,
        )


def test_activation_adds_the_partition_and_requests_the_initial_sync_at_the_next_tick(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path, dagster_instance: dg.DagsterInstance
) -> None:
    with pipeline(small_sandbox, database_url, tmp_path) as p:
        result = tick(p, dagster_instance, datetime.now(UTC))
        assert requested(result) == ["acme"]
        assert result.run_requests[0].tags["sf_pipeline/trigger"] == "activation"
        assert dagster_instance.has_dynamic_partition("integrations", "acme")


def test_a_frequency_change_from_60_to_5_takes_effect_at_the_next_tick(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path, dagster_instance: dg.DagsterInstance
) -> None:
    with pipeline(small_sandbox, database_url, tmp_path) as p:
        p.sync()
        later = last_attempt(p) + timedelta(minutes=6)
        assert requested(tick(p, dagster_instance, later)) == []
        assert cli(p, "integration", "frequency", "acme", "5").exit_code == 0
        result = tick(p, dagster_instance, later)
        assert requested(result) == ["acme"]
        assert result.run_requests[0].run_key.startswith("acme:")
        assert cli(p, "integration", "frequency", "acme", "4").exit_code != 0  # below the minimum


def test_a_paused_integration_gets_no_runs_and_keeps_its_configuration_and_resume_waits_for_the_schedule(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path, dagster_instance: dg.DagsterInstance
) -> None:
    with pipeline(small_sandbox, database_url, tmp_path) as p:
        p.sync()
        before = snapshot(p)
        assert cli(p, "integration", "pause", "acme").exit_code == 0
        for hours in (1, 5, 48):
            assert requested(tick(p, dagster_instance, last_attempt(p) + timedelta(hours=hours))) == []
        assert snapshot(p) == before
        with p.database.session() as session:  # paused for five hours: several syncs were skipped
            get_integration(session, p.name).last_attempt_at = datetime.now(UTC) - timedelta(hours=5)
        assert cli(p, "integration", "resume", "acme").exit_code == 0
        resumed_at = datetime.now(UTC)
        assert requested(tick(p, dagster_instance, resumed_at + timedelta(minutes=1))) == []
        assert requested(tick(p, dagster_instance, resumed_at + timedelta(minutes=61))) == ["acme"]


def test_the_dispatcher_skips_an_integration_whose_run_is_in_progress(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path, dagster_instance: dg.DagsterInstance
) -> None:
    with pipeline(small_sandbox, database_url, tmp_path) as p:
        for status in (dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED):
            run = add_run(dagster_instance, status)
            assert requested(tick(p, dagster_instance, datetime.now(UTC))) == []
            dagster_instance.report_run_canceled(run)
        assert requested(tick(p, dagster_instance, datetime.now(UTC))) == ["acme"]


def test_a_manual_sync_waits_for_a_run_of_the_same_integration_to_finish(
    dagster_instance: dg.DagsterInstance,
) -> None:
    run = add_run(dagster_instance, dg.DagsterRunStatus.STARTED)
    waiting = threading.Event()
    finished: list[dg.DagsterRunStatus] = []

    def finish_once_waiting() -> None:
        assert waiting.wait(60)
        dagster_instance.report_run_canceled(run)

    def on_wait(run_id: str) -> None:
        waited_for.append(run_id)
        waiting.set()

    waited_for: list[str] = []
    threading.Thread(target=finish_once_waiting, daemon=True).start()
    runs.wait_for_partition(dagster_instance, "acme", timeout_s=120, on_wait=on_wait)
    stored = dagster_instance.get_run_by_id(run.run_id)
    assert stored is not None
    finished.append(stored.status)
    assert waited_for == [run.run_id]
    assert finished == [dg.DagsterRunStatus.CANCELED]  # it returned only once the other run had ended


def test_the_instance_configuration_limits_runs_to_one_per_partition(tmp_path: Path) -> None:
    """dagster.yaml's run queue limit: one run per ``dagster/partition`` value (the queue itself is
    Dagster's; this proves the project's instance configuration asks for it)."""
    (tmp_path / "dagster.yaml").write_text(Path("dagster.yaml").read_text())
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        assert {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits
    finally:
        instance.dispose()
