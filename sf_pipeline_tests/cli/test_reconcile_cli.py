"""``sf-pipeline reconcile`` through the installed executable, and drift in ``sync --json``,
``status --json`` and the Dagster materializations' numeric metadata."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from sf_pipeline.sandbox.testing import SandboxHandle
from sf_pipeline_tests.harness import TEST_KEY, Pipeline, pipeline

pytestmark = pytest.mark.usefixtures("dagster_env")

SPEC = """
name: {name}
project_id: 42
login_url: {login_url}
reconcile_every_days: 3
objects:
  Lead:
    rules:
      - {{field: Rating, operator: equals, value: Hot}}
  Contact: {{}}
mappings:
  - {{field: Email, property: email}}
"""


def executable() -> str:
    found = shutil.which("sf-pipeline", path=str(Path(sys.executable).parent))
    assert found, "the sf-pipeline executable is installed beside the interpreter"
    return found


def run(p: Pipeline, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SF_PIPELINE_HOME": str(p.services.settings.home),
        "SF_PIPELINE_DATABASE_URL": p.database.url.render_as_string(hide_password=False),
        "SF_PIPELINE_SECRET_KEY": TEST_KEY,
        "DAGSTER_HOME": str(p.services.settings.home / "dagster"),
    }
    return subprocess.run([executable(), *args], capture_output=True, text=True, env=env, timeout=300)


def as_json(completed: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(completed.stdout)


def test_reconcile_command_flags_purged_and_out_of_scope_users_and_reports_drift(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path
) -> None:
    org = small_sandbox.org
    hot = [r["Id"] for r in org.records("Lead") if r["Rating"] == "Hot"]
    assert len(hot) >= 2
    with pipeline(small_sandbox, database_url, tmp_path, spec=SPEC) as p:
        first = run(p, "sync", "acme", "--json")
        assert first.returncode == 0, first.stderr
        assert as_json(first)["drift"] == {"Lead": 0, "Contact": 0}
        org.purge("Lead", [hot[0]])
        org.update("Lead", hot[1], {"Rating": "Cold"})
        incremental = as_json(run(p, "sync", "acme", "--json"))
        assert incremental["drift"] == {"Lead": -2, "Contact": 0}
        assert as_json(run(p, "status", "--json"))[0]["drift"] == {"Lead": -2, "Contact": 0}

        done = run(p, "reconcile", "acme", "--json")
        assert done.returncode == 0, done.stderr
        summary = as_json(done)
        assert summary["status"] == "completed"
        assert (summary["objects"]["Lead"]["purged"], summary["objects"]["Lead"]["out_of_scope"]) == (1, 1)
        assert summary["drift"] == {"Lead": 0, "Contact": 0} and summary["api_calls"] > 0
        status = as_json(run(p, "status", "--json"))[0]
        assert status["drift"] == {"Lead": 0, "Contact": 0} and status["last_reconciled_at"]
        users = p.users()
        assert users[f"sf_acme_Lead_{hot[0]}"]["deleted"] is True
        assert users[f"sf_acme_Lead_{hot[1]}"]["deleted"] is False

        # The runs are on the project's Dagster instance, drift as numbers the UI plots: in the sync's
        # materializations and in the reconciliation's observation of the same asset.
        with dg.DagsterInstance.from_config(str(p.services.settings.home / "dagster")) as instance:
            users = dg.AssetKey("spotzee_users")
            synced = instance.fetch_materializations(users, limit=10).records
            assert sorted(r.asset_materialization.metadata["drift_Lead"].value  # type: ignore[union-attr]
                          for r in synced) == [-2, 0]
            [observed] = instance.fetch_observations(users, limit=10).records
            assert observed.asset_observation.metadata["drift_Lead"].value == 0  # type: ignore[union-attr]
            assert observed.asset_observation.partition == "acme"  # type: ignore[union-attr]


def test_reconcile_command_exit_codes_for_usage_and_failure(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path
) -> None:
    with pipeline(small_sandbox, database_url, tmp_path, spec=SPEC) as p:
        usage = run(p, "reconcile", "nobody")
        assert usage.returncode == 2 and "nobody" in usage.stderr and "Traceback" not in usage.stderr
        assert run(p, "reconcile").returncode == 2
        assert run(p, "sync", "acme", "--json").returncode == 0
        small_sandbox.org.rename_field("Lead", "Rating", "Rating__c")
        failed = run(p, "reconcile", "acme", "--json")
        assert failed.returncode == 1, (failed.stdout, failed.stderr[-3000:])
        body = as_json(failed)
        assert body["status"] == "failed"
        assert "field_mappings: Field not found: Lead.Rating" in body["error"]
        assert "Traceback" not in failed.stdout
