"""Field mappings: which fields are queried, and how one Salesforce REST record becomes a user."""

from __future__ import annotations

from typing import Any

import pytest

from sf_pipeline.errors import ConfigError
from sf_pipeline.mapping import (
    TOP_LEVEL,
    MappedUser,
    MappingSpec,
    ObjectMapping,
    ValueWarning,
    compile_object_mapping,
    default_mappings,
)
from sf_pipeline.storage.models import FieldMapping
from sf_pipeline_tests.describes import counting_describe, describe


def _mapping(object_name: str, *specs: MappingSpec) -> ObjectMapping:
    return compile_object_mapping(object_name, list(specs), describe)


def _convert(field: str, value: Any, *, prop: str = "p", type_: str | None = None, obj: str = "Lead") -> MappedUser:
    return _mapping(obj, MappingSpec(field, prop, type=type_)).convert({field: value})


def _value(field: str, value: Any, **kwargs: Any) -> Any:
    user = _convert(field, value, **kwargs)
    assert user.warnings == []
    return user.data["p"]


# --- what is queried -------------------------------------------------------------------------------


def test_soql_fields_are_the_bookkeeping_fields_then_mapped_fields_in_order_without_repeats() -> None:
    mapping = _mapping(
        "Lead",
        MappingSpec("email", "email"),
        MappingSpec("Company", "company"),
        MappingSpec("Email", "contact_email"),
        MappingSpec("LastModifiedDate", "modified"),
        MappingSpec("Company", "employer"),
    )
    assert mapping.soql_fields == ("Id", "LastModifiedDate", "IsDeleted", "Email", "Company")


def test_parent_paths_are_queried_through_the_relationship_with_canonical_names() -> None:
    mapping = _mapping("CampaignMember", MappingSpec("lead.email", "email"), MappingSpec("Campaign.Name", "campaign"))
    assert mapping.soql_fields == ("Id", "LastModifiedDate", "IsDeleted", "Lead.Email", "Campaign.Name")


def test_a_mapping_applies_to_every_object_with_the_field_unless_limited_to_one() -> None:
    specs = [
        MappingSpec("Email", "email"),
        MappingSpec("Company", "company"),
        MappingSpec("Birthdate", "birthday"),
        MappingSpec("Title", "job", object_name="Contact"),
    ]
    lead = compile_object_mapping("Lead", specs, describe)
    contact = compile_object_mapping("Contact", specs, describe)
    assert lead.properties == ("email", "company")
    assert lead.skipped == ("Birthdate",)
    assert contact.properties == ("email", "birthday", "job")
    assert contact.skipped == ("Company",)


def test_describe_is_consulted_when_compiling_never_per_record() -> None:
    tracked, calls = counting_describe()
    mapping = compile_object_mapping("CampaignMember", [MappingSpec("Lead.Email", "email")], tracked)
    asked = len(calls)
    for _ in range(100):
        mapping.convert({"Lead": {"Email": "a@b.co"}})
    assert len(calls) == asked


# --- natural conversions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "raw", "expected"),
    [
        ("Company", "Acme Pty", "Acme Pty"),
        ("Rating", "Hot", "Hot"),
        ("Website", "https://acme.example", "https://acme.example"),
        ("MobilePhone", "+61 400 000 000", "+61 400 000 000"),
        ("Id", "00Q000000000001AAA", "00Q000000000001AAA"),
        ("ConvertedContactId", "003000000000001AAA", "003000000000001AAA"),
        ("NumberOfEmployees", 250, 250),
        ("NumberOfEmployees", 250.0, 250),
        ("AnnualRevenue", 1.0e7, 10000000),
        ("AnnualRevenue", 1234.56, 1234.56),
        ("Discount__c", 12.5, 12.5),
        ("Score__c", "7", 7),
        ("Big_Count__c", 9007199254740993, 9007199254740993),
        ("IsConverted", True, True),
        ("IsConverted", False, False),
        ("ConvertedDate", "2024-01-05", "2024-01-05"),
        ("CreatedDate", "2024-01-01T09:30:15.000+0000", "2024-01-01T09:30:15Z"),
        ("CreatedDate", "2024-01-01T09:30:15.000+1000", "2023-12-31T23:30:15Z"),
        ("CreatedDate", "2024-01-01T09:30:15Z", "2024-01-01T09:30:15Z"),
        ("Interests__c", "Golf;Tennis;Ski", ["Golf", "Tennis", "Ski"]),
        ("Interests__c", "Golf", ["Golf"]),
    ],
)
def test_salesforce_types_convert_to_their_natural_property_types(field: str, raw: Any, expected: Any) -> None:
    value = _value(field, raw)
    assert value == expected and type(value) is type(expected)


def test_textarea_converts_to_text() -> None:
    assert _value("Description", "line one\nline two") == "line one\nline two"


def test_non_ascii_passes_through_untouched() -> None:
    user = _mapping("Lead", MappingSpec("FirstName", "first_name"), MappingSpec("Email", "email")).convert(
        {"FirstName": "Zoë 東京 🚀", "Email": "zoë@exämple.com"}
    )
    assert (user.data["first_name"], user.email) == ("Zoë 東京 🚀", "zoë@exämple.com")


# --- property types --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "raw", "type_", "expected"),
    [
        ("Company", "42", "number", 42),
        ("Company", " -4.5 ", "number", -4.5),
        ("Company", "TRUE", "boolean", True),
        ("Company", "2024-03-01", "date", "2024-03-01"),
        ("Company", "2024-03-01T10:00:00+01:00", "date", "2024-03-01T09:00:00Z"),
        ("Company", "Acme", "array", ["Acme"]),
        ("AnnualRevenue", 1500.0, "string", "1500"),
        ("IsConverted", True, "string", "true"),
        ("ConvertedDate", "2024-01-05", "string", "2024-01-05"),
        ("Interests__c", "A;B", "string", "A;B"),
        ("CreatedDate", "2024-01-01T00:00:00.000+0000", "date", "2024-01-01T00:00:00Z"),
    ],
)
def test_a_mapping_type_converts_values_to_that_type(field: str, raw: Any, type_: str, expected: Any) -> None:
    assert _value(field, raw, type_=type_) == expected


@pytest.mark.parametrize(
    ("field", "raw", "type_", "reason"),
    [
        ("Company", "abc", "number", "not a number"),
        ("Company", "1,000", "number", "not a number"),
        ("Company", "NaN", "number", "not a number"),
        ("Company", "yes", "boolean", "expected true or false"),
        ("Company", "next week", "date", "not an ISO-8601 datetime"),
        ("AnnualRevenue", "lots", "number", "not a number"),
    ],
)
def test_a_value_that_does_not_fit_its_property_type_is_dropped_with_a_warning(
    field: str, raw: Any, type_: str, reason: str
) -> None:
    user = _convert(field, raw, type_=type_)
    assert "p" not in user.data
    assert [(w.property, w.field) for w in user.warnings] == [("p", field)]
    assert reason in user.warnings[0].reason


def test_a_dropped_value_leaves_the_rest_of_the_record_mapped() -> None:
    mapping = _mapping(
        "Lead",
        MappingSpec("Email", "email"),
        MappingSpec("Company", "revenue_guess", type="number"),
        MappingSpec("FirstName", "first_name"),
    )
    user = mapping.convert({"Email": "a@b.co", "Company": "Acme", "FirstName": "Ann"})
    assert (user.email, user.data) == ("a@b.co", {"first_name": "Ann"})
    assert [w.property for w in user.warnings] == ["revenue_guess"]


def test_warnings_carry_a_short_preview_of_the_value() -> None:
    user = _convert("Company", "x" * 500, type_="number")
    preview = user.warnings[0].value
    assert len(preview) <= 40 and preview.startswith("xxx") and preview.endswith("…")


# --- top-level fields ----------------------------------------------------------------------------


def test_email_phone_timezone_and_locale_are_top_level_everything_else_is_data() -> None:
    mapping = _mapping(
        "Lead",
        *default_mappings(),
        MappingSpec("Timezone__c", "timezone"),
        MappingSpec("Locale__c", "locale"),
        MappingSpec("Company", "company"),
    )
    user = mapping.convert(
        {
            "Email": "ann@acme.example",
            "FirstName": "Ann",
            "LastName": "Lee",
            "Phone": "+61 2 5550 1234",
            "Timezone__c": "Australia/Sydney",
            "Locale__c": "en-AU",
            "Company": "Acme",
        }
    )
    assert (user.email, user.phone, user.timezone, user.locale) == (
        "ann@acme.example",
        "+61 2 5550 1234",
        "Australia/Sydney",
        "en-AU",
    )
    assert user.data == {"first_name": "Ann", "last_name": "Lee", "company": "Acme"}
    assert frozenset({"email", "phone", "timezone", "locale"}) == TOP_LEVEL


@pytest.mark.parametrize(
    "email",
    [
        "plainaddress",
        "@acme.com",
        "ann@",
        "ann@acme",
        "ann@@acme.com",
        "ann lee@acme.com",
        "ann@.acme.com",
        "ann@acme.com.",
        "ann@acme..com",
        f"{'a' * 312}@acme.com",
    ],
)
def test_malformed_emails_are_dropped_with_a_warning(email: str) -> None:
    user = _mapping("Lead", MappingSpec("Email", "email"), MappingSpec("FirstName", "first_name")).convert(
        {"Email": email, "FirstName": "Ann"}
    )
    assert user.email is None and user.data == {"first_name": "Ann"}
    assert [w.field for w in user.warnings] == ["Email"]


@pytest.mark.parametrize("email", ["ann@acme.com", "ann.lee+news@mail.acme.com.au", "o'brien@acme.ie"])
def test_ordinary_emails_are_kept(email: str) -> None:
    assert _mapping("Lead", MappingSpec("Email", "email")).convert({"Email": email}).email == email


@pytest.mark.parametrize(
    ("prop", "field", "limit"),
    [
        ("phone", "Phone", 64),
        ("timezone", "Timezone__c", 50),
        ("locale", "Locale__c", 255),
        ("notes", "Company", 65_535),
    ],
)
def test_values_longer_than_their_field_allows_are_dropped(prop: str, field: str, limit: int) -> None:
    mapping = _mapping("Lead", MappingSpec(field, prop))
    assert mapping.convert({field: "9" * limit}).warnings == []
    user = mapping.convert({field: "9" * (limit + 1)})
    assert [(w.property, w.reason) for w in user.warnings] == [(prop, f"longer than {limit:,} characters")]
    assert getattr(user, prop, None) is None and prop not in user.data


# --- opt-out ---------------------------------------------------------------------------------------


def test_has_opted_out_of_email_maps_to_a_boolean_opt_out_property() -> None:
    mapping = _mapping("Lead", MappingSpec("HasOptedOutOfEmail", "unsubscribed"))
    assert mapping.opt_out_properties == {"unsubscribed"}
    assert mapping.convert({"HasOptedOutOfEmail": True}).data == {"unsubscribed": True}
    assert mapping.convert({"HasOptedOutOfEmail": False}).data == {"unsubscribed": False}


def test_a_string_destination_never_drives_opt_out() -> None:
    mapping = _mapping("Lead", MappingSpec("HasOptedOutOfEmail", "unsubscribed", type="string"))
    assert mapping.opt_out_properties == frozenset()
    assert mapping.convert({"HasOptedOutOfEmail": True}).data == {"unsubscribed": "true"}


def test_campaign_members_take_opt_out_from_their_parent_lead_or_contact() -> None:
    mapping = _mapping(
        "CampaignMember",
        MappingSpec("Lead.HasOptedOutOfEmail", "unsubscribed"),
        MappingSpec("Contact.HasOptedOutOfEmail", "unsubscribed"),
    )
    assert mapping.opt_out_properties == {"unsubscribed"}
    assert mapping.convert({"Lead": None, "Contact": {"HasOptedOutOfEmail": True}}).data == {"unsubscribed": True}
    assert mapping.convert({"Lead": {"HasOptedOutOfEmail": False}, "Contact": None}).data == {"unsubscribed": False}


# --- nulls and several sources -----------------------------------------------------------------------


def test_null_or_empty_salesforce_values_clear_their_property() -> None:
    mapping = _mapping("Lead", MappingSpec("Email", "email"), MappingSpec("Company", "company"))
    for empty in (None, ""):
        user = mapping.convert({"Email": empty, "Company": empty})
        assert user.email is None and user.data == {"company": None} and user.warnings == []
    assert mapping.convert({}).data == {"company": None}


def test_an_empty_parent_lookup_maps_to_none() -> None:
    mapping = _mapping("CampaignMember", MappingSpec("Lead.Email", "email"), MappingSpec("Lead.Company", "company"))
    user = mapping.convert({"Lead": None})
    assert (user.email, user.data) == (None, {"company": None})


def test_the_first_non_null_source_of_a_property_wins() -> None:
    mapping = _mapping("CampaignMember", MappingSpec("Lead.Email", "email"), MappingSpec("Contact.Email", "email"))
    assert mapping.convert({"Lead": {"Email": "lead@a.co"}, "Contact": {"Email": "c@a.co"}}).email == "lead@a.co"
    assert mapping.convert({"Lead": None, "Contact": {"Email": "c@a.co"}}).email == "c@a.co"
    fallback = mapping.convert({"Lead": {"Email": "broken"}, "Contact": {"Email": "c@a.co"}})
    assert fallback.email == "c@a.co" and [w.field for w in fallback.warnings] == ["Lead.Email"]


# --- invalid mappings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "key", "reason"),
    [
        (
            MappingSpec("Nope__c", "x", object_name="Lead"),
            "mappings[0].field",
            "field 'Nope__c' does not exist on Lead",
        ),
        (MappingSpec("Address", "address"), "mappings[0].field", "address field, which cannot be mapped"),
        (MappingSpec("Owner.Name", "owner"), "", "can point at several objects"),
        (MappingSpec("Phone", "phone", type="number"), "mappings[0].type", "top-level text field"),
        (MappingSpec("ConvertedDate", "x", type="boolean"), "mappings[0].type", "cannot fill a boolean property"),
        (MappingSpec("IsConverted", "x", type="number"), "mappings[0].type", "cannot fill a number property"),
        (MappingSpec("Company", "x", type="integer"), "mappings[0].type", "unknown type 'integer'"),
        (MappingSpec("Company", "bad-name"), "mappings[0].property", "invalid property name"),
    ],
)
def test_impossible_mappings_are_config_errors_naming_mapping_and_reason(
    spec: MappingSpec, key: str, reason: str
) -> None:
    with pytest.raises(ConfigError, match=reason) as raised:
        _mapping("Lead", spec)
    if key:
        assert raised.value.key == key


def test_mappings_for_other_objects_are_ignored() -> None:
    mapping = _mapping("Lead", MappingSpec("Birthdate", "birthday", object_name="Contact"))
    assert mapping.properties == () and mapping.skipped == ()


# --- stored rows -------------------------------------------------------------------------------------


def test_stored_mapping_rows_compile_like_specs_including_their_type() -> None:
    rows = [
        FieldMapping(field="HasOptedOutOfEmail", property="unsubscribed", type="string", object_name=None, position=0),
        FieldMapping(field="Email", property="email", object_name="Lead", position=1),
    ]
    mapping = compile_object_mapping("Lead", rows, describe)
    user = mapping.convert({"HasOptedOutOfEmail": True, "Email": "a@b.co"})
    assert (user.email, user.data) == ("a@b.co", {"unsubscribed": "true"})


def test_default_mappings_are_the_four_documented_ones() -> None:
    assert [(m.field, m.property, m.object_name, m.type) for m in default_mappings()] == [
        ("Email", "email", None, None),
        ("FirstName", "first_name", None, None),
        ("LastName", "last_name", None, None),
        ("Phone", "phone", None, None),
    ]


def test_value_warning_and_mapped_user_are_slotted() -> None:
    assert not hasattr(MappedUser(), "__dict__")
    assert not hasattr(ValueWarning("p", "f", "r", "v"), "__dict__")


def test_a_date_mapped_to_email_is_still_checked_as_an_email() -> None:
    user = _mapping("Lead", MappingSpec("ConvertedDate", "email")).convert({"ConvertedDate": "2024-01-05"})
    assert user.email is None and [w.reason for w in user.warnings] == ["not a valid email address"]
