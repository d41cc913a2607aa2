"""When an integration's next sync is due, from what the database holds right now.

The dispatcher sensor asks this every tick, so a frequency change, pause or resume applies at
the next tick with no reload. Failures back off: after k consecutive failed runs the interval is
``frequency * 2^(k-1)``, capped at 24 hours, so an integration that keeps failing does not
retry-storm Salesforce; the first success resets it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sf_pipeline.storage.models import Integration, IntegrationStatus

MIN_FREQUENCY_MINUTES = 5
DEFAULT_FREQUENCY_MINUTES = 60
MAX_BACKOFF = timedelta(hours=24)
SCHEDULED = frozenset({IntegrationStatus.ACTIVE.value, IntegrationStatus.ERROR.value})


def sync_interval(integration: Integration) -> timedelta:
    interval = timedelta(minutes=integration.frequency_minutes)
    failures = integration.consecutive_failures or 0
    if failures > 0:
        interval = max(interval, min(interval * 2 ** min(failures - 1, 16), MAX_BACKOFF))
    return interval


def next_sync_at(integration: Integration) -> datetime | None:
    """None when the integration is not scheduled (Incomplete or Inactive)."""
    if integration.status not in SCHEDULED:
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
