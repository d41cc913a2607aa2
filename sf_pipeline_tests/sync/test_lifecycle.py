"""What a run records around its work, on SQLite and PostgreSQL: the run row, log events,
watermarks and the status a success or failure leaves."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from sf_pipeline.events import EventType
from sf_pipeline.storage.database import Database
from sf_pipeline.storage.integrations import get_integration
from sf_pipeline.storage.models import Integration, LogEvent, SyncRun
from sf_pipeline.sync import lifecycle
from sf_pipeline.sync.manifests import ChangeCounts, ChangedObject, ChangeManifest, ExtractManifest
from sf_pipeline_tests.dbs import migrated_database
from sf_pipeline_tests.sync.stages import extracted, later, lead

NOW = datetime(2026, 1, 6, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with migrated_database(request.param, tmp_path) as database:
        with database.session() as session:
            session.add(Integration(name="acme", project_id=42, login_url="https://login.salesforce.com",
                                    status="error", consecutive_failures=3, last_error="earlier"))
        yield database


def changes(tmp_path: Path) -> ChangeManifest:
    extract = ExtractManifest(integration="acme", run_id="run-1", work_dir=str(tmp_path),
                              objects=[extracted(tmp_path, [lead(1, at=later(5))])], api_calls=4)
    return ChangeManifest(extract=extract, objects=[
        ChangedObject("Lead", ChangeCounts(created=1, updated=2, deleted=1), warnings=[{"reason": "r"}])])


def events(database: Database) -> list[tuple[str, dict[str, object]]]:
    with database.session() as session:
        return [(e.type, dict(e.counts or {})) for e in session.scalars(select(LogEvent).order_by(LogEvent.id))]


def test_a_completed_run_moves_watermarks_resets_the_backoff_and_logs_its_counts(
    database: Database, tmp_path: Path
) -> None:
    with database.session() as session:
        lifecycle.begin_run(session, get_integration(session, "acme"), "run-1", full=True, now=NOW)
    with database.session() as session:
        summary = lifecycle.complete_run(session, get_integration(session, "acme"), changes(tmp_path), now=NOW,
                                         duration_s=2.0)
    assert (summary.created, summary.updated, summary.deleted, summary.api_calls) == (1, 2, 1, 4)
    with database.session() as session:
        integration = get_integration(session, "acme")
        assert (integration.status, integration.consecutive_failures, integration.last_error) == ("active", 0, None)
        assert integration.last_synced_at == NOW
        state = lifecycle.sync_states(session, integration)["Lead"]
        assert state.watermark == later(5) and state.last_full_sync_at == NOW
        run = session.get(SyncRun, "run-1")
        assert run is not None and run.status == "succeeded" and run.counts["created"] == 1
    assert [t for t, _ in events(database)] == [EventType.SYNC_STARTED, EventType.RECORDS_IMPORTED,
                                                EventType.RECORDS_UPDATED, EventType.SYNC_COMPLETED]
    assert events(database)[2][1] == {"updated": 2, "deleted": 1}


def test_a_failed_run_leaves_the_watermark_and_backs_off(database: Database, tmp_path: Path) -> None:
    with database.session() as session:
        lifecycle.begin_run(session, get_integration(session, "acme"), "run-2", full=False, now=NOW)
    with database.session() as session:
        lifecycle.fail_run(session, get_integration(session, "acme"), "run-2", "QUERY_TIMEOUT", now=NOW,
                           duration_s=1.0)
    with database.session() as session:
        integration = get_integration(session, "acme")
        assert (integration.status, integration.consecutive_failures, integration.last_error) == (
            "error", 4, "QUERY_TIMEOUT")
        assert lifecycle.sync_states(session, integration) == {}
        run = session.get(SyncRun, "run-2")
        assert run is not None and (run.status, run.error) == ("failed", "QUERY_TIMEOUT")
    assert [t for t, _ in events(database)] == [EventType.SYNC_STARTED, EventType.SYNC_FAILED]


def test_an_incomplete_integration_cannot_start_a_run(database: Database) -> None:
    with database.session() as session:
        integration = get_integration(session, "acme")
        integration.status = "incomplete"
    with database.session() as session, pytest.raises(lifecycle.SetupIncompleteError, match="Incomplete"):
        lifecycle.begin_run(session, get_integration(session, "acme"), "run-3", full=False, now=NOW)
