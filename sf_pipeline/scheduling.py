"""When an integration's next sync, and its next health run, are due, from what the database
holds right now.

The dispatcher sensors ask this every tick, so a frequency change, pause or resume applies at
the next tick with no reload. Failures back off: after k consecutive failed runs the interval is
``frequency * 2^(k-1)``, capped at 24 hours, so an integration that keeps failing does not
retry-storm Salesforce; the first success resets it.

The dispatcher reads every integration on every tick, so ``schedule_rows`` fetches only the
columns these rules need, as plain rows in one query: building full ORM objects for 10,000
integrations cost more than a second a tick.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from sf_pipeline import lifecycle
from sf_pipeline.health import ALL_CHECKS
from sf_pipeline.storage.models import HealthResult, Integration

MIN_FREQUENCY_MINUTES = 5
DEFAULT_FREQUENCY_MINUTES = 60
MAX_BACKOFF = timedelta(hours=24)
DEFAULT_HEALTH_INTERVAL = timedelta(minutes=15)


class Schedulable(Protocol):
    """What the schedule depends on: an ``Integration`` or a ``ScheduleRow``."""

    @property
    def name(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def frequency_minutes(self) -> int: ...
    @property
    def consecutive_failures(self) -> int: ...
    @property
    def sync_requested_at(self) -> datetime | None: ...
    @property
    def last_attempt_at(self) -> datetime | None: ...
    @property
    def activated_at(self) -> datetime | None: ...
    @property
    def created_at(self) -> datetime: ...


@dataclass(frozen=True)
class ScheduleRow:
    name: str
    status: str
    frequency_minutes: int
    consecutive_failures: int
    sync_requested_at: datetime | None
    last_attempt_at: datetime | None
    activated_at: datetime | None
    created_at: datetime


_SCHEDULE_COLUMNS = (
    Integration.name,
    Integration.status,
    Integration.frequency_minutes,
    Integration.consecutive_failures,
    Integration.sync_requested_at,
    Integration.last_attempt_at,
    Integration.activated_at,
    Integration.created_at,
)


def schedule_rows(session: Session) -> list[ScheduleRow]:
    """Every integration's scheduling state, by name, in one query."""
    return [ScheduleRow(*row) for row in session.execute(select(*_SCHEDULE_COLUMNS).order_by(Integration.name))]


def sync_interval(integration: Schedulable) -> timedelta:
    interval = timedelta(minutes=integration.frequency_minutes)
    failures = integration.consecutive_failures or 0
    if failures > 0:
        interval = max(interval, min(interval * 2 ** min(failures - 1, 16), MAX_BACKOFF))
    return interval


def next_sync_at(integration: Schedulable) -> datetime | None:
    """None when the integration is not scheduled (Incomplete or Inactive)."""
    if integration.status not in lifecycle.SCHEDULED:
        return None
    if integration.sync_requested_at is not None:
        return integration.sync_requested_at
    anchors = [t for t in (integration.last_attempt_at, integration.activated_at) if t is not None]
    base = max(anchors) if anchors else integration.created_at
    return base + sync_interval(integration)


def is_due(integration: Schedulable, now: datetime) -> bool:
    due = next_sync_at(integration)
    return due is not None and due <= now


def run_key(integration: Schedulable) -> str:
    """One run per due slot: Dagster never launches the same run key twice for a sensor."""
    due = next_sync_at(integration)
    slot = int(due.timestamp()) if due is not None else 0
    return f"{integration.name}:{slot}"


def health_due(latest: Mapping[str, HealthResult], now: datetime, interval: timedelta) -> bool:
    """Whether an integration's health checks should run again: some check has no result yet,
    or the oldest of the latest results is ``interval`` old."""
    if any(check.value not in latest for check in ALL_CHECKS):
        return True
    oldest = min(latest[check.value].at for check in ALL_CHECKS)
    return now - oldest >= interval


def health_slot(now: datetime, interval: timedelta) -> int:
    """The health run's slot: one run key per interval, so a sensor never requests two in one."""
    return int(now.timestamp() // interval.total_seconds())
