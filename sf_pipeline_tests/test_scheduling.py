"""When the dispatcher considers an integration due."""

from datetime import UTC, datetime, timedelta

from sf_pipeline import scheduling
from sf_pipeline.storage.models import HealthResult, Integration

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def integration(**values):  # type: ignore[no-untyped-def]
    row = Integration(name="acme", project_id=1, login_url="https://login.salesforce.com", status="active",
                      frequency_minutes=60, consecutive_failures=0, created_at=NOW - timedelta(days=1))
    for key, value in values.items():
        setattr(row, key, value)
    return row


def test_an_active_integration_is_due_one_frequency_after_its_last_attempt() -> None:
    row = integration(last_attempt_at=NOW - timedelta(minutes=59))
    assert not scheduling.is_due(row, NOW)
    assert scheduling.is_due(row, NOW + timedelta(minutes=1))


def test_lowering_the_frequency_takes_effect_at_the_next_tick() -> None:
    row = integration(last_attempt_at=NOW - timedelta(minutes=6))
    assert not scheduling.is_due(row, NOW)
    row.frequency_minutes = 5
    assert scheduling.is_due(row, NOW)


def test_paused_and_incomplete_integrations_are_never_due() -> None:
    for status in ("inactive", "incomplete"):
        row = integration(status=status, last_attempt_at=NOW - timedelta(days=3))
        assert scheduling.next_sync_at(row) is None
        assert not scheduling.is_due(row, NOW)


def test_resume_waits_a_full_interval_rather_than_syncing_at_once() -> None:
    row = integration(last_attempt_at=NOW - timedelta(days=2), activated_at=NOW)
    assert scheduling.next_sync_at(row) == NOW + timedelta(minutes=60)


def test_a_requested_initial_sync_is_due_immediately() -> None:
    row = integration(sync_requested_at=NOW)
    assert scheduling.is_due(row, NOW)


def test_repeated_failures_back_off_exponentially_up_to_a_day() -> None:
    row = integration(last_attempt_at=NOW)
    intervals = []
    for failures in (0, 1, 2, 3, 12):
        row.consecutive_failures = failures
        intervals.append(scheduling.sync_interval(row))
    assert intervals[:4] == [timedelta(minutes=m) for m in (60, 60, 120, 240)]
    assert intervals[4] == timedelta(hours=24)


def test_run_keys_differ_per_due_slot() -> None:
    row = integration(last_attempt_at=NOW)
    first = scheduling.run_key(row)
    row.last_attempt_at = NOW + timedelta(hours=1)
    assert scheduling.run_key(row) != first
    assert first.startswith("acme:")


def results(**ages_minutes: float) -> dict[str, HealthResult]:
    return {name: HealthResult(check_name=name, passed=True, at=NOW - timedelta(minutes=age), details={})
            for name, age in ages_minutes.items()}


def test_health_runs_are_due_when_a_check_has_never_run() -> None:
    assert scheduling.health_due({}, NOW, timedelta(minutes=15))
    assert scheduling.health_due(results(credentials=1, field_mappings=1, api_limits=1), NOW, timedelta(minutes=15))


def test_health_runs_are_due_once_the_oldest_latest_result_is_an_interval_old() -> None:
    every = {"credentials": 1, "field_mappings": 1, "api_limits": 1}
    assert not scheduling.health_due(results(**every, sync_staleness=14), NOW, timedelta(minutes=15))
    assert scheduling.health_due(results(**every, sync_staleness=15), NOW, timedelta(minutes=15))


def test_health_run_slots_change_once_per_interval() -> None:
    interval = timedelta(minutes=15)
    start = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert scheduling.health_slot(start, interval) == scheduling.health_slot(start + timedelta(minutes=14), interval)
    assert scheduling.health_slot(start, interval) + 1 == scheduling.health_slot(start + timedelta(minutes=15),
                                                                                 interval)
