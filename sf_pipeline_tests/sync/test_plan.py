"""The incremental boundary: what each run asks Salesforce for."""

from datetime import UTC, datetime, timedelta

from sf_pipeline.sync.plan import parse_sf_datetime, plan_object, soql_datetime

FIELDS = ("Id", "LastModifiedDate", "IsDeleted", "Email")
WATERMARK = datetime(2026, 11, 1, 12, 0, 0, 250000, tzinfo=UTC)


def plan(**overrides):  # type: ignore[no-untyped-def]
    args = dict(object_name="Lead", fields=FIELDS, where=None, mappings=[("Email", "email")],
                stored_watermark=None, stored_fingerprint=None, force_full=False)
    args.update(overrides)
    return plan_object(**args)


def test_first_run_of_an_object_is_full_and_unbounded() -> None:
    first = plan()
    assert first.full and first.since is None
    assert first.soql() == (
        "SELECT Id, LastModifiedDate, IsDeleted, Email FROM Lead ORDER BY LastModifiedDate ASC, Id ASC"
    )


def test_incremental_run_reads_from_the_watermark_minus_the_lookback_inclusively() -> None:
    fingerprint = plan().fingerprint
    later = plan(stored_watermark=WATERMARK, stored_fingerprint=fingerprint, lookback=timedelta(minutes=10))
    assert not later.full
    assert later.since == WATERMARK - timedelta(minutes=10)
    assert "LastModifiedDate >= 2026-11-01T11:50:00.250Z" in later.soql()
    assert later.soql().endswith("ORDER BY LastModifiedDate ASC, Id ASC")


def test_rules_are_parenthesised_beside_the_watermark_condition() -> None:
    base = plan(where="(Rating = 'Hot') OR (Email != null)")
    later = plan(where="(Rating = 'Hot') OR (Email != null)", stored_watermark=WATERMARK,
                 stored_fingerprint=base.fingerprint)
    assert " AND ((Rating = 'Hot') OR (Email != null))" in later.soql()


def test_changed_rules_or_mappings_force_a_full_run() -> None:
    fingerprint = plan().fingerprint
    assert plan(where="(Rating = 'Hot')", stored_watermark=WATERMARK, stored_fingerprint=fingerprint).full
    assert plan(mappings=[("Email", "work_email")], stored_watermark=WATERMARK, stored_fingerprint=fingerprint).full
    assert plan(stored_watermark=WATERMARK, stored_fingerprint=fingerprint, force_full=True).full


def test_salesforce_datetimes_round_trip_through_soql_literals() -> None:
    parsed = parse_sf_datetime("2026-11-01T12:00:00.250+0000")
    assert parsed == WATERMARK
    assert soql_datetime(parsed) == "2026-11-01T12:00:00.250Z"
