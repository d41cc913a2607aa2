"""What a sync run records around its work: the run row, log events and watermarks, and the
status change ``sf_pipeline.lifecycle`` rules for a success or a failure.

A failure that is this machine's (no network, an untrusted certificate, an unusable secret key:
see ``failure_is_local``) is recorded as ``sync_failed`` but leaves the status alone.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sf_pipeline import lifecycle
from sf_pipeline.errors import UserError
from sf_pipeline.events import EventType, record_event
from sf_pipeline.salesforce.errors import is_local
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
    run = session.get(SyncRun, extract.run_id)
    duration_s = wall_duration(run, now, fallback=duration_s) or duration_s
    summary = SyncSummary.of(changes, duration_s=duration_s)
    if after is not None:
        summary = dataclasses.replace(summary, api_calls=summary.api_calls + after.api_calls, drift=dict(after.drift),
                                      reconcile=after.reconcile)
    lifecycle.sync_succeeded(integration, now=now)
    integration.full_sync_requested = False
    if run is not None:
        run.status = "succeeded"
        run.finished_at = now
        run.counts = summary.as_dict()
    details: dict[str, Any] = {"warnings": changes.warnings, "warnings_total": summary.warnings,
                               "warnings_shown": len(changes.warnings)} if summary.warnings else {}
    details["apis"] = summary.apis
    fallbacks = {o.object_name: o.api_reason for o in extract.objects if o.api_reason and "fell back" in o.api_reason}
    if fallbacks:
        details["api_fallbacks"] = fallbacks
    if counts.created:
        record_event(session, integration, EventType.RECORDS_IMPORTED, run_id=extract.run_id, at=now,
                     counts={"created": counts.created})
    if counts.updated or counts.deleted:
        record_event(session, integration, EventType.RECORDS_UPDATED, run_id=extract.run_id, at=now,
                     counts={"updated": counts.updated, "deleted": counts.deleted})
    record_event(session, integration, EventType.SYNC_COMPLETED, run_id=extract.run_id, at=now,
                 counts=summary.as_dict(), duration_s=duration_s, details=details)
    return summary


def wall_duration(run: SyncRun | None, now: datetime, *, fallback: float | None) -> float | None:
    """Seconds from the run's ``sync_started`` to ``now`` (its completion or failure): the one
    duration the event, the run's metadata, the CLI and ``status`` all report. ``fallback`` when
    the clock is pinned (tests) or the run row is missing."""
    if run is not None and run.started_at is not None and now > run.started_at:
        return round((now - run.started_at).total_seconds(), 3)
    return None if fallback is None else round(fallback, 3)


def failure_is_local(exc: BaseException) -> bool:
    """A failure of this machine's setup or network rather than of the org."""
    return is_local(exc) or isinstance(exc, UserError) or bool(getattr(exc, "local", False))


def fail_run(
    session: Session, integration: Integration, run_id: str, error: str, *, now: datetime, duration_s: float | None,
    local: bool = False,
) -> None:
    run = session.get(SyncRun, run_id)
    duration_s = wall_duration(run, now, fallback=duration_s)
    if run is not None:
        run.status = "failed"
        run.finished_at = now
        run.error = error
    lifecycle.sync_failed(integration, error, local=local)
    record_event(session, integration, EventType.SYNC_FAILED, run_id=run_id, at=now, error=error,
                 duration_s=duration_s)


def warning_total(changes: ChangeManifest) -> int:
    """Every dropped value and every invalid record: the one warning count. Only the first few
    (``changes.warnings``) are kept as samples."""
    return changes.counts.invalid_values + changes.counts.invalid_records
