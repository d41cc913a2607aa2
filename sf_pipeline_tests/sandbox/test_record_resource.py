"""``GET sobjects/{Object}/{Id}``: one record by Id, as ``sf.Lead.get(id)`` asks for it."""

from __future__ import annotations

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceResourceNotFound

from sf_pipeline.sandbox import Org


def test_record_by_id_has_every_readable_field(org: Org, sf: Salesforce) -> None:
    [lead] = org.create("Lead", [{"LastName": "Ng", "Company": "Acme", "Email": "ng@acme.test"}])
    record = sf.Lead.get(lead)
    assert record["attributes"] == {"type": "Lead", "url": f"/services/data/v59.0/sobjects/Lead/{lead}"}
    assert record["Email"] == "ng@acme.test"
    assert record["Name"] == "Ng"
    assert "Interests__c" in record and "SystemModstamp" in record
    assert sf.Lead.get(lead[:15])["Id"] == lead


def test_record_by_id_with_a_field_list(org: Org, sf: Salesforce) -> None:
    [lead] = org.create("Lead", [{"LastName": "Ng", "Company": "Acme"}])
    record = sf.restful(f"sobjects/Lead/{lead}", params={"fields": "Company,LastName"})
    assert list(record) == ["attributes", "Company", "LastName"]


def test_deleted_or_unknown_records_are_not_found(org: Org, sf: Salesforce) -> None:
    [lead] = org.create("Lead", [{"LastName": "Ng", "Company": "Acme"}])
    org.delete("Lead", [lead])
    for record_id in (lead, "00Q8d0000000099EAA"):
        with pytest.raises(SalesforceResourceNotFound):
            sf.Lead.get(record_id)
