"""Hand-built describe results for Lead, Contact, CampaignMember and Campaign, shaped like a real
org's (standard fields first, a few custom ones, lookups with their relationship names)."""

from __future__ import annotations

from collections.abc import Callable

from sf_pipeline.salesforce.describe import FieldInfo, ObjectDescribe


def _field(name: str, type_: str, *, length: int = 0, filterable: bool = True) -> FieldInfo:
    return FieldInfo(
        name=name, type=type_, label=name, custom=name.endswith("__c"), length=length, filterable=filterable
    )


def _lookup(name: str, relationship: str, *targets: str) -> FieldInfo:
    return FieldInfo(name=name, type="reference", label=name, relationship_name=relationship, reference_to=targets)


def _object(name: str, *fields: FieldInfo) -> ObjectDescribe:
    return ObjectDescribe(name=name, fields={f.name: f for f in fields})


_SYSTEM = (
    _field("Id", "id"),
    _field("IsDeleted", "boolean"),
    _field("CreatedDate", "datetime"),
    _field("LastModifiedDate", "datetime"),
    _field("SystemModstamp", "datetime"),
)
_PERSON = (
    _field("FirstName", "string", length=40),
    _field("LastName", "string", length=80),
    _field("Email", "email", length=80),
    _field("Phone", "phone", length=40),
    _field("MobilePhone", "phone", length=40),
    _field("Title", "string", length=128),
    _field("HasOptedOutOfEmail", "boolean"),
    _field("Description", "textarea", length=32000, filterable=False),
    _lookup("OwnerId", "Owner", "User", "Group"),
)

LEAD = _object(
    "Lead",
    *_SYSTEM,
    *_PERSON,
    _field("Company", "string", length=255),
    _field("Status", "picklist", length=40),
    _field("Rating", "picklist", length=40),
    _field("Industry", "picklist", length=40),
    _field("Website", "url", length=255),
    _field("Country", "string", length=80),
    _field("Address", "address"),
    _field("AnnualRevenue", "currency"),
    _field("NumberOfEmployees", "int"),
    _field("IsConverted", "boolean"),
    _field("ConvertedDate", "date"),
    _lookup("ConvertedContactId", "ConvertedContact", "Contact"),
    _field("Score__c", "double"),
    _field("Discount__c", "percent"),
    _field("Interests__c", "multipicklist", length=4099),
    _field("Timezone__c", "string", length=60),
    _field("Locale__c", "string", length=20),
    _field("Trial_Ends__c", "date"),
    _field("Big_Count__c", "long"),
)

CONTACT = _object(
    "Contact",
    *_SYSTEM,
    *_PERSON,
    _field("Birthdate", "date"),
    _field("Department", "string", length=80),
    _field("LeadSource", "picklist", length=40),
    _field("MailingCountry", "string", length=80),
    _lookup("AccountId", "Account", "Account"),
    _field("Customer_Since__c", "date"),
    _field("Lifetime_Value__c", "currency"),
)

CAMPAIGN = _object(
    "Campaign",
    _field("Id", "id"),
    _field("Name", "string", length=80),
    _field("IsActive", "boolean"),
    _field("StartDate", "date"),
)

CAMPAIGN_MEMBER = _object(
    "CampaignMember",
    *_SYSTEM,
    _lookup("CampaignId", "Campaign", "Campaign"),
    _lookup("LeadId", "Lead", "Lead"),
    _lookup("ContactId", "Contact", "Contact"),
    _lookup("LeadOrContactId", "LeadOrContact", "Lead", "Contact"),
    _field("Status", "picklist", length=40),
    _field("HasResponded", "boolean"),
    _field("FirstRespondedDate", "date"),
    _field("Email", "email", length=80),
    _field("FirstName", "string", length=40),
)

DESCRIBES = {d.name: d for d in (LEAD, CONTACT, CAMPAIGN, CAMPAIGN_MEMBER)}


def describe(object_name: str) -> ObjectDescribe:
    return DESCRIBES[object_name]


def counting_describe() -> tuple[Callable[[str], ObjectDescribe], list[str]]:
    """A describe that records which objects were asked for."""
    calls: list[str] = []

    def tracked(object_name: str) -> ObjectDescribe:
        calls.append(object_name)
        return DESCRIBES[object_name]

    return tracked, calls
