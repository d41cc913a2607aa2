"""When an integration's next sync, and its next health run, are due, from what the database
holds right now.

The dispatcher sensors ask this every tick, so a frequency change, pause or resume applies at
the next tick with no reload. Failures back off: after k consecutive failed runs the interval is
``frequency * 2^(k-1)``, capped at 24 hours, so an integration that keeps failing does not
retry-storm Salesforce; the first success resets it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from sf_pipeline import lifecycle
from sf_pipeline.health import ALL_CHECKS
from sf_pipeline.storage.models import HealthResult, Integration

MIN_FREQUENCY_MINUTES = 5
DEFAULT_FREQUENCY_MINUTES = 60
MAX_BACKOFF = timedelta(hours=24)
DEFAULT_HEALTH_INTERVAL = timedelta(minutes=15)


def sync_interval(integration: Integration) -> timedelta:
    interval = timedelta(minutes=integration.frequency_minutes)
    failures = integration.consecutive_failures or 0
    if failures > 0:
        interval = max(interval, min(interval * 2 ** min(failures - 1, 16), MAX_BACKOFF))
    return interval


def next_sync_at(integration: Integration) -> datetime | None:
    """None when the integration is not scheduled (Incomplete or Inactive)."""
    if not lifecycle.is_scheduled(integration):
        return None
    if integration.sync_requested_at is not None:
        return integration.sync_requested_at
    anchors = [t for t in (integration.last_attempt_at, integration.activated_at) if t is not None]
    base = max(anchors) if anchors else integration.created_at
    return base + sync_interval(integration)


def is_due(integration: Integration, now: datetime) -> bool:
    due = next_sync_at(integration)
    return due is not None and due <= now


def run_key(integration: Integration) -> str:
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
