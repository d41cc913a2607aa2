"""Day-to-day commands through the installed executable: sync --json, status badges and JSON, logs
filtered by type and date, preview, and one story told with the same numbers everywhere."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import update

from sf_pipeline.sandbox.testing import SandboxHandle
from sf_pipeline.storage.models import LogEvent
from sf_pipeline_tests.cli.executable import executable_env, run
from sf_pipeline_tests.harness import pipeline

SYNC_KEYS = {"status", "run_id", "fetched", "created", "updated", "unchanged", "deleted", "invalid_values",
             "warnings", "api_calls", "duration_s"}
LOCAL_SECOND = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC")


def test_sync_json_status_and_logs_tell_one_consistent_story(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path
) -> None:
    with pipeline(small_sandbox, database_url, tmp_path) as p:
        env = executable_env(p, tmp_path)
        result = run("sync", "acme", "--json", env=env)
        assert result.exit_code == 0, result
        summary = result.json()
        assert set(summary) >= SYNC_KEYS and summary["status"] == "succeeded"
        assert summary["created"] == len(p.users()) and summary["fetched"] >= summary["created"]

        rows = run("status", "--json", env=env).json()
        assert [r["name"] for r in rows] == ["acme"]
        row = rows[0]
        assert {"name", "status", "frequency_minutes", "last_synced_at", "next_sync_at", "health"} <= set(row)
        assert row["status"] == "active" and row["frequency_minutes"] == 60
        assert row["health"]["passed"] is True
        synced = datetime.fromisoformat(row["last_synced_at"])
        assert datetime.fromisoformat(row["next_sync_at"]) > synced

        # 80 columns: both times whole, local, to the second
        table = run("status", env=env)
        assert "Active" in table.stdout and "acme" in table.stdout
        assert len(LOCAL_SECOND.findall(table.stdout)) == 2, table.stdout

        events = run("logs", "acme", "--json", env=env).json()
        assert {"type", "at", "run_id", "counts", "error", "duration_s"} <= set(events[0])
        assert [e["at"] for e in events] == sorted((e["at"] for e in events), reverse=True)
        types = {e["type"] for e in events}
        assert {"sync_started", "records_imported", "sync_completed", "health_check"} <= types
        completed = next(e for e in events if e["type"] == "sync_completed")
        started = next(e for e in events if e["type"] == "sync_started")
        assert completed["run_id"] == summary["run_id"] and completed["counts"]["created"] == summary["created"]
        # One duration: sync_started to sync_completed, in the event, the CLI and status.
        wall = (datetime.fromisoformat(completed["at"]) - datetime.fromisoformat(started["at"])).total_seconds()
        assert completed["duration_s"] == summary["duration_s"] == row["last_run"]["duration_s"]
        assert abs(summary["duration_s"] - wall) < 0.01
        # One warning count.
        assert summary["warnings"] == summary["invalid_values"] + completed["counts"]["invalid_records"]
        if summary["warnings"]:
            assert completed["details"]["warnings_total"] == summary["warnings"]
            assert completed["details"]["warnings_shown"] == len(completed["details"]["warnings"])

        only = run("logs", "acme", "--type", "sync_started", "--type", "sync_completed", "--json", env=env).json()
        assert only and {e["type"] for e in only} == {"sync_started", "sync_completed"}

        # Move the first run's events a week back: date filters must split them off.
        week_ago = datetime.now(UTC) - timedelta(days=7)
        with p.database.session() as session:
            session.execute(update(LogEvent).where(LogEvent.type == "sync_started").values(at=week_ago))
        day = week_ago.date().isoformat()
        old = run("logs", "acme", "--since", day, "--until", day, "--json", env=env).json()
        assert old and {e["type"] for e in old} == {"sync_started"}
        recent = run("logs", "acme", "--since", (week_ago + timedelta(days=1)).isoformat(), "--json", env=env).json()
        assert recent and "sync_started" not in {e["type"] for e in recent}


def test_preview_counts_matching_records_for_saved_and_unsaved_rules(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path
) -> None:
    leads = small_sandbox.org.records("Lead")
    with pipeline(small_sandbox, database_url, tmp_path) as p:
        env = executable_env(p, tmp_path)
        saved = run("integration", "preview", "acme", "--json", env=env).json()
        expected_leads = sum(1 for r in leads if r["Email"] and (r["Status"] or "").lower() != "closed - not converted")
        assert saved == {"Lead": expected_leads, "Contact": len(small_sandbox.org.records("Contact"))}
        draft = tmp_path / "draft.yaml"
        draft.write_text(
            f"name: acme\nproject_id: 42\nlogin_url: {small_sandbox.login_url}\nobjects:\n"
            "  Lead:\n    match: any\n    rules:\n      - {field: Rating, operator: equals, value: hot}\n"
            "      - {field: AnnualRevenue, operator: greater_than, value: 1000000}\n"
        )
        unsaved = run("integration", "preview", "acme", "--file", str(draft), "--json", env=env).json()
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
        result = run("integration", "apply", str(spec), env=executable_env(p, tmp_path))
        assert result.exit_code == 0, result
        instance = dg.DagsterInstance.from_config(str(p.services.settings.home / "dagster"))
        try:
            assert instance.has_dynamic_partition("integrations", "beta")
        finally:
            instance.dispose()
