"""Lead, Contact and CampaignMember describe the standard fields a real org returns, with the names,
types and flags Salesforce's object reference documents, so a client deciding from describe
(which fields to select, whether Bulk API 2.0 can take them) decides as it would against a real org."""

from __future__ import annotations

from typing import Any

import pytest

from sf_pipeline.sandbox import Org
from sf_pipeline_tests.sandbox.conftest import Api, lead

# (object, field): type, createable, updateable, nillable, filterable, sortable, referenceTo,
# relationshipName, compoundFieldName, soapType, length — as the object reference lists them.
Row = tuple[str, bool, bool, bool, bool, bool, list[str], str | None, str | None, str, int]
EXPECTED: dict[tuple[str, str], Row] = {
    ("Lead", "Address"): ("address", False, False, True, True, False, [], None, None, "urn:address", 0),
    ("Lead", "Street"): ("textarea", True, True, True, True, True, [], None, "Address", "xsd:string", 255),
    ("Lead", "City"): ("string", True, True, True, True, True, [], None, "Address", "xsd:string", 40),
    ("Lead", "State"): ("string", True, True, True, True, True, [], None, "Address", "xsd:string", 80),
    ("Lead", "PostalCode"): ("string", True, True, True, True, True, [], None, "Address", "xsd:string", 20),
    ("Lead", "Country"): ("string", True, True, True, True, True, [], None, "Address", "xsd:string", 80),
    ("Lead", "Latitude"): ("double", True, True, True, True, True, [], None, "Address", "xsd:double", 0),
    ("Lead", "Longitude"): ("double", True, True, True, True, True, [], None, "Address", "xsd:double", 0),
    ("Lead", "GeocodeAccuracy"): ("picklist", True, True, True, True, True, [], None, "Address", "xsd:string", 40),
    ("Lead", "OwnerId"): ("reference", True, True, False, True, True, ["Group", "User"], "Owner", None, "tns:ID", 18),
    ("Lead", "CreatedById"): (
        "reference",
        False,
        False,
        False,
        True,
        True,
        ["User"],
        "CreatedBy",
        None,
        "tns:ID",
        18,
    ),
    ("Lead", "LastModifiedById"): (
        "reference",
        False,
        False,
        False,
        True,
        True,
        ["User"],
        "LastModifiedBy",
        None,
        "tns:ID",
        18,
    ),
    ("Lead", "SystemModstamp"): ("datetime", False, False, False, True, True, [], None, None, "xsd:dateTime", 0),
    ("Lead", "IsConverted"): ("boolean", False, False, False, True, True, [], None, None, "xsd:boolean", 0),
    ("Lead", "ConvertedDate"): ("date", False, False, True, True, True, [], None, None, "xsd:date", 0),
    ("Lead", "ConvertedContactId"): (
        "reference",
        False,
        False,
        True,
        True,
        True,
        ["Contact"],
        "ConvertedContact",
        None,
        "tns:ID",
        18,
    ),
    ("Lead", "ConvertedAccountId"): (
        "reference",
        False,
        False,
        True,
        True,
        True,
        ["Account"],
        "ConvertedAccount",
        None,
        "tns:ID",
        18,
    ),
    ("Lead", "ConvertedOpportunityId"): (
        "reference",
        False,
        False,
        True,
        True,
        True,
        ["Opportunity"],
        "ConvertedOpportunity",
        None,
        "tns:ID",
        18,
    ),
    ("Lead", "LastActivityDate"): ("date", False, False, True, True, True, [], None, None, "xsd:date", 0),
    ("Lead", "FirstName"): ("string", True, True, True, True, True, [], None, "Name", "xsd:string", 40),
    ("Lead", "Company"): ("string", True, True, False, True, True, [], None, None, "xsd:string", 255),
    ("Lead", "Fax"): ("phone", True, True, True, True, True, [], None, None, "xsd:string", 40),
    ("Lead", "DoNotCall"): ("boolean", True, True, False, True, True, [], None, None, "xsd:boolean", 0),
    ("Contact", "MailingAddress"): ("address", False, False, True, True, False, [], None, None, "urn:address", 0),
    ("Contact", "MailingStreet"): (
        "textarea",
        True,
        True,
        True,
        True,
        True,
        [],
        None,
        "MailingAddress",
        "xsd:string",
        255,
    ),
    ("Contact", "MailingCity"): ("string", True, True, True, True, True, [], None, "MailingAddress", "xsd:string", 40),
    ("Contact", "MailingPostalCode"): (
        "string",
        True,
        True,
        True,
        True,
        True,
        [],
        None,
        "MailingAddress",
        "xsd:string",
        20,
    ),
    ("Contact", "MailingLatitude"): (
        "double",
        True,
        True,
        True,
        True,
        True,
        [],
        None,
        "MailingAddress",
        "xsd:double",
        0,
    ),
    ("Contact", "MailingGeocodeAccuracy"): (
        "picklist",
        True,
        True,
        True,
        True,
        True,
        [],
        None,
        "MailingAddress",
        "xsd:string",
        40,
    ),
    ("Contact", "OtherAddress"): ("address", False, False, True, True, False, [], None, None, "urn:address", 0),
    ("Contact", "AccountId"): ("reference", True, True, True, True, True, ["Account"], "Account", None, "tns:ID", 18),
    ("Contact", "ReportsToId"): (
        "reference",
        True,
        True,
        True,
        True,
        True,
        ["Contact"],
        "ReportsTo",
        None,
        "tns:ID",
        18,
    ),
    ("Contact", "OwnerId"): ("reference", True, True, False, True, True, ["User"], "Owner", None, "tns:ID", 18),
    ("Contact", "CreatedById"): (
        "reference",
        False,
        False,
        False,
        True,
        True,
        ["User"],
        "CreatedBy",
        None,
        "tns:ID",
        18,
    ),
    ("CampaignMember", "CampaignId"): (
        "reference",
        True,
        False,
        False,
        True,
        True,
        ["Campaign"],
        "Campaign",
        None,
        "tns:ID",
        18,
    ),
    ("CampaignMember", "LeadId"): ("reference", True, False, True, True, True, ["Lead"], "Lead", None, "tns:ID", 18),
    ("CampaignMember", "ContactId"): (
        "reference",
        True,
        False,
        True,
        True,
        True,
        ["Contact"],
        "Contact",
        None,
        "tns:ID",
        18,
    ),
    ("CampaignMember", "LastModifiedById"): (
        "reference",
        False,
        False,
        False,
        True,
        True,
        ["User"],
        "LastModifiedBy",
        None,
        "tns:ID",
        18,
    ),
    ("CampaignMember", "Street"): ("string", False, False, True, True, True, [], None, None, "xsd:string", 255),
    ("CampaignMember", "LeadOrContactId"): (
        "reference",
        False,
        False,
        True,
        True,
        True,
        ["Contact", "Lead"],
        None,
        None,
        "tns:ID",
        18,
    ),
}
KEYS = (
    "type",
    "createable",
    "updateable",
    "nillable",
    "filterable",
    "sortable",
    "referenceTo",
    "relationshipName",
    "compoundFieldName",
    "soapType",
    "length",
)


def _fields(api: Api, sobject: str) -> dict[str, dict[str, Any]]:
    described = api.get(f"/services/data/v59.0/sobjects/{sobject}/describe").json()
    return {f["name"]: f for f in described["fields"]}


@pytest.mark.parametrize(("sobject", "name"), sorted(EXPECTED))
def test_standard_field_matches_the_object_reference(api: Api, sobject: str, name: str) -> None:
    got = _fields(api, sobject)[name]
    assert tuple(got[k] for k in KEYS) == EXPECTED[(sobject, name)]


def test_compound_address_fields_are_not_groupable_and_only_their_parts_are_defaulted_never(api: Api) -> None:
    lead_fields = _fields(api, "Lead")
    address = lead_fields["Address"]
    assert address["groupable"] is False and address["aggregatable"] is False
    assert address["defaultedOnCreate"] is False
    assert lead_fields["OwnerId"]["defaultedOnCreate"] is True
    assert lead_fields["OwnerId"]["polymorphicForeignKey"] is True
    assert lead_fields["ConvertedContactId"]["defaultedOnCreate"] is False
    parts = sorted(n for n, f in lead_fields.items() if f["compoundFieldName"] == "Address")
    expected = ["City", "Country", "GeocodeAccuracy", "Latitude", "Longitude", "PostalCode", "State", "Street"]
    assert parts == expected


def test_lead_lists_fields_in_a_real_orgs_order(api: Api) -> None:
    names = list(_fields(api, "Lead"))
    assert names[:8] == ["Id", "IsDeleted", "MasterRecordId", "LastName", "FirstName", "Salutation", "Name", "Title"]
    assert names.index("Street") < names.index("Address") < names.index("Phone")
    assert names.index("CreatedDate") < names.index("CreatedById") < names.index("LastModifiedDate")


def test_compound_address_is_a_json_object_in_rest_and_its_parts_are_queryable(org: Org, api: Api) -> None:
    [with_address, without] = org.create(
        "Lead",
        [
            lead(
                Street="1 Market St\nSuite 300",
                City="San Francisco",
                State="CA",
                PostalCode="94105",
                Country="US",
                Latitude=37.7936,
                Longitude=-122.3958,
                GeocodeAccuracy="Address",
            ),
            lead(),
        ],
    )
    records = api.query("SELECT Id, Address, City, Latitude FROM Lead ORDER BY Id").json()["records"]
    by_id = {r["Id"]: r for r in records}
    assert by_id[with_address]["Address"] == {
        "city": "San Francisco",
        "country": "US",
        "geocodeAccuracy": "Address",
        "latitude": 37.7936,
        "longitude": -122.3958,
        "postalCode": "94105",
        "state": "CA",
        "street": "1 Market St\nSuite 300",
    }
    assert list(by_id[with_address]["Address"]) == sorted(by_id[with_address]["Address"])
    assert by_id[without]["Address"] is None
    found = api.query("SELECT Id FROM Lead WHERE City = 'San Francisco' AND Latitude > 37").json()["records"]
    assert [r["Id"] for r in found] == [with_address]
    refused = api.query("SELECT Id FROM Lead WHERE Address != null")
    assert refused.status_code == 400 and refused.json()[0]["errorCode"] == "INVALID_FIELD"


def test_records_get_the_api_user_as_owner_creator_and_last_modifier(org: Org, api: Api) -> None:
    [created] = org.create("Lead", [lead()])
    record = api.get(f"/services/data/v59.0/sobjects/Lead/{created}").json()
    assert record["OwnerId"] == record["CreatedById"] == record["LastModifiedById"] == org.user_id


def test_campaign_member_reads_person_fields_through_its_lead(org: Org, api: Api) -> None:
    [person] = org.create("Lead", [lead(FirstName="Ada", Title="CTO", City="London", DoNotCall=True)])
    [campaign] = org.create("Campaign", [{"Name": "Launch"}])
    [member] = org.create("CampaignMember", [{"CampaignId": campaign, "LeadId": person}])
    fields = "Name, Title, City, DoNotCall, Type, LeadOrContactId, CompanyOrAccount"
    soql = f"SELECT {fields} FROM CampaignMember WHERE Id = '{member}'"
    [record] = api.query(soql).json()["records"]
    assert {k: v for k, v in record.items() if k != "attributes"} == {
        "Name": "Ada Doe",
        "Title": "CTO",
        "City": "London",
        "DoNotCall": True,
        "Type": "Lead",
        "LeadOrContactId": person,
        "CompanyOrAccount": "Acme",
    }
