"""Runs shaped like the ones the Dagster UI launches: the implicit asset job with an asset
selection and a partition (Materialize on one asset, Materialize all), one run per partition (a
backfill of several partitions), launchpad run config, and checks-only runs from the Checks tab
(with a partition tag, or with none at all, as *Execute all* sends)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from sqlalchemy import select

from sf_pipeline.connect import connect
from sf_pipeline.definitions import defs
from sf_pipeline.defs.assets import salesforce_sync
from sf_pipeline.defs.checks import salesforce_health
from sf_pipeline.defs.run_lease import run_lease
from sf_pipeline.events import EventType
from sf_pipeline.health import CheckName
from sf_pipeline.salesforce.oauth import ClientCredentials, RefreshTokenImport
from sf_pipeline.sandbox import Org, ids
from sf_pipeline.sandbox.testing import SandboxHandle, serve_in_thread
from sf_pipeline.storage.integrations import get_integration
from sf_pipeline.storage.models import LogEvent
from sf_pipeline_tests.harness import DEFAULT_SPEC, Pipeline, apply, dagster_resource, pipeline

pytestmark = pytest.mark.usefixtures("dagster_env")
USERS = dg.AssetKey("spotzee_users")
RECORDS = dg.AssetKey("salesforce_records")
CHANGES = dg.AssetKey("user_changes")
CHECK_KEYS = [dg.AssetCheckKey(USERS, c.value) for c in CheckName]
EVENT_NAMES = {e.value for e in EventType}


def asset_job(p: Pipeline) -> dg.JobDefinition:
    """The job the UI launches asset materializations and check executions on, with the
    resource pointing at this test's database."""
    return dg.Definitions(
        assets=[salesforce_sync], asset_checks=[salesforce_health],
        resources={"sf_pipeline": dagster_resource(p), "run_lease": run_lease},
    ).resolve_implicit_global_asset_job_def()


def launch(
    p: Pipeline, instance: dg.DagsterInstance, *, assets: list[dg.AssetKey], partition: str | None,
    checks: list[dg.AssetCheckKey] | None = None, run_config: dict[str, Any] | None = None,
    tags: dict[str, str] | None = None,
) -> dg.ExecuteInProcessResult:
    instance.add_dynamic_partitions("integrations", [p.name])
    job = asset_job(p)
    if checks is not None:  # an explicit check selection, as the Checks tab sends
        job = job.get_subset(asset_selection=set(assets), asset_check_selection=set(checks))
    return job.execute_in_process(
        instance=instance, partition_key=partition, asset_selection=assets if checks is None else None,
        run_config=run_config, tags=tags, raise_on_error=False,
    )


def logged(p: Pipeline, run_id: str | None = None) -> list[LogEvent]:
    with p.database.session() as session:
        query = select(LogEvent).order_by(LogEvent.id)
        if run_id is not None:
            query = query.where(LogEvent.run_id == run_id)
        return list(session.scalars(query))


def status(p: Pipeline, name: str | None = None) -> str:
    with p.database.session() as session:
        return get_integration(session, name or p.name).status


def dagster_messages(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [entry.user_message for entry in instance.all_logs(run_id)]


def materialized(result: dg.ExecuteInProcessResult) -> list[str]:
    return [e.asset_key.to_user_string() for e in result.get_asset_materialization_events()]


def test_materializing_spotzee_users_alone_runs_the_whole_sync_in_its_run(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path, dagster_instance: dg.DagsterInstance
) -> None:
    with pipeline(small_sandbox, database_url, tmp_path) as p:
        first = launch(p, dagster_instance, assets=[RECORDS, CHANGES, USERS], partition=p.name)
        assert first.success
        assert materialized(first) == ["salesforce_records", "user_changes", "spotzee_users"]
        [contact] = small_sandbox.org.query("SELECT Id FROM Contact LIMIT 1")["records"]
        small_sandbox.org.update("Contact", contact["Id"], {"Email": "moved@example.test"})

        alone = launch(p, dagster_instance, assets=[USERS], partition=p.name)

        assert alone.success
        assert materialized(alone) == ["spotzee_users"]
        metadata = alone.get_asset_materialization_events()[0].materialization.metadata
        assert metadata["updated"].value == 1 and metadata["fetched"].value >= 1
        assert any(u["email"] == "moved@example.test" for u in p.users().values())
        assert status(p) == "active"
        types = [e.type for e in logged(p, alone.run_id)]
        assert types[0] == EventType.SYNC_STARTED and EventType.SYNC_COMPLETED in types
        assert EventType.SYNC_FAILED not in types
        # Its intermediates were its own and are gone once it finished.
        assert not (p.services.settings.work_dir / p.name / alone.run_id).exists()


def test_an_upstream_only_selection_is_refused_before_anything_changes(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path, dagster_instance: dg.DagsterInstance
) -> None:
    with pipeline(small_sandbox, database_url, tmp_path) as p:
        p.sync()
        before_users, before_events, before_status = p.users(), len(logged(p)), status(p)
        for selection in ([RECORDS], [CHANGES], [RECORDS, CHANGES]):
            result = launch(p, dagster_instance, assets=selection, partition=p.name)
            assert not result.success
            failure = next(e for e in result.all_events if e.is_step_failure)
            message = failure.step_failure_data.user_failure_data.description or ""
            assert "materialize spotzee_users" in message and "nothing was read or written" in message
            assert failure.step_failure_data.error is None or "Traceback" not in message
            assert materialized(result) == []
        assert p.users() == before_users
        assert len(logged(p)) == before_events
        assert status(p) == before_status == "active"


@contextmanager
def second_org(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, first: SandboxHandle) -> Iterator[SandboxHandle]:
    """Another sandbox org (an org belongs to one integration), trusted beside the first."""
    org = Org(seed=4)
    org.org_id = org.auth.org_id = ids.make_id(ids.KEY_PREFIXES["Organization"], 2)
    with serve_in_thread(org, records=120, seed=4) as second:
        assert first.ca_bundle and second.ca_bundle
        bundle = tmp_path / "two-orgs-ca.pem"
        bundle.write_text(Path(first.ca_bundle).read_text() + Path(second.ca_bundle).read_text())
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
        monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
        yield second


def test_each_partition_of_a_backfill_syncs_its_own_integration(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path, dagster_instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Several partitions from the UI make a backfill: one run per partition (no single-run
    backfill policy), each of which is this run."""
    with pipeline(small_sandbox, database_url, tmp_path) as acme, \
            second_org(monkeypatch, tmp_path, small_sandbox) as other:
        beta = second_integration(acme, other, "beta")
        assert salesforce_sync_backfill_policy() is None
        for p in (acme, beta):
            result = launch(p, dagster_instance, assets=[RECORDS, CHANGES, USERS], partition=p.name)
            assert result.success
            assert {e.partition for e in result.get_asset_materialization_events()} == {p.name}
            assert {(c.partition, c.passed) for c in result.get_asset_check_evaluations()} == {(p.name, True)}
        assert {external_id.split("_")[1] for external_id in acme.users()} == {"acme", "beta"}
        assert status(acme) == status(beta, "beta") == "active"


def second_integration(p: Pipeline, sandbox: SandboxHandle, name: str) -> Pipeline:
    """Another integration in the same database, connected to ``sandbox``."""
    connect(p.database, p.services.cipher, name, RefreshTokenImport(
        login_url=sandbox.login_url, client=ClientCredentials(sandbox.client_id, sandbox.client_secret),
        refresh_token=sandbox.issue_refresh_token()), project_id=42)
    apply(p.database, p.services.cipher, DEFAULT_SPEC.format(name=name, login_url=sandbox.login_url), name)
    return Pipeline(sandbox=sandbox, services=p.services, name=name)


def salesforce_sync_backfill_policy() -> object:
    graph = defs.resolve_asset_graph()
    return graph.get(USERS).backfill_policy


def test_full_resync_is_run_config_and_the_old_tag_still_works(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path, dagster_instance: dg.DagsterInstance
) -> None:
    with pipeline(small_sandbox, database_url, tmp_path) as p:
        assert launch(p, dagster_instance, assets=[USERS], partition=p.name).success
        incremental = launch(p, dagster_instance, assets=[USERS], partition=p.name)
        full = launch(p, dagster_instance, assets=[USERS], partition=p.name,
                      run_config={"ops": {"salesforce_sync": {"config": {"full": True}}}})
        tagged = launch(p, dagster_instance, assets=[USERS], partition=p.name, tags={"sf_pipeline/full": "true"})
        fetched = {}
        for label, result in (("incremental", incremental), ("full", full), ("tagged", tagged)):
            assert result.success
            fetched[label] = result.get_asset_materialization_events()[0].materialization.metadata["fetched"].value
            [started] = [e for e in logged(p, result.run_id) if e.type == EventType.SYNC_STARTED]
            assert started.details["full"] is (label != "incremental")
        assert fetched["full"] == fetched["tagged"] == len(p.users()) > fetched["incremental"]
        with pytest.raises(dg.DagsterInvalidConfigError, match="full"):
            launch(p, dagster_instance, assets=[USERS], partition=p.name,
                   run_config={"ops": {"salesforce_sync": {"config": {"full": "yes please"}}}})


def test_the_run_log_names_each_sync_event_with_its_counts(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path, dagster_instance: dg.DagsterInstance
) -> None:
    with pipeline(small_sandbox, database_url, tmp_path) as p:
        first = launch(p, dagster_instance, assets=[USERS], partition=p.name)
        [contact] = small_sandbox.org.query("SELECT Id FROM Contact LIMIT 1")["records"]
        small_sandbox.org.update("Contact", contact["Id"], {"Email": "again@example.test"})
        second = launch(p, dagster_instance, assets=[USERS], partition=p.name)
        small_sandbox.org.revoke_all_tokens()
        failed = launch(p, dagster_instance, assets=[USERS], partition=p.name)

        seen: set[str] = set()
        for result in (first, second, failed):
            messages = dagster_messages(dagster_instance, result.run_id)
            for event in logged(p, result.run_id):
                lines = [m for m in messages if m.split(" ", 1)[0].rstrip(":") == event.type]
                assert lines, f"{event.type} of run {result.run_id} not in its Dagster log"
                if event.type == EventType.HEALTH_CHECK:
                    outcome = "passed" if event.details["passed"] else "failed"
                    assert any(line.startswith(f"health_check check={event.details['check']} {outcome}")
                               for line in lines)
                for key, value in event.counts.items():
                    if not isinstance(value, dict) and event.type != EventType.HEALTH_CHECK:
                        assert any(f"{key}={value:g}" in line if isinstance(value, float) else
                                   f"{key}={value}" in line for line in lines), (event.type, key, lines)
                if event.error:
                    assert any(event.error in line for line in lines)
                    assert any(line.startswith(f"{event.type}") and event.error in line for line in lines)
                seen.add(event.type)
        assert seen == EVENT_NAMES
        records_updated = [m for m in dagster_messages(dagster_instance, second.run_id)
                           if m.startswith("records_updated")]
        assert [sorted(line.split()) for line in records_updated] == [["deleted=0", "records_updated", "updated=1"]]


def test_checks_run_alone_for_a_partition_and_a_failing_one_fails_the_run(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path, dagster_instance: dg.DagsterInstance
) -> None:
    with pipeline(small_sandbox, database_url, tmp_path) as p:
        p.sync()
        graph = defs.resolve_asset_graph()
        for key in CHECK_KEYS:  # each check is its own execution set: the UI's Execute is enabled
            assert graph.get_execution_set_asset_and_check_keys(key) == {key}

        one = launch(p, dagster_instance, assets=[], partition=None, checks=[CHECK_KEYS[2]],
                     tags={"dagster/partition": p.name})
        assert one.success
        assert [(c.check_name, c.partition, c.passed) for c in one.get_asset_check_evaluations()] == [
            ("api_limits", p.name, True)]

        small_sandbox.org.set_api_quota(max=10_000, used=9_500)
        failing = launch(p, dagster_instance, assets=[], partition=None, checks=CHECK_KEYS,
                         tags={"dagster/partition": p.name})
        assert not failing.success
        results = {c.check_name: c.passed for c in failing.get_asset_check_evaluations()}
        assert results == {"credentials": True, "field_mappings": True, "api_limits": False, "sync_staleness": True}
        failure = next(e for e in failing.all_events if e.is_step_failure)
        assert (failure.step_failure_data.user_failure_data.description or "").startswith(
            "Health check failed: api_limits: Only")
        assert dagster_instance.get_run_by_id(failing.run_id).status == dg.DagsterRunStatus.FAILURE  # type: ignore[union-attr]
        assert status(p) == "error"
        assert any(m.startswith("health_check check=api_limits failed")
                   for m in dagster_messages(dagster_instance, failing.run_id))


def test_execute_all_without_a_partition_checks_every_integration_on_its_partition(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path, dagster_instance: dg.DagsterInstance
) -> None:
    with pipeline(small_sandbox, database_url, tmp_path) as p:
        # A materialized partition is what made a yielded result fail in a run without a partition.
        assert launch(p, dagster_instance, assets=[USERS], partition=p.name).success
        result = launch(p, dagster_instance, assets=[], partition=None, checks=CHECK_KEYS)
        assert result.success
        evaluations = {(c.check_name, c.partition, c.passed) for c in result.get_asset_check_evaluations()}
        assert evaluations == {(c.value, p.name, True) for c in CheckName} | {(c.value, None, True) for c in CheckName}
        overall = next(c for c in result.get_asset_check_evaluations() if c.partition is None)
        assert overall.metadata["integrations_checked"].value == [p.name]
        for key in CHECK_KEYS:
            history = dagster_instance.event_log_storage.get_asset_check_execution_history(key, limit=20)
            latest = next(r for r in history if r.partition == p.name)
            assert latest.run_id == result.run_id
