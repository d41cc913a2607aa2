"""Day-to-day commands: sync --json, status badges and JSON, logs filtered by type and date."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from sf_pipeline.errors import UserError
from sf_pipeline.sandbox.testing import SandboxHandle
from sf_pipeline.storage.models import LogEvent
from sf_pipeline_tests.harness import cli, pipeline

pytestmark = pytest.mark.usefixtures("dagster_env")
SYNC_KEYS = {"status", "run_id", "fetched", "created", "updated", "unchanged", "deleted", "invalid_values",
             "api_calls", "duration_s"}


def test_sync_json_status_and_logs_tell_one_consistent_story(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path
) -> None:
    with pipeline(small_sandbox, database_url, tmp_path) as p:
        result = cli(p, "sync", "acme", "--json")
        assert result.exit_code == 0
        summary = json.loads(result.stdout)
        assert set(summary) >= SYNC_KEYS and summary["status"] == "succeeded"
        assert summary["created"] == len(p.users()) and summary["fetched"] >= summary["created"]

        rows = json.loads(cli(p, "status", "--json").stdout)
        assert [r["name"] for r in rows] == ["acme"]
        row = rows[0]
        assert {"name", "status", "frequency_minutes", "last_synced_at", "next_sync_at", "health"} <= set(row)
        assert row["status"] == "active" and row["frequency_minutes"] == 60
        assert row["health"]["passed"] is True
        synced = datetime.fromisoformat(row["last_synced_at"])
        assert datetime.fromisoformat(row["next_sync_at"]) > synced

        table = cli(p, "status")
        assert "Active" in table.stdout and "acme" in table.stdout

        events = json.loads(cli(p, "logs", "acme", "--json").stdout)
        assert {"type", "at", "run_id", "counts", "error", "duration_s"} <= set(events[0])
        assert [e["at"] for e in events] == sorted((e["at"] for e in events), reverse=True)
        types = {e["type"] for e in events}
        assert {"sync_started", "records_imported", "sync_completed", "health_check"} <= types
        completed = next(e for e in events if e["type"] == "sync_completed")
        assert completed["run_id"] == summary["run_id"] and completed["counts"]["created"] == summary["created"]
        assert completed["duration_s"] is not None

        only = json.loads(cli(p, "logs", "acme", "--type", "sync_started", "--type", "sync_completed",
                              "--json").stdout)
        assert only and {e["type"] for e in only} == {"sync_started", "sync_completed"}

        # Move the first run's events a week back: date filters must split them off.
        week_ago = datetime.now(UTC) - timedelta(days=7)
        with p.database.session() as session:
            session.execute(update(LogEvent).where(LogEvent.type == "sync_started").values(at=week_ago))
        day = week_ago.date().isoformat()
        old = json.loads(cli(p, "logs", "acme", "--since", day, "--until", day, "--json").stdout)
        assert old and {e["type"] for e in old} == {"sync_started"}
        recent = json.loads(cli(p, "logs", "acme", "--since", (week_ago + timedelta(days=1)).isoformat(),
                                "--json").stdout)
        assert recent and "sync_started" not in {e["type"] for e in recent}


def test_bad_command_input_is_a_clear_error_without_a_traceback(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path
) -> None:
    with pipeline(small_sandbox, database_url, tmp_path) as p:
        for args, says in [
            (["logs", "acme", "--type", "sync_exploded"], "unknown event type 'sync_exploded'"),
            (["logs", "acme", "--since", "last tuesday"], "--since: 'last tuesday' is not a date"),
            (["logs", "nobody"], "nobody"),
            (["sync", "nobody", "--json"], "nobody"),
        ]:
            result = cli(p, *args)
            assert isinstance(result.exception, UserError), (args, result.exception)
            assert says in str(result.exception)
        # Through the real entry point: the message on stderr, exit code 2, no traceback.
        completed = subprocess.run(
            [sys.executable, "-m", "sf_pipeline.cli.main", "logs", "acme", "--type", "sync_exploded"],
            capture_output=True, text=True,
            env={"SF_PIPELINE_HOME": str(p.services.settings.home),
                 "SF_PIPELINE_DATABASE_URL": p.database.url.render_as_string(hide_password=False),
                 "PATH": "/usr/bin:/bin"},
        )
        assert completed.returncode == 2
        assert "unknown event type 'sync_exploded'" in completed.stderr
        assert "Traceback" not in completed.stderr + completed.stdout


def test_preview_counts_matching_records_for_saved_and_unsaved_rules(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path
) -> None:
    leads = small_sandbox.org.records("Lead")
    with pipeline(small_sandbox, database_url, tmp_path) as p:
        saved = json.loads(cli(p, "integration", "preview", "acme", "--json").stdout)
        expected_leads = sum(1 for r in leads if r["Email"] and (r["Status"] or "").lower() != "closed - not converted")
        assert saved == {"Lead": expected_leads, "Contact": len(small_sandbox.org.records("Contact"))}
        draft = tmp_path / "draft.yaml"
        draft.write_text(
            f"name: acme\nproject_id: 42\nlogin_url: {small_sandbox.login_url}\nobjects:\n"
            "  Lead:\n    match: any\n    rules:\n      - {field: Rating, operator: equals, value: hot}\n"
            "      - {field: AnnualRevenue, operator: greater_than, value: 1000000}\n"
        )
        unsaved = json.loads(cli(p, "integration", "preview", "acme", "--file", str(draft), "--json").stdout)
        hot_or_big = sum(1 for r in leads if (r["Rating"] or "").lower() == "hot"
                         or (r["AnnualRevenue"] is not None and r["AnnualRevenue"] > 1_000_000))
        assert unsaved == {"Lead": hot_or_big}
        assert p.users() == {}  # previewing syncs nothing


def test_creating_an_integration_adds_its_dagster_partition_at_once(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path
) -> None:
    import dagster as dg

    with pipeline(small_sandbox, database_url, tmp_path) as p:
        spec = tmp_path / "beta.yaml"
        spec.write_text("name: beta\nproject_id: 7\nlogin_url: https://login.salesforce.com\n"
                        "objects:\n  Contact: {}\n")
        result = cli(p, "integration", "apply", str(spec))
        assert result.exit_code == 0, result.stdout
        instance = dg.DagsterInstance.from_config(str(p.services.settings.home / "dagster"))
        try:
            assert instance.has_dynamic_partition("integrations", "beta")
        finally:
            instance.dispose()
