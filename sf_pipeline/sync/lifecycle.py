"""What a sync run records around its work: the run row, log events and watermarks, and the
status change ``sf_pipeline.lifecycle`` rules for a success or a failure.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sf_pipeline import lifecycle
from sf_pipeline.errors import UserError
from sf_pipeline.events import EventType, record_event
from sf_pipeline.storage.models import Integration, IntegrationStatus, SyncRun, SyncState
from sf_pipeline.sync.manifests import AfterSync, ChangeManifest, SyncSummary


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
    after: AfterSync | None = None,
) -> SyncSummary:
    """Move watermarks and status in the same transaction that marks the run succeeded. ``after``
    (drift, reconciliation) joins the summary; its API calls add to the run's."""
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
    summary = SyncSummary.of(changes, duration_s=duration_s)
    if after is not None:
        summary = dataclasses.replace(summary, api_calls=summary.api_calls + after.api_calls, drift=dict(after.drift),
                                      reconcile=after.reconcile)
    lifecycle.sync_succeeded(integration, now=now)
    integration.full_sync_requested = False
    run = session.get(SyncRun, extract.run_id)
    if run is not None:
        run.status = "succeeded"
        run.finished_at = now
        run.counts = summary.as_dict()
    details = {"warnings": changes.warnings} if changes.warnings else {}
    if counts.created:
        record_event(session, integration, EventType.RECORDS_IMPORTED, run_id=extract.run_id, at=now,
                     counts={"created": counts.created})
    if counts.updated or counts.deleted:
        record_event(session, integration, EventType.RECORDS_UPDATED, run_id=extract.run_id, at=now,
                     counts={"updated": counts.updated, "deleted": counts.deleted})
    record_event(session, integration, EventType.SYNC_COMPLETED, run_id=extract.run_id, at=now,
                 counts=summary.as_dict(), duration_s=duration_s, details=details)
    return summary


def fail_run(
    session: Session, integration: Integration, run_id: str, error: str, *, now: datetime, duration_s: float | None
) -> None:
    run = session.get(SyncRun, run_id)
    if run is not None:
        run.status = "failed"
        run.finished_at = now
        run.error = error
    lifecycle.sync_failed(integration, error)
    record_event(session, integration, EventType.SYNC_FAILED, run_id=run_id, at=now, error=error,
                 duration_s=duration_s)
