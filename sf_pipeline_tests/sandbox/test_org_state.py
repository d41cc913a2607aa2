"""The org in process: records, audit timestamps, soft delete, conversion, the clock and Ids."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sf_pipeline.sandbox import Org, OrgClock
from sf_pipeline.sandbox import ids as sf_ids


def test_created_records_get_ids_and_audit_timestamps_from_the_org_clock(org: Org) -> None:
    [lead] = org.create("Lead", [{"LastName": "Ng", "Company": "Acme"}])
    assert lead.startswith("00Q") and len(lead) == 18
    record = org.get("Lead", lead)
    assert (
        record["CreatedDate"]
        == record["LastModifiedDate"]
        == record["SystemModstamp"]
        == "2024-06-15T12:00:00.000+0000"
    )
    assert record["IsDeleted"] is False
    assert record["Status"] == "Open - Not Contacted"
    assert record["HasOptedOutOfEmail"] is False


def test_automatic_timestamps_are_truncated_to_the_second(org: Org) -> None:
    org.clock.set(datetime(2024, 6, 15, 12, 0, 0, 987654, tzinfo=UTC))
    [lead] = org.create("Lead", [{"LastName": "Ng", "Company": "Acme"}])
    assert org.get("Lead", lead)["CreatedDate"] == "2024-06-15T12:00:00.000+0000"


def test_explicit_timestamps_override_the_clock(org: Org) -> None:
    [lead] = org.create(
        "Lead",
        [{"LastName": "Ng", "Company": "A", "CreatedDate": "2020-01-01T00:00:00Z"}],
        at="2021-05-05T05:05:05.123+02:00",
    )
    record = org.get("Lead", lead)
    assert record["CreatedDate"] == "2020-01-01T00:00:00.000+0000"
    assert record["LastModifiedDate"] == "2021-05-05T03:05:05.123+0000"


def test_update_bumps_last_modified_and_system_modstamp(org: Org) -> None:
    [lead] = org.create("Lead", [{"LastName": "Ng", "Company": "A"}])
    org.clock.advance(60)
    org.update("Lead", lead, {"email": "ng@a.test"})
    record = org.get("Lead", lead)
    assert record["Email"] == "ng@a.test"
    assert record["CreatedDate"] == "2024-06-15T12:00:00.000+0000"
    assert record["LastModifiedDate"] == record["SystemModstamp"] == "2024-06-15T12:01:00.000+0000"


def test_system_only_update_moves_system_modstamp_alone(org: Org) -> None:
    [lead] = org.create("Lead", [{"LastName": "Ng", "Company": "A"}])
    org.update("Lead", lead, {}, at="2024-07-01T00:00:00Z", system_only=True)
    record = org.get("Lead", lead)
    assert record["LastModifiedDate"] == "2024-06-15T12:00:00.000+0000"
    assert record["SystemModstamp"] == "2024-07-01T00:00:00.000+0000"


def test_delete_is_soft_and_undelete_reverses_it(org: Org) -> None:
    [lead] = org.create("Lead", [{"LastName": "Ng", "Company": "A"}])
    org.delete("Lead", [lead], at="2024-06-16T00:00:00Z")
    deleted = org.get("Lead", lead)
    assert deleted["IsDeleted"] is True
    assert deleted["LastModifiedDate"] == deleted["SystemModstamp"] == "2024-06-16T00:00:00.000+0000"
    assert org.count("Lead") == 0 and org.count("Lead", include_deleted=True) == 1
    org.undelete("Lead", lead, at="2024-06-17T00:00:00Z")
    assert org.get("Lead", lead)["IsDeleted"] is False
    assert org.get("Lead", lead)["LastModifiedDate"] == "2024-06-17T00:00:00.000+0000"


def test_touch_random_with_one_shared_timestamp(org: Org) -> None:
    org.create("Lead", [{"LastName": f"L{i}", "Company": "A"} for i in range(50)], at="2024-01-01T00:00:00Z")
    touched = org.touch_random("Lead", 20, same_timestamp=True, at="2024-06-01T00:00:00Z")
    assert len(set(touched)) == 20
    stamps = {org.get("Lead", t)["LastModifiedDate"] for t in touched}
    assert stamps == {"2024-06-01T00:00:00.000+0000"}
    untouched = org.query("SELECT COUNT() FROM Lead WHERE LastModifiedDate = 2024-01-01T00:00:00Z")
    assert untouched["totalSize"] == 30


def test_touch_random_without_shared_timestamp_spreads_them(org: Org) -> None:
    org.create("Lead", [{"LastName": f"L{i}", "Company": "A"} for i in range(10)], at="2024-01-01T00:00:00Z")
    touched = org.touch_random("Lead", 3)
    stamps = [org.get("Lead", t)["LastModifiedDate"] for t in touched]
    assert stamps == [
        "2024-06-15T12:00:00.000+0000",
        "2024-06-15T12:00:01.000+0000",
        "2024-06-15T12:00:02.000+0000",
    ]


def test_lead_conversion_creates_a_contact_and_marks_the_lead(org: Org) -> None:
    [lead] = org.create("Lead", [{"LastName": "Ng", "FirstName": "Al", "Company": "A", "Email": "al@a.test"}])
    contact = org.convert_lead(lead, at="2024-06-20T10:00:00Z")
    converted = org.get("Lead", lead)
    assert converted["IsConverted"] is True
    assert converted["ConvertedContactId"] == contact
    assert converted["ConvertedDate"] == "2024-06-20"
    assert converted["Status"] == "Closed - Converted"
    assert org.get("Contact", contact)["Email"] == "al@a.test"
    with pytest.raises(ValueError):
        org.convert_lead(lead)


def test_campaign_member_reads_name_and_email_through_to_its_lead(org: Org) -> None:
    [lead] = org.create("Lead", [{"LastName": "Ng", "Company": "A", "Email": "old@a.test"}])
    [campaign] = org.create("Campaign", [{"Name": "C"}])
    [member] = org.create("CampaignMember", [{"CampaignId": campaign, "LeadId": lead}])
    org.update("Lead", lead, {"Email": "new@a.test"})
    assert org.get("CampaignMember", member)["Email"] == "new@a.test"
    with pytest.raises(ValueError):
        org.update("CampaignMember", member, {"Email": "x@a.test"})


@pytest.mark.parametrize(
    ("values", "error"),
    [
        ({"Nope": 1}, KeyError),
        ({"NumberOfEmployees": "ten"}, ValueError),
        ({"HasOptedOutOfEmail": None}, ValueError),
        ({"Id": "00Q8d0000000001EAA"}, ValueError),
        ({"ConvertedContactId": "bad id"}, ValueError),
    ],
)
def test_bad_values_are_refused(org: Org, values: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        org.create("Lead", [{"LastName": "N", "Company": "C", **values}])


def test_unknown_record_ids_and_objects_raise_key_error(org: Org) -> None:
    with pytest.raises(KeyError):
        org.get("Lead", "00Q8d0000000009EAA")
    with pytest.raises(KeyError):
        org.get("Opportunity", "00Q8d0000000009EAA")


def test_clock_freezes_sets_and_advances() -> None:
    clock = OrgClock(datetime(2024, 1, 1, tzinfo=UTC), frozen=True)
    assert clock.now() == datetime(2024, 1, 1, tzinfo=UTC)
    clock.advance(90)
    assert clock.now() == datetime(2024, 1, 1, 0, 1, 30, tzinfo=UTC)
    clock.set(datetime(2025, 1, 1))
    assert clock.now() == datetime(2025, 1, 1, tzinfo=UTC)
    clock.unfreeze()
    assert clock.now() >= datetime(2025, 1, 1, tzinfo=UTC)
    assert not clock.frozen


def test_ids_have_valid_checksums_sort_by_creation_and_normalise() -> None:
    made = sf_ids.make_ids("00Q", 1, 5000)
    assert made == [sf_ids.make_id("00Q", i) for i in range(1, 5001)]
    assert made == sorted(made)
    for value in made[::97]:
        assert value[15:] == sf_ids.checksum(value[:15])
        assert sf_ids.normalize(value[:15]) == value
        assert sf_ids.normalize(value.lower()) == value
        assert sf_ids.counter_of(value) == made.index(value) + 1
    assert sf_ids.checksum("001A0000006Vm9r") == "IAC"  # Salesforce's documented example
    assert sf_ids.normalize("not an id") is None
