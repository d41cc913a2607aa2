"""Describe metadata, and schema changes (renamed, deleted, added and hidden fields)."""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sf_pipeline.sandbox import Org, SandboxHandle

LEAD_FIELDS = {
    "Id": "id",
    "FirstName": "string",
    "LastName": "string",
    "Name": "string",
    "Email": "email",
    "Phone": "phone",
    "MobilePhone": "phone",
    "Company": "string",
    "Title": "string",
    "Status": "picklist",
    "Rating": "picklist",
    "Industry": "picklist",
    "LeadSource": "picklist",
    "Country": "string",
    "City": "string",
    "AnnualRevenue": "currency",
    "NumberOfEmployees": "int",
    "HasOptedOutOfEmail": "boolean",
    "Website": "url",
    "Description": "textarea",
    "Interests__c": "multipicklist",
    "Score__c": "double",
    "Discount__c": "percent",
    "Birthdate__c": "date",
    "LastActivityDate": "date",
    "IsConverted": "boolean",
    "ConvertedContactId": "reference",
    "ConvertedDate": "date",
    "CreatedDate": "datetime",
    "LastModifiedDate": "datetime",
    "SystemModstamp": "datetime",
    "IsDeleted": "boolean",
}
CONTACT_FIELDS = {
    "Email",
    "FirstName",
    "LastName",
    "Phone",
    "MobilePhone",
    "Title",
    "Department",
    "MailingCountry",
    "Birthdate",
    "HasOptedOutOfEmail",
    "LeadSource",
}
MEMBER_FIELDS = {
    "Id": "id",
    "CampaignId": "reference",
    "LeadId": "reference",
    "ContactId": "reference",
    "Status": "picklist",
    "HasResponded": "boolean",
    "Email": "email",
    "FirstName": "string",
    "LastName": "string",
    "CreatedDate": "datetime",
    "LastModifiedDate": "datetime",
    "SystemModstamp": "datetime",
    "IsDeleted": "boolean",
}


def fields(described: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in described["fields"]}


def test_global_describe_lists_the_objects(sf: Salesforce) -> None:
    described = sf.describe()
    assert described["encoding"] == "UTF-8"
    by_name = {s["name"]: s for s in described["sobjects"]}
    assert set(by_name) == {"Lead", "Contact", "Campaign", "CampaignMember"}
    assert by_name["Lead"]["keyPrefix"] == "00Q"
    assert by_name["CampaignMember"]["urls"]["describe"] == "/services/data/v59.0/sobjects/CampaignMember/describe"


def test_lead_describe_has_every_field_type_the_mapping_needs(sf: Salesforce) -> None:
    described = sf.Lead.describe()
    assert described["name"] == "Lead"
    got = fields(described)
    assert {name: got[name]["type"] for name in LEAD_FIELDS} == LEAD_FIELDS
    assert got["Interests__c"]["custom"] is True and got["Email"]["custom"] is False
    assert got["ConvertedContactId"]["referenceTo"] == ["Contact"]
    assert got["ConvertedContactId"]["relationshipName"] == "ConvertedContact"
    assert [v["value"] for v in got["Rating"]["picklistValues"]] == ["Hot", "Warm", "Cold"]
    assert got["Status"]["picklistValues"][0] == {
        "active": True,
        "defaultValue": True,
        "label": "Open - Not Contacted",
        "validFor": None,
        "value": "Open - Not Contacted",
    }
    assert got["FirstName"]["compoundFieldName"] == "Name"
    assert got["Email"]["compoundFieldName"] is None
    assert got["Description"]["filterable"] is False
    assert got["LastModifiedDate"]["soapType"] == "xsd:dateTime"
    assert got["Email"]["length"] == 80 and got["Email"]["nillable"] is True
    assert got["Id"]["updateable"] is False


def test_every_field_carries_the_full_key_set(sf: Salesforce) -> None:
    for name in ("Lead", "Contact", "Campaign", "CampaignMember"):
        described = sf.restful(f"sobjects/{name}/describe")
        keys = {frozenset(f) for f in described["fields"]}
        assert len(keys) == 1
        assert {
            "compoundFieldName",
            "relationshipName",
            "referenceTo",
            "picklistValues",
            "filterable",
            "sortable",
            "updateable",
            "nillable",
            "length",
            "label",
            "custom",
            "soapType",
        } <= next(iter(keys))


def test_contact_and_campaign_member_fields(sf: Salesforce) -> None:
    assert set(fields(sf.Contact.describe())) >= CONTACT_FIELDS
    member = fields(sf.CampaignMember.describe())
    assert {name: member[name]["type"] for name in MEMBER_FIELDS} == MEMBER_FIELDS
    assert (member["LeadId"]["relationshipName"], member["LeadId"]["referenceTo"]) == ("Lead", ["Lead"])
    assert (member["CampaignId"]["relationshipName"], member["CampaignId"]["referenceTo"]) == (
        "Campaign",
        ["Campaign"],
    )
    assert member["ContactId"]["relationshipName"] == "Contact"


def test_unreadable_field_disappears_from_describe_and_queries(org: Org, sf: Salesforce) -> None:
    org.set_field_readable("Lead", "Email", False)
    assert "Email" not in fields(sf.Lead.describe())
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query("SELECT Id, Email FROM Lead")
    assert caught.value.content[0]["errorCode"] == "INVALID_FIELD"
    org.set_field_readable("Lead", "Email", True)
    assert sf.query("SELECT Id, Email FROM Lead")["totalSize"] == 0


def test_renamed_field_keeps_its_data_under_the_new_name(sandbox: SandboxHandle, sf: Salesforce) -> None:
    [lead] = sandbox.control.create("Lead", [{"LastName": "N", "Company": "C", "Score__c": 7}])
    sandbox.control.rename_field("Lead", "Score__c", "Lead_Score__c")
    got = fields(sf.Lead.describe())
    assert "Score__c" not in got and got["Lead_Score__c"]["type"] == "double"
    assert sf.query("SELECT Lead_Score__c FROM Lead")["records"][0]["Lead_Score__c"] == 7.0
    with pytest.raises(SalesforceMalformedRequest):
        sf.query("SELECT Score__c FROM Lead")
    assert sandbox.control.get("Lead", lead)["Lead_Score__c"] == 7.0


def test_deleted_field_is_gone(sandbox: SandboxHandle, sf: Salesforce) -> None:
    sandbox.control.delete_field("Lead", "Discount__c")
    assert "Discount__c" not in fields(sf.Lead.describe())
    with pytest.raises(SalesforceMalformedRequest):
        sf.query("SELECT Discount__c FROM Lead")


def test_added_custom_field_appears_with_nulls(sandbox: SandboxHandle, sf: Salesforce) -> None:
    sandbox.control.create("Lead", [{"LastName": "N", "Company": "C"}])
    sandbox.control.add_field("Lead", "Tier__c", "picklist", picklist_values=["Gold", "Silver"])
    tier = fields(sf.Lead.describe())["Tier__c"]
    assert tier["custom"] is True and [v["value"] for v in tier["picklistValues"]] == ["Gold", "Silver"]
    assert sf.query("SELECT Tier__c FROM Lead")["records"][0]["Tier__c"] is None


@pytest.mark.parametrize("name", ["Id", "LastModifiedDate", "IsDeleted", "Name"])
def test_system_fields_cannot_be_renamed_or_deleted(org: Org, name: str) -> None:
    with pytest.raises(ValueError):
        org.rename_field("Lead", name, "Other")
    with pytest.raises(ValueError):
        org.delete_field("Lead", name)


def test_describe_of_unknown_object_is_not_found(sandbox: SandboxHandle, token: str) -> None:
    response = sandbox.session().get(
        sandbox.instance_url + "/services/data/v59.0/sobjects/Nope/describe",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 404
