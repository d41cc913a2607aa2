"""An integration's lifecycle rules: pause, resume, and the failure backoff and its reset.

| status     | set when                                                                     |
|------------|------------------------------------------------------------------------------|
| Incomplete | created, until it has credentials, objects and saved mappings                |
| Active     | setup completes, ``resume``, or a successful sync / fully passing health run |
| Error      | a sync or a health check failed                                              |
| Inactive   | only ``pause``                                                               |

The CLI (pause, resume), the sync's run recording (success, failure) and the dispatcher sensors
(``is_scheduled``, ``is_monitored``) all ask this module, so each rule lives in one place.
"""

from __future__ import annotations

from datetime import datetime

from sf_pipeline.storage.models import Integration, IntegrationStatus

SCHEDULED = frozenset({IntegrationStatus.ACTIVE.value, IntegrationStatus.ERROR.value})


def is_scheduled(integration: Integration) -> bool:
    """Whether the dispatcher runs its syncs (Incomplete and Inactive integrations get none)."""
    return integration.status in SCHEDULED


def is_monitored(integration: Integration) -> bool:
    """Whether the health sensor runs its checks: every connected integration not paused."""
    return integration.status != IntegrationStatus.INACTIVE.value and integration.credential is not None


def pause(integration: Integration) -> bool:
    """Inactive: no scheduled runs; rules, mappings, credentials and watermarks stay. False if it
    already was."""
    if integration.status == IntegrationStatus.INACTIVE.value:
        return False
    integration.status = IntegrationStatus.INACTIVE.value
    return True


def resume(integration: Integration, *, now: datetime, setup_complete: bool) -> bool:
    """Active again (Incomplete if its setup is not finished); False if it was not paused.

    The admin fixed whatever made syncs fail before pausing, so the backoff starts afresh; the
    schedule restarts now, so the next sync is one frequency away, not an immediate one."""
    if integration.status != IntegrationStatus.INACTIVE.value:
        return False
    integration.status = (IntegrationStatus.ACTIVE if setup_complete else IntegrationStatus.INCOMPLETE).value
    integration.activated_at = now
    reset_backoff(integration)
    return True


def reset_backoff(integration: Integration) -> None:
    integration.consecutive_failures = 0


def sync_failed(integration: Integration, error: str) -> None:
    """One more consecutive failure (the dispatcher backs off); Active becomes Error."""
    integration.consecutive_failures = (integration.consecutive_failures or 0) + 1
    integration.last_error = error
    if integration.status in SCHEDULED:
        integration.status = IntegrationStatus.ERROR.value


def sync_succeeded(integration: Integration, *, now: datetime) -> None:
    """The backoff resets and Error returns to Active (paused and incomplete stay as they are)."""
    integration.last_synced_at = now
    reset_backoff(integration)
    integration.last_error = None
    if integration.status == IntegrationStatus.ERROR.value:
        integration.status = IntegrationStatus.ACTIVE.value
