"""The health sensor requests a checks-only run for each connected, not paused integration whose
four checks have not all run within the interval, and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from sf_pipeline.defs.resources import SfPipelineResource
from sf_pipeline.defs.sensors import health_dispatcher
from sf_pipeline.health import CheckName
from sf_pipeline.storage.models import Credential, HealthResult, Integration
from sf_pipeline_tests.dbs import migrated_database

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

pytestmark = pytest.mark.usefixtures("dagster_env")


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_health_runs_are_requested_for_connected_integrations_whose_checks_are_stale_or_missing(
    backend: str, tmp_path: Path, dagster_instance: dg.DagsterInstance
) -> None:
    fresh, stale = NOW - timedelta(minutes=5), NOW - timedelta(minutes=20)
    cases = {  # name: (status, connected, time of every check's latest result or None)
        "fresh": ("active", True, fresh),
        "stale": ("error", True, stale),
        "never": ("active", True, None),
        "paused": ("inactive", True, stale),
        "unconnected": ("active", False, None),
        "unregistered": ("active", True, None),
    }
    with migrated_database(backend, tmp_path) as database:
        with database.session() as session:
            for i, (name, (status, connected, at)) in enumerate(cases.items()):
                row = Integration(name=name, project_id=i, login_url="https://login.salesforce.com", status=status,
                                  frequency_minutes=60, created_at=NOW - timedelta(days=1))
                if connected:
                    row.credential = Credential(client_id="c", client_secret_enc="x", refresh_token_enc="x", version=1)
                session.add(row)
                session.flush()
                if at is not None:
                    session.add_all(HealthResult(integration_id=row.id, check_name=c.value, passed=True, at=at)
                                    for c in CheckName)
        dagster_instance.add_dynamic_partitions("integrations", [n for n in cases if n != "unregistered"])
        resource = SfPipelineResource(database_url=database.url.render_as_string(hide_password=False),
                                      home=str(tmp_path), now=NOW.isoformat())
        context = dg.build_sensor_context(instance=dagster_instance, resources={"sf_pipeline": resource})
        result = health_dispatcher(context)
    assert isinstance(result, dg.SensorResult)
    requested = {r.tags["dagster/partition"] for r in result.run_requests or []}
    assert requested == {"stale", "never"}
