"""Each health check, failing and recovering against the sandbox. A failure shows in the CLI,
in the log events, as status Error and in Dagster's check results; fixing the cause and a
passing health run (or a successful sync) returns the integration to Active."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import select

from sf_pipeline.connect import reconnect
from sf_pipeline.events import EventType
from sf_pipeline.salesforce.oauth import ClientCredentials, RefreshTokenImport
from sf_pipeline.sandbox.testing import SandboxHandle
from sf_pipeline.storage.integrations import get_integration
from sf_pipeline.storage.models import LogEvent
from sf_pipeline_tests.harness import Pipeline, cli, pipeline

pytestmark = pytest.mark.usefixtures("dagster_env")
CHECKS = ("credentials", "field_mappings", "api_limits", "sync_staleness")


@dataclass
class Scenario:
    check: str
    break_it: Callable[[Pipeline], object]
    fix_it: Callable[[Pipeline], object]
    failure_metadata: tuple[str, ...]
    # Every check that fails while this one is broken (a refused token fails every call).
    failing: tuple[str, ...] = ()


def reconnect_with_new_token(p: Pipeline) -> None:
    sandbox = p.sandbox
    reconnect(p.database, p.services.cipher, p.name, RefreshTokenImport(
        login_url=sandbox.login_url, client=ClientCredentials(sandbox.client_id, sandbox.client_secret),
        refresh_token=sandbox.issue_refresh_token()))


def last_sync_two_hours_ago(p: Pipeline) -> None:
    """Twice the 60-minute frequency and a minute more since the last successful sync."""
    with p.database.session() as session:
        integration = get_integration(session, p.name)
        integration.last_synced_at = datetime.now(UTC) - timedelta(minutes=2 * 60 + 1)


SCENARIOS = [
    Scenario("credentials", lambda p: p.sandbox.org.revoke_all_tokens(), reconnect_with_new_token,
             ("error", "advice"), failing=("credentials", "field_mappings", "api_limits")),
    Scenario("field_mappings", lambda p: p.sandbox.org.rename_field("Lead", "Industry", "Sector__c"),
             lambda p: p.sandbox.org.rename_field("Lead", "Sector__c", "Industry"),
             ("missing_fields",)),
    Scenario("api_limits", lambda p: p.sandbox.org.set_api_quota(max=10_000, used=9_500),
             lambda p: p.sandbox.org.set_api_quota(used=100),
             ("remaining", "maximum", "percent_remaining")),
    Scenario("sync_staleness", last_sync_two_hours_ago, lambda p: None, ("age_minutes", "allowed_age_minutes")),
]


def health(p: Pipeline) -> tuple[int, dict[str, dict]]:  # type: ignore[type-arg]
    result = cli(p, "health", "acme", "--json")
    rows = json.loads(result.stdout.strip().splitlines()[-1])
    assert [r["name"] for r in rows] == list(CHECKS)
    return result.exit_code, {r["name"]: r for r in rows}


def status(p: Pipeline) -> str:
    with p.database.session() as session:
        return get_integration(session, p.name).status


def dagster_result(p: Pipeline, check: str) -> tuple[str, str | None]:
    instance = dg.DagsterInstance.from_config(str(p.services.settings.home / "dagster"))
    try:
        [record] = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(dg.AssetKey("spotzee_users"), check), limit=1)
        evaluation = record.event.dagster_event.event_specific_data  # type: ignore[union-attr]
        return ("passed" if evaluation.passed else "failed"), evaluation.partition
    finally:
        instance.dispose()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.check for s in SCENARIOS])
def test_a_failing_check_shows_everywhere_and_recovers(
    scenario: Scenario, small_sandbox: SandboxHandle, database_url: str, tmp_path: Path
) -> None:
    with pipeline(small_sandbox, database_url, tmp_path) as p:
        p.sync()
        code, healthy = health(p)
        assert code == 0 and all(r["passed"] for r in healthy.values())
        assert status(p) == "active"

        scenario.break_it(p)
        code, broken = health(p)
        assert code == 1
        failing = broken[scenario.check]
        assert not failing["passed"]
        for key in scenario.failure_metadata:
            assert key in failing["metadata"], failing
        assert [n for n, r in broken.items() if not r["passed"]] == list(scenario.failing or (scenario.check,))
        if scenario.check == "field_mappings":
            assert failing["metadata"]["missing_fields"] == ["Lead.Industry"]
        if scenario.check == "api_limits":
            # The health run's own calls before it reads the limits count too: a few, not a fixed number.
            metadata = failing["metadata"]
            assert metadata["maximum"] == 10_000 and 400 <= metadata["remaining"] <= 500
            assert metadata["percent_remaining"] == round(100 * metadata["remaining"] / 10_000, 2)
        assert status(p) == "error"
        assert dagster_result(p, scenario.check) == ("failed", "acme")
        with p.database.session() as session:
            event = session.scalars(select(LogEvent).where(LogEvent.type == EventType.HEALTH_CHECK)
                                    .order_by(LogEvent.id.desc())).first()
            logged = [e for e in session.scalars(select(LogEvent).where(LogEvent.type == EventType.HEALTH_CHECK))
                      if e.details.get("check") == scenario.check and not e.details.get("passed")]
        assert event is not None and logged and logged[-1].error
        shown = cli(p, "status")
        assert "Error" in shown.stdout and scenario.check in shown.stdout

        scenario.fix_it(p)
        if scenario.check == "sync_staleness":
            assert cli(p, "sync", "acme", "--json").exit_code == 0  # a successful sync fixes it
        code, recovered = health(p)
        assert code == 0 and all(r["passed"] for r in recovered.values()), recovered
        assert status(p) == "active"
        assert dagster_result(p, scenario.check) == ("passed", "acme")
