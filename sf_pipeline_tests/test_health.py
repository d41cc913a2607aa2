"""The four health checks as plain functions, against the sandbox org (real HTTP, real client)
and the application database on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sf_pipeline import health
from sf_pipeline.health import CheckName, CheckOutcome
from sf_pipeline.sandbox.testing import SandboxHandle
from sf_pipeline.storage.integrations import get_integration
from sf_pipeline.storage.models import Integration
from sf_pipeline.sync import lifecycle
from sf_pipeline_tests.harness import Pipeline, pipeline

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def evaluate(p: Pipeline, checks: tuple[CheckName, ...] = health.ALL_CHECKS) -> dict[str, CheckOutcome]:
    client = p.services.open_client(p.name)
    with p.database.session() as session:
        integration = get_integration(session, p.name)
        outcomes = health.evaluate(client, integration, lifecycle.sync_states(session, integration),
                                   now=datetime.now(UTC), checks=checks)
    return {o.name.value: o for o in outcomes}


def test_a_synced_integration_passes_every_check_and_the_results_are_stored(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path
) -> None:
    with pipeline(small_sandbox, database_url, tmp_path) as p:
        p.sync()
        outcomes = evaluate(p)
        assert list(outcomes) == [c.value for c in health.ALL_CHECKS]
        assert all(o.passed for o in outcomes.values()), outcomes
        assert outcomes["api_limits"].metadata["maximum"] > outcomes["api_limits"].metadata["remaining"] > 0
        stored_at = datetime.now(UTC) + timedelta(minutes=1)  # newer than the sync's own preflight results
        with p.database.session() as session:
            integration = get_integration(session, p.name)
            health.store(session, integration, list(outcomes.values()), now=stored_at, run_id="r1")
        with p.database.session() as session:
            latest = health.latest_results(session, get_integration(session, p.name))
            assert sorted(latest) == sorted(c.value for c in health.ALL_CHECKS)
            assert all(r.at == stored_at and r.run_id == "r1" and r.passed for r in latest.values())


def test_revoked_tokens_fail_credentials_and_skip_the_field_check(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path
) -> None:
    with pipeline(small_sandbox, database_url, tmp_path) as p:
        small_sandbox.org.revoke_all_tokens()
        outcomes = evaluate(p, health.PREFLIGHT_CHECKS)
        assert not outcomes["credentials"].passed and "reconnect" in outcomes["credentials"].metadata["advice"]
        assert outcomes["field_mappings"].description == "Not checked: Salesforce refused the credentials."


def test_a_renamed_field_and_a_spent_quota_fail_their_checks(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path
) -> None:
    with pipeline(small_sandbox, database_url, tmp_path) as p:
        p.sync()
        small_sandbox.org.rename_field("Lead", "Industry", "Sector__c")
        small_sandbox.org.set_api_quota(max=1_000, used=950)
        outcomes = evaluate(p, (CheckName.FIELD_MAPPINGS, CheckName.API_LIMITS))
        assert outcomes["field_mappings"].metadata["missing_fields"] == ["Lead.Industry"]
        limits = outcomes["api_limits"]
        assert not limits.passed and limits.metadata["maximum"] == 1_000 and limits.metadata["remaining"] <= 50


def integration(**values: object) -> Integration:
    row = Integration(name="acme", project_id=1, login_url="https://login.salesforce.com", status="active",
                      frequency_minutes=60)
    for key, value in values.items():
        setattr(row, key, value)
    return row


def test_staleness_allows_twice_the_frequency_since_the_last_sync_or_activation() -> None:
    assert health.check_sync_staleness(integration(), NOW).passed  # nothing expected yet
    assert health.check_sync_staleness(integration(last_synced_at=NOW - timedelta(minutes=120)), NOW).passed
    late = health.check_sync_staleness(integration(last_synced_at=NOW - timedelta(minutes=121)), NOW)
    assert not late.passed and late.metadata["age_minutes"] == 121.0
    never = health.check_sync_staleness(integration(activated_at=NOW - timedelta(minutes=130)), NOW)
    assert not never.passed and "activation" in never.description


def test_status_moves_on_failures_and_only_a_full_passing_set_restores_active() -> None:
    passed = [CheckOutcome(name, True, "ok") for name in health.ALL_CHECKS]
    failed = [CheckOutcome(CheckName.API_LIMITS, False, "quota spent")]
    row = integration()
    health.update_status(row, failed)
    assert (row.status, row.last_error) == ("error", "quota spent")
    health.update_status(row, passed[:2])  # the preflight's two checks are not enough
    assert row.status == "error"
    health.update_status(row, passed)
    assert (row.status, row.last_error) == ("active", None)
    paused = integration(status="inactive")
    health.update_status(paused, failed)
    assert paused.status == "inactive"
