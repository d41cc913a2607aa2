"""The sync as Dagster runs it: one partition per integration, three stages, metadata, checks."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import select

from sf_pipeline.definitions import defs
from sf_pipeline.events import EventType
from sf_pipeline.sandbox.testing import SandboxHandle
from sf_pipeline.storage.models import Integration, LogEvent
from sf_pipeline_tests.harness import Pipeline, dagster_resource, pipeline

pytestmark = pytest.mark.usefixtures("dagster_env")
SUMMARY_KEYS = {"fetched", "created", "updated", "unchanged", "deleted", "invalid_values", "api_calls",
                "duration_s", "watermark_before", "watermark_after"}


def run_sync(p: Pipeline, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    instance.add_dynamic_partitions("integrations", [p.name])
    return defs.resolve_job_def("sync_integration").execute_in_process(
        partition_key=p.name, instance=instance, resources={"sf_pipeline": dagster_resource(p)},
        raise_on_error=False,
    )


def events(p: Pipeline) -> list[LogEvent]:
    with p.database.session() as session:
        return list(session.scalars(select(LogEvent).order_by(LogEvent.id)))


def test_materializing_a_partition_runs_its_sync_in_three_stages_with_metadata(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path, dagster_instance: dg.DagsterInstance
) -> None:
    with pipeline(small_sandbox, database_url, tmp_path) as p:
        result = run_sync(p, dagster_instance)
        assert result.success
        materialized = [e.asset_key.path[-1] for e in result.get_asset_materialization_events()]
        assert materialized == ["salesforce_records", "user_changes", "spotzee_users"]
        final = result.get_asset_materialization_events()[-1].materialization
        assert final.partition == "acme"
        assert set(final.metadata) >= SUMMARY_KEYS
        assert final.metadata["created"].value == len(p.users()) > 0
        assert final.metadata["watermark_after"].value["Lead"] is not None
        checks = {(c.check_name, c.partition, c.passed) for c in result.get_asset_check_evaluations()}
        assert checks == {(n, "acme", True) for n in ("credentials", "field_mappings", "api_limits",
                                                       "sync_staleness")}
        types = [e.type for e in events(p)]
        assert types[0] == EventType.SYNC_STARTED
        assert EventType.RECORDS_IMPORTED in types and EventType.SYNC_COMPLETED in types
        assert all(e.run_id == result.run_id for e in events(p) if e.type != EventType.HEALTH_CHECK)

        again = run_sync(p, dagster_instance)
        assert again.success
        metadata = again.get_asset_materialization_events()[-1].materialization.metadata
        assert (metadata["created"].value, metadata["updated"].value, metadata["deleted"].value) == (0, 0, 0)


def test_revoked_credentials_fail_the_run_before_anything_is_written(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path, dagster_instance: dg.DagsterInstance
) -> None:
    with pipeline(small_sandbox, database_url, tmp_path) as p:
        small_sandbox.org.revoke_all_tokens()
        result = run_sync(p, dagster_instance)
        assert not result.success
        failure = next(e for e in result.all_events if e.is_step_failure)
        assert "credentials" in (failure.step_failure_data.user_failure_data.description or "")
        assert p.users() == {}
        with p.database.session() as session:
            integration = session.scalars(select(Integration)).one()
            assert integration.status == "error"
        logged = events(p)
        assert any(e.type == EventType.SYNC_FAILED and "credentials" in (e.error or "") for e in logged)
        assert any(e.type == EventType.HEALTH_CHECK and e.details.get("check") == "credentials"
                   and not e.details["passed"] for e in logged)
