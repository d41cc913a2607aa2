"""What a sync run records around its work: the run row, log events, status and watermarks.

Status rules (the operations page): a failed sync sets Error; the next successful sync returns
Error to Active. Inactive (paused) and Incomplete are never changed by a run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sf_pipeline.errors import UserError
from sf_pipeline.events import EventType, record_event
from sf_pipeline.storage.models import Integration, IntegrationStatus, SyncRun, SyncState
from sf_pipeline.sync.manifests import ChangeManifest


class SetupIncompleteError(UserError):
    pass


def begin_run(session: Session, integration: Integration, run_id: str, *, full: bool, now: datetime) -> None:
    if integration.status == IntegrationStatus.INCOMPLETE.value:
        raise SetupIncompleteError(
            f"integration '{integration.name}' is Incomplete: connect it and apply its objects and "
            "field mappings before syncing"
        )
    existing = session.get(SyncRun, run_id)
    if existing is None:
        session.add(SyncRun(run_id=run_id, integration_id=integration.id, full=full, started_at=now))
        record_event(session, integration, EventType.SYNC_STARTED, run_id=run_id, at=now,
                     details={"full": full})
    else:  # a retried step of the same run
        existing.status = "started"
        existing.error = None
    integration.last_attempt_at = now
    integration.sync_requested_at = None


def sync_states(session: Session, integration: Integration) -> dict[str, SyncState]:
    rows = session.scalars(select(SyncState).where(SyncState.integration_id == integration.id))
    return {row.object_name: row for row in rows}


def complete_run(
    session: Session, integration: Integration, changes: ChangeManifest, *, now: datetime, duration_s: float,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Move watermarks and status in the same transaction that marks the run succeeded.
    ``extra`` (drift, reconciliation) joins the summary; its ``api_calls`` add to the run's."""
    extract = changes.extract
    states = sync_states(session, integration)
    for obj in extract.objects:
        state = states.get(obj.object_name)
        if state is None:
            state = SyncState(integration_id=integration.id, object_name=obj.object_name)
            session.add(state)
        state.watermark = obj.watermark_after
        state.config_fingerprint = obj.fingerprint
        state.fields = list(obj.fields)
        if obj.full:
            state.last_full_sync_at = now
    counts = changes.counts
    summary = summary_counts(changes, duration_s=duration_s)
    if extra:
        extra = dict(extra)
        summary["api_calls"] += int(extra.pop("api_calls", 0))
        summary.update(extra)
    integration.last_synced_at = now
    integration.consecutive_failures = 0
    integration.last_error = None
    integration.full_sync_requested = False
    if integration.status == IntegrationStatus.ERROR.value:
        integration.status = IntegrationStatus.ACTIVE.value
    run = session.get(SyncRun, extract.run_id)
    if run is not None:
        run.status = "succeeded"
        run.finished_at = now
        run.counts = summary
    details = {"warnings": changes.warnings} if changes.warnings else {}
    if counts.created:
        record_event(session, integration, EventType.RECORDS_IMPORTED, run_id=extract.run_id, at=now,
                     counts={"created": counts.created})
    if counts.updated or counts.deleted:
        record_event(session, integration, EventType.RECORDS_UPDATED, run_id=extract.run_id, at=now,
                     counts={"updated": counts.updated, "deleted": counts.deleted})
    record_event(session, integration, EventType.SYNC_COMPLETED, run_id=extract.run_id, at=now,
                 counts=summary, duration_s=duration_s, details=details)
    return summary


def fail_run(
    session: Session, integration: Integration, run_id: str, error: str, *, now: datetime, duration_s: float | None
) -> None:
    run = session.get(SyncRun, run_id)
    if run is not None:
        run.status = "failed"
        run.finished_at = now
        run.error = error
    integration.consecutive_failures = (integration.consecutive_failures or 0) + 1
    integration.last_error = error
    if integration.status in (IntegrationStatus.ACTIVE.value, IntegrationStatus.ERROR.value):
        integration.status = IntegrationStatus.ERROR.value
    record_event(session, integration, EventType.SYNC_FAILED, run_id=run_id, at=now, error=error,
                 duration_s=duration_s)


def summary_counts(changes: ChangeManifest, *, duration_s: float) -> dict[str, Any]:
    counts = changes.counts
    extract = changes.extract
    watermarks = {
        o.object_name: {
            "before": o.watermark_before.isoformat() if o.watermark_before else None,
            "after": o.watermark_after.isoformat() if o.watermark_after else None,
            "full": o.full,
        }
        for o in extract.objects
    }
    return {
        "fetched": extract.fetched,
        "created": counts.created,
        "updated": counts.updated,
        "unchanged": counts.unchanged,
        "deleted": counts.deleted,
        "skipped": counts.skipped,
        "invalid_values": counts.invalid_values,
        "invalid_records": counts.invalid_records,
        "api_calls": extract.api_calls,
        "duration_s": round(duration_s, 3),
        "watermarks": watermarks,
    }
