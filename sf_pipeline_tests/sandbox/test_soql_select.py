"""SELECT lists, parent relationships, COUNT(), ORDER BY, LIMIT and OFFSET (in process)."""

from __future__ import annotations

import pytest

from sf_pipeline.sandbox import Org
from sf_pipeline.sandbox.errors import InvalidField, InvalidType, MalformedQuery


def _leads(org: Org, *rows: dict[str, object]) -> list[str]:
    return [org.create("Lead", [{"Company": "Acme", **row}])[0] for row in rows]


def test_records_use_canonical_field_names_in_select_order_after_attributes(org: Org) -> None:
    [lead] = _leads(org, {"LastName": "Ng", "FirstName": "Al", "Email": "al@x.test"})
    record = org.query("select email, ID, lastname, name from LEAD")["records"][0]
    assert list(record) == ["attributes", "Email", "Id", "LastName", "Name"]
    assert record["attributes"] == {"type": "Lead", "url": f"/services/data/v59.0/sobjects/Lead/{lead}"}
    assert record["Name"] == "Al Ng"


def test_object_name_prefix_on_fields_is_accepted(org: Org) -> None:
    _leads(org, {"LastName": "Ng"})
    assert org.query("SELECT Lead.LastName FROM Lead")["records"][0]["LastName"] == "Ng"


def test_parent_relationship_fields_nest_or_are_null(org: Org) -> None:
    [lead] = _leads(org, {"LastName": "Ng", "Email": "ng@x.test", "HasOptedOutOfEmail": True})
    [contact] = org.create("Contact", [{"LastName": "Ito", "Email": "ito@x.test"}])
    [campaign] = org.create("Campaign", [{"Name": "Spring Webinar"}])
    org.create(
        "CampaignMember",
        [
            {"CampaignId": campaign, "LeadId": lead, "Status": "Responded"},
            {"CampaignId": campaign, "ContactId": contact},
        ],
    )
    records = org.query(
        "SELECT Id, Lead.Email, Lead.HasOptedOutOfEmail, Contact.Email, Campaign.Name, Email, HasResponded "
        "FROM CampaignMember ORDER BY Id"
    )["records"]
    from_lead, from_contact = records
    assert list(from_lead) == ["attributes", "Id", "Lead", "Contact", "Campaign", "Email", "HasResponded"]
    assert from_lead["Lead"] == {
        "attributes": {"type": "Lead", "url": f"/services/data/v59.0/sobjects/Lead/{lead}"},
        "Email": "ng@x.test",
        "HasOptedOutOfEmail": True,
    }
    assert from_lead["Contact"] is None
    assert from_lead["Campaign"]["Name"] == "Spring Webinar"
    assert from_lead["Email"] == "ng@x.test"
    assert from_lead["HasResponded"] is True
    assert from_contact["Lead"] is None
    assert from_contact["Contact"]["Email"] == "ito@x.test"
    assert from_contact["Email"] == "ito@x.test"


def test_relationship_fields_filter_and_sort(org: Org) -> None:
    a, b = _leads(org, {"LastName": "A", "HasOptedOutOfEmail": True}, {"LastName": "B"})
    [campaign] = org.create("Campaign", [{"Name": "C"}])
    org.create("CampaignMember", [{"CampaignId": campaign, "LeadId": a}, {"CampaignId": campaign, "LeadId": b}])
    opted_out = org.query("SELECT LeadId FROM CampaignMember WHERE Lead.HasOptedOutOfEmail = true")
    assert [r["LeadId"] for r in opted_out["records"]] == [a]
    ordered = org.query("SELECT LeadId FROM CampaignMember ORDER BY Lead.LastName DESC")
    assert [r["LeadId"] for r in ordered["records"]] == [b, a]


def test_two_level_relationship_path(org: Org) -> None:
    [lead] = _leads(org, {"LastName": "Ng", "Email": "lead@x.test"})
    contact = org.convert_lead(lead)
    org.update("Contact", contact, {"Email": "contact@x.test"})
    [campaign] = org.create("Campaign", [{"Name": "C"}])
    org.create("CampaignMember", [{"CampaignId": campaign, "LeadId": lead}])
    record = org.query("SELECT Lead.ConvertedContact.Email FROM CampaignMember")["records"][0]
    assert record["Lead"]["ConvertedContact"]["Email"] == "contact@x.test"


def test_count_returns_total_size_and_no_records(org: Org) -> None:
    _leads(org, {"LastName": "A", "Rating": "Hot"}, {"LastName": "B", "Rating": "Hot"}, {"LastName": "C"})
    assert org.query("SELECT COUNT() FROM Lead WHERE Rating = 'Hot'") == {
        "totalSize": 2,
        "done": True,
        "records": [],
    }
    assert org.query("SELECT COUNT() FROM Lead LIMIT 1")["totalSize"] == 1


def test_order_by_several_fields_with_null_placement_and_id_tie_break(org: Org) -> None:
    ids = _leads(
        org,
        {"LastName": "a", "Rating": "Hot", "NumberOfEmployees": 5},
        {"LastName": "B", "Rating": None, "NumberOfEmployees": 5},
        {"LastName": "c", "Rating": "Cold", "NumberOfEmployees": None},
        {"LastName": "D", "Rating": "Hot", "NumberOfEmployees": 5},
        {"LastName": "e", "Rating": "Cold", "NumberOfEmployees": 1},
    )
    a, b, c, d, e = ids

    def order(clause: str) -> list[str]:
        return [r["Id"] for r in org.query(f"SELECT Id FROM Lead ORDER BY {clause}")["records"]]

    assert order("Rating") == [b, c, e, a, d]  # nulls first ascending, ties by Id
    assert order("Rating DESC") == [a, d, c, e, b]  # nulls last descending, ties still by Id
    assert order("Rating NULLS LAST") == [c, e, a, d, b]
    assert order("Rating DESC NULLS FIRST") == [b, a, d, c, e]
    assert order("NumberOfEmployees DESC, LastName") == [a, b, d, e, c]
    assert order("LastName DESC") == [e, d, c, b, a]  # text sorts ignoring case
    assert order("Rating ASC, NumberOfEmployees DESC NULLS LAST, Id DESC") == [b, e, c, d, a]


def test_limit_and_offset_page_through_ordered_results(org: Org) -> None:
    ids = _leads(org, *({"LastName": f"L{i}"} for i in range(6)))
    got = org.query("SELECT Id FROM Lead ORDER BY LastName LIMIT 2 OFFSET 3")["records"]
    assert [r["Id"] for r in got] == ids[3:5]
    assert org.query("SELECT Id FROM Lead LIMIT 0")["totalSize"] == 0


def test_values_come_back_in_salesforce_json_types(org: Org) -> None:
    _leads(
        org,
        {
            "LastName": "T",
            "NumberOfEmployees": 12,
            "AnnualRevenue": 1500,
            "Discount__c": 12.5,
            "HasOptedOutOfEmail": True,
            "Birthdate__c": "1990-02-03",
            "Interests__c": ["Webinars", "Events"],
        },
    )
    record = org.query(
        "SELECT NumberOfEmployees, AnnualRevenue, Discount__c, HasOptedOutOfEmail, Birthdate__c, "
        "Interests__c, CreatedDate, IsDeleted, Phone FROM Lead"
    )["records"][0]
    assert record["NumberOfEmployees"] == 12 and isinstance(record["NumberOfEmployees"], int)
    assert record["AnnualRevenue"] == 1500.0 and isinstance(record["AnnualRevenue"], float)
    assert record["Discount__c"] == 12.5
    assert record["HasOptedOutOfEmail"] is True
    assert record["IsDeleted"] is False
    assert record["Birthdate__c"] == "1990-02-03"
    assert record["Interests__c"] == "Webinars;Events"
    assert record["CreatedDate"] == "2024-06-15T12:00:00.000+0000"
    assert record["Phone"] is None


@pytest.mark.parametrize(
    ("soql", "error", "detail"),
    [
        ("SELECT Id FROM Leadx", InvalidType, "sObject type 'Leadx' is not supported"),
        ("SELECT Id, Foo__c FROM Lead", InvalidField, "No such column 'Foo__c' on entity 'Lead'"),
        ("SELECT Foo.Email FROM CampaignMember", InvalidField, "Didn't understand relationship 'Foo'"),
        ("SELECT Lead.Nope FROM CampaignMember", InvalidField, "No such column 'Nope' on entity 'Lead'"),
        ("SELECT Id FROM Lead ORDER BY Description", InvalidField, "can not be sorted"),
        ("SELECT Id FROM Lead ORDER BY Interests__c", InvalidField, "can not be sorted"),
        ("SELECT Id, id FROM Lead", MalformedQuery, "duplicate field selected"),
        ("SELECT COUNT(Id) FROM Lead", MalformedQuery, "unexpected token"),
        ("SELECT Id FROM Lead GROUP BY Id", MalformedQuery, "unexpected token"),
        ("SELECT Id, (SELECT Id FROM CampaignMembers) FROM Lead", MalformedQuery, "unexpected token"),
        ("SELECT toLabel(Status) FROM Lead", MalformedQuery, "unexpected token"),
        ("SELECT FIELDS(ALL) FROM Lead", MalformedQuery, "unexpected token"),
        ("SELECT Id FROM Lead LIMIT -1", MalformedQuery, "unexpected token"),
        ("SELECT Id FROM Lead OFFSET 2001", MalformedQuery, "Maximum SOQL offset"),
        ("SELECT Id FROM Lead WITH SECURITY_ENFORCED", MalformedQuery, "unexpected token"),
        ("SELECT FROM Lead", MalformedQuery, "unexpected token"),
        ("DELETE FROM Lead", MalformedQuery, "unexpected token"),
        ("   ", MalformedQuery, "A query string has to be specified"),
    ],
)
def test_unsupported_or_wrong_queries_fail_with_the_right_code(
    org: Org, soql: str, error: type[Exception], detail: str
) -> None:
    with pytest.raises(error) as caught:
        org.query(soql)
    assert detail in str(caught.value)


def test_query_excludes_deleted_rows_and_query_all_includes_them(org: Org) -> None:
    keep, gone = _leads(org, {"LastName": "Keep"}, {"LastName": "Gone"})
    org.delete("Lead", [gone])
    assert [r["Id"] for r in org.query("SELECT Id FROM Lead")["records"]] == [keep]
    every = org.query("SELECT Id, IsDeleted FROM Lead", include_deleted=True)["records"]
    assert [(r["Id"], r["IsDeleted"]) for r in every] == [(keep, False), (gone, True)]
