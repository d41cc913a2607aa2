"""The fields a sync selects beyond the mapped ones: parents' ``LastModifiedDate`` for objects
mapped through parents, and a Lead's conversion fields when the org has them."""

from __future__ import annotations

import dataclasses

from sf_pipeline.mapping import MappingSpec, resolve_object_mapping
from sf_pipeline.salesforce.describe import ObjectDescribe
from sf_pipeline.sync.fields import CONVERSION_FIELDS, with_sync_fields
from sf_pipeline_tests.describes import CONTACT, LEAD, describe


def test_a_lead_gains_its_conversion_fields_with_their_describe_types() -> None:
    mapping = resolve_object_mapping("Lead", [MappingSpec("Email", "email")], describe)
    extended, parents = with_sync_fields("Lead", mapping, LEAD)
    assert parents == ()
    assert extended.soql_fields == (*mapping.soql_fields, *CONVERSION_FIELDS)
    assert dict(zip(extended.soql_fields, extended.field_types, strict=True))["ConvertedDate"] == "date"
    assert dict(zip(extended.soql_fields, extended.field_types, strict=True))["IsConverted"] == "boolean"
    # No property maps the extra fields: they never reach a user's values.
    assert extended.properties == mapping.properties


def test_a_lead_from_an_org_missing_a_conversion_field_gets_none_of_them() -> None:
    without = ObjectDescribe(name="Lead", fields={n: f for n, f in LEAD.fields.items() if n != "ConvertedContactId"})
    mapping = resolve_object_mapping("Lead", [MappingSpec("Email", "email")], describe)
    extended, _ = with_sync_fields("Lead", mapping, without)
    assert extended is mapping
    assert not set(CONVERSION_FIELDS) & set(extended.soql_fields)


def test_a_conversion_field_already_mapped_is_not_selected_twice() -> None:
    mapping = resolve_object_mapping("Lead", [MappingSpec("Email", "email"), MappingSpec("IsConverted", "converted")],
                                     describe)
    extended, _ = with_sync_fields("Lead", mapping, LEAD)
    lowered = [f.lower() for f in extended.soql_fields]
    assert lowered.count("isconverted") == 1
    assert {"converteddate", "convertedcontactid"} <= set(lowered)


def test_an_object_without_parents_or_conversions_is_returned_unchanged() -> None:
    mapping = resolve_object_mapping("Contact", [MappingSpec("Email", "email")], describe)
    extended, parents = with_sync_fields("Contact", mapping, CONTACT)
    assert extended is mapping and parents == ()


def test_a_parent_path_adds_that_parents_last_modified_date_once() -> None:
    mapping = resolve_object_mapping(
        "CampaignMember", [MappingSpec("Lead.Email", "lead_email", object_name="CampaignMember"),
                           MappingSpec("Lead.FirstName", "lead_first", object_name="CampaignMember")], describe)
    extended, parents = with_sync_fields("CampaignMember", mapping, describe("CampaignMember"))
    # A CampaignMember always reads through Lead and Contact; Lead is not listed a second time.
    assert parents == ("Lead", "Contact")
    stamps = [f for f in extended.soql_fields if f.endswith(".LastModifiedDate")]
    assert stamps == ["Lead.LastModifiedDate", "Contact.LastModifiedDate"]
    types = dict(zip(extended.soql_fields, extended.field_types, strict=True))
    assert types["Lead.LastModifiedDate"] == types["Contact.LastModifiedDate"] == "datetime"


def test_a_campaign_member_mapping_only_its_own_fields_still_watches_lead_and_contact() -> None:
    mapping = resolve_object_mapping("CampaignMember", [MappingSpec("Status", "status", object_name="CampaignMember")],
                                     describe)
    extended, parents = with_sync_fields("CampaignMember", mapping, describe("CampaignMember"))
    assert parents == ("Lead", "Contact")
    assert extended.soql_fields[: len(mapping.soql_fields)] == mapping.soql_fields
    assert extended.soql_fields[len(mapping.soql_fields):] == ("Lead.LastModifiedDate", "Contact.LastModifiedDate")


def test_a_custom_object_with_a_lookup_watches_that_relationship() -> None:
    mapping = resolve_object_mapping("Contact", [MappingSpec("Email", "email")], describe)
    through_owner = dataclasses.replace(mapping, soql_fields=(*mapping.soql_fields, "Owner.Email"),
                                        field_types=(*mapping.field_types, "email"))
    extended, parents = with_sync_fields("Contact", through_owner, CONTACT)
    assert parents == ("Owner",)
    assert extended.soql_fields[-1] == "Owner.LastModifiedDate"


def test_the_object_name_is_matched_case_insensitively() -> None:
    mapping = resolve_object_mapping("Lead", [MappingSpec("Email", "email")], describe)
    extended, _ = with_sync_fields("lead", mapping, LEAD)
    assert set(CONVERSION_FIELDS) <= set(extended.soql_fields)
