"""The lifecycle rules: pause, resume, and the failure backoff and its reset."""

from datetime import UTC, datetime, timedelta

from sf_pipeline import lifecycle, scheduling
from sf_pipeline.storage.models import Credential, Integration

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def integration(status: str = "active", **values: object) -> Integration:
    row = Integration(name="acme", project_id=1, login_url="https://login.salesforce.com", status=status,
                      frequency_minutes=60, consecutive_failures=0, created_at=NOW - timedelta(days=1))
    for key, value in values.items():
        setattr(row, key, value)
    return row


def test_pause_makes_it_inactive_once_and_unscheduled() -> None:
    row = integration()
    assert lifecycle.pause(row) and row.status == "inactive"
    assert not lifecycle.pause(row)
    assert not lifecycle.is_scheduled(row) and scheduling.next_sync_at(row) is None


def test_resume_restarts_the_schedule_and_clears_the_backoff() -> None:
    row = integration("inactive", consecutive_failures=6, last_attempt_at=NOW - timedelta(days=2))
    assert lifecycle.resume(row, now=NOW, setup_complete=True)
    assert (row.status, row.consecutive_failures, row.activated_at) == ("active", 0, NOW)
    assert scheduling.next_sync_at(row) == NOW + timedelta(minutes=60)
    assert not lifecycle.resume(row, now=NOW, setup_complete=True)  # not paused: nothing changes


def test_resume_of_an_unfinished_setup_is_incomplete() -> None:
    row = integration("inactive")
    assert lifecycle.resume(row, now=NOW, setup_complete=False)
    assert row.status == "incomplete" and not lifecycle.is_scheduled(row)


def test_failures_back_off_and_set_error_and_a_success_resets_both() -> None:
    row = integration(last_attempt_at=NOW)
    lifecycle.sync_failed(row, "boom")
    lifecycle.sync_failed(row, "boom again")
    assert (row.status, row.consecutive_failures, row.last_error) == ("error", 2, "boom again")
    assert scheduling.sync_interval(row) == timedelta(minutes=120)
    lifecycle.sync_succeeded(row, now=NOW)
    assert (row.status, row.consecutive_failures, row.last_error, row.last_synced_at) == ("active", 0, None, NOW)
    assert scheduling.sync_interval(row) == timedelta(minutes=60)


def test_a_run_never_changes_a_paused_or_incomplete_status() -> None:
    for status in ("inactive", "incomplete"):
        row = integration(status)
        lifecycle.sync_failed(row, "boom")
        assert row.status == status
        lifecycle.sync_succeeded(row, now=NOW)
        assert row.status == status


def test_health_checks_run_for_connected_integrations_that_are_not_paused() -> None:
    credential = Credential(instance_url="https://x", refresh_token_enc="e", client_id="c")
    assert lifecycle.is_monitored(integration("error", credential=credential))
    assert lifecycle.is_monitored(integration("incomplete", credential=credential))
    assert not lifecycle.is_monitored(integration("inactive", credential=credential))
    assert not lifecycle.is_monitored(integration("active"))
