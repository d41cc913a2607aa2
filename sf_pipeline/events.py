"""Sync log events: the Logs tab. Exactly six types, each with time, run id, counts, error and
duration; warnings ride along in ``details`` of the sync they belong to."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sf_pipeline.storage.models import Integration, LogEvent, utcnow


class EventType(enum.StrEnum):
    SYNC_STARTED = "sync_started"
    SYNC_COMPLETED = "sync_completed"
    SYNC_FAILED = "sync_failed"
    RECORDS_IMPORTED = "records_imported"
    RECORDS_UPDATED = "records_updated"
    HEALTH_CHECK = "health_check"


def record_event(
    session: Session,
    integration: Integration,
    type: EventType,
    *,
    run_id: str | None = None,
    counts: dict[str, Any] | None = None,
    error: str | None = None,
    duration_s: float | None = None,
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> LogEvent:
    event = LogEvent(
        integration_id=integration.id,
        type=type.value,
        at=at or utcnow(),
        run_id=run_id,
        counts=counts or {},
        error=error,
        duration_s=duration_s,
        details=details or {},
    )
    session.add(event)
    return event


def list_events(
    session: Session,
    integration: Integration,
    *,
    types: Sequence[EventType] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = None,
) -> list[LogEvent]:
    query = select(LogEvent).where(LogEvent.integration_id == integration.id)
    if types:
        query = query.where(LogEvent.type.in_([t.value for t in types]))
    if since is not None:
        query = query.where(LogEvent.at >= since)
    if until is not None:
        query = query.where(LogEvent.at <= until)
    query = query.order_by(LogEvent.at.desc(), LogEvent.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def run_events_after(session: Session, run_id: str, after_id: int) -> list[LogEvent]:
    """The events a run recorded after event ``after_id``, oldest first."""
    query = select(LogEvent).where(LogEvent.id > after_id, LogEvent.run_id == run_id).order_by(LogEvent.id)
    return list(session.scalars(query))


def last_event_id(session: Session) -> int:
    return int(session.scalar(select(func.max(LogEvent.id))) or 0)


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def describe_event(event: LogEvent) -> str:
    """One searchable line for the Dagster run log: the event's name first, then its counts,
    duration and error as ``key=value``. Nested values (per-object watermarks) are left to the
    materialization metadata, which shows them as JSON."""
    parts = [event.type]
    details = event.details or {}
    if event.type == EventType.HEALTH_CHECK.value:
        parts.append(f"check={details.get('check')}")
        parts.append("passed" if details.get("passed") else "failed")
    scalars = {k: v for k, v in (event.counts or {}).items() if not isinstance(v, dict | list)}
    if event.type == EventType.HEALTH_CHECK.value:
        scalars.pop("passed", None)
    parts.extend(f"{k}={_value(v)}" for k, v in scalars.items())
    if event.duration_s is not None and "duration_s" not in scalars:
        parts.append(f"duration_s={_value(round(event.duration_s, 3))}")
    if event.type == EventType.SYNC_STARTED.value:
        parts.append(f"full={bool(details.get('full'))}".lower())
    if event.type == EventType.SYNC_COMPLETED.value and details.get("warnings"):
        parts.append(f"warnings={len(details['warnings'])}")
    line = " ".join(parts)
    return f"{line}: {event.error}" if event.error else line


def event_as_dict(event: LogEvent) -> dict[str, Any]:
    """The stable shape of ``sf-pipeline logs --json``."""
    return {
        "type": event.type,
        "at": event.at.isoformat(),
        "run_id": event.run_id,
        "counts": event.counts,
        "error": event.error,
        "duration_s": event.duration_s,
        "details": event.details,
    }
