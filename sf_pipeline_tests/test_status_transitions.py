"""The four status badges and every transition the operations page describes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from sf_pipeline.connect import connect
from sf_pipeline.salesforce.oauth import ClientCredentials, RefreshTokenImport
from sf_pipeline.sandbox.testing import SandboxHandle
from sf_pipeline.secrets import Cipher
from sf_pipeline.settings import load_settings
from sf_pipeline.storage.database import Database
from sf_pipeline.storage.integrations import get_integration
from sf_pipeline_tests.harness import DEFAULT_SPEC, TEST_KEY, Pipeline, apply, cli, dagster_resource, pipeline

pytestmark = pytest.mark.usefixtures("dagster_env")


def status(p: Pipeline) -> str:
    with p.database.session() as session:
        return get_integration(session, p.name).status


def test_incomplete_until_connected_and_configured_then_active_with_the_initial_sync_requested(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path
) -> None:
    database = Database.from_settings(load_settings({"SF_PIPELINE_HOME": str(tmp_path),
                                                     "SF_PIPELINE_DATABASE_URL": database_url}))
    cipher = Cipher(TEST_KEY)
    try:
        connect(database, cipher, "acme", RefreshTokenImport(
            login_url=small_sandbox.login_url,
            client=ClientCredentials(small_sandbox.client_id, small_sandbox.client_secret),
            refresh_token=small_sandbox.issue_refresh_token()), project_id=42)
        with database.session() as session:
            integration = get_integration(session, "acme")
            assert integration.status == "incomplete"
            assert [(m.field, m.property) for m in integration.mappings] == [
                ("Email", "email"), ("FirstName", "first_name"), ("LastName", "last_name"), ("Phone", "phone")]
            assert integration.sync_requested_at is None
        before = datetime.now(UTC)
        apply(database, cipher, DEFAULT_SPEC.format(name="acme", login_url=small_sandbox.login_url), "acme")
        with database.session() as session:
            integration = get_integration(session, "acme")
            assert integration.status == "active"
            assert integration.sync_requested_at is not None and integration.sync_requested_at >= before
    finally:
        database.dispose()


def test_a_failed_sync_sets_error_and_the_next_successful_sync_returns_active(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path
) -> None:
    with pipeline(small_sandbox, database_url, tmp_path) as p:
        p.sync()
        small_sandbox.org.inject_fault("query", "status", count=50, status=503)
        with pytest.raises(Exception, match=r"503|Service Unavailable|unavailable"):
            p.sync()
        assert status(p) == "error"
        with p.database.session() as session:
            failed = get_integration(session, p.name)
            assert failed.consecutive_failures == 1 and failed.last_error
        small_sandbox.org.faults.clear()
        p.sync()
        assert status(p) == "active"
        with p.database.session() as session:
            assert get_integration(session, p.name).consecutive_failures == 0


def test_transient_faults_are_retried_inside_a_run(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path, dagster_instance: dg.DagsterInstance
) -> None:
    rest = DEFAULT_SPEC.replace("frequency_minutes: 60\n", "frequency_minutes: 60\napi: rest\n")  # REST paging
    with pipeline(small_sandbox, database_url, tmp_path, page_size=200, spec=rest) as p:
        small_sandbox.org.inject_fault("query", "status", count=2, status=503)
        small_sandbox.org.inject_fault("query_more", "drop", count=1)
        dagster_instance.add_dynamic_partitions("integrations", ["acme"])
        from sf_pipeline.definitions import defs

        result = defs.resolve_job_def("sync_integration").execute_in_process(
            partition_key="acme", instance=dagster_instance, resources={"sf_pipeline": dagster_resource(p)})
        assert result.success
        created = result.get_asset_materialization_events()[-1].materialization.metadata["created"].value
        assert created == len(p.users()) > 0
        assert status(p) == "active"


def test_pause_is_inactive_and_survives_syncs_and_health_runs_until_resume(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path
) -> None:
    with pipeline(small_sandbox, database_url, tmp_path) as p:
        p.sync()
        assert cli(p, "integration", "pause", "acme").exit_code == 0
        assert status(p) == "inactive"
        small_sandbox.org.revoke_all_tokens()  # even a failing health run leaves a paused one Inactive
        assert cli(p, "health", "acme", "--json").exit_code == 1
        assert status(p) == "inactive"
        assert cli(p, "integration", "resume", "acme").exit_code == 0
        assert status(p) == "active"
        with p.database.session() as session:
            integration = get_integration(session, p.name)
            assert integration.last_synced_at is not None
            assert integration.last_synced_at > datetime.now(UTC) - timedelta(minutes=5)
