"""The sandbox org's objects and fields: what describe reports and what SOQL may name.

Each ``Org`` gets its own copy (``standard_schemas()``), so renaming, deleting or hiding a field
in one org leaves others alone. Field names are looked up case-insensitively, as Salesforce does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

STRING_TYPES = frozenset(
    {"string", "picklist", "multipicklist", "email", "phone", "url", "textarea", "id", "reference"}
)
NUMBER_TYPES = frozenset({"int", "double", "currency", "percent"})
# Compound fields: read-only structured values made of their component fields.
COMPOUND_TYPES = frozenset({"address", "location"})


@dataclass(frozen=True)
class FieldDef:
    name: str
    type: str
    label: str = ""
    length: int = 0
    precision: int = 0
    scale: int = 0
    digits: int = 0
    nillable: bool = True
    filterable: bool = True
    sortable: bool = True
    createable: bool = True
    updateable: bool = True
    custom: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    picklist_values: tuple[str, ...] = ()
    default_picklist_value: str | None = None
    compound_field_name: str | None = None
    name_field: bool = False
    id_lookup: bool = False
    calculated: bool = False
    readable: bool = True
    defaulted_on_create: bool = False  # the org fills it in when a create leaves it out (OwnerId)

    @property
    def is_text(self) -> bool:
        return self.type in STRING_TYPES

    @property
    def is_system(self) -> bool:
        """Fields the org maintains itself; the test API may still set them explicitly."""
        return not (self.createable or self.updateable)


@dataclass
class ObjectSchema:
    name: str
    label: str
    label_plural: str
    key_prefix: str
    custom: bool = False
    _fields: dict[str, FieldDef] = field(default_factory=dict)

    def add(self, f: FieldDef) -> None:
        self._fields[f.name.lower()] = f

    def field(self, name: str) -> FieldDef | None:
        """A readable field by name, any case."""
        found = self._fields.get(name.lower())
        return found if found is not None and found.readable else None

    def any_field(self, name: str) -> FieldDef | None:
        """A field by name even when field-level security hides it."""
        return self._fields.get(name.lower())

    def relationship(self, name: str) -> FieldDef | None:
        lowered = name.lower()
        return next(
            (f for f in self.fields() if f.relationship_name and f.relationship_name.lower() == lowered),
            None,
        )

    def fields(self) -> Iterator[FieldDef]:
        return (f for f in self._fields.values() if f.readable)

    def all_fields(self) -> Iterator[FieldDef]:
        return iter(self._fields.values())

    def rename(self, old: str, new: str) -> FieldDef:
        current = self._require(old)
        if new.lower() in self._fields and new.lower() != old.lower():
            raise ValueError(f"{self.name} already has a field named {new}")
        self._fields = {
            (new.lower() if k == old.lower() else k): (replace(f, name=new) if f is current else f)
            for k, f in self._fields.items()
        }
        return self._fields[new.lower()]

    def remove(self, name: str) -> FieldDef:
        return self._fields.pop(self._require(name).name.lower())

    def set_readable(self, name: str, readable: bool) -> FieldDef:
        current = self._require(name)
        updated = replace(current, readable=readable)
        self._fields[current.name.lower()] = updated
        return updated

    def _require(self, name: str) -> FieldDef:
        found = self._fields.get(name.lower())
        if found is None:
            raise KeyError(f"{self.name} has no field {name}")
        return found


def _id() -> FieldDef:
    return FieldDef(
        "Id", "id", "Record ID", length=18, nillable=False, createable=False, updateable=False, id_lookup=True
    )


def _system_fields() -> list[FieldDef]:
    return [
        FieldDef("IsDeleted", "boolean", "Deleted", nillable=False, createable=False, updateable=False),
        FieldDef("CreatedDate", "datetime", "Created Date", nillable=False, createable=False, updateable=False),
        FieldDef(
            "LastModifiedDate",
            "datetime",
            "Last Modified Date",
            nillable=False,
            createable=False,
            updateable=False,
        ),
        FieldDef(
            "SystemModstamp",
            "datetime",
            "System Modstamp",
            nillable=False,
            createable=False,
            updateable=False,
        ),
    ]


def _text(name: str, label: str, length: int, **kw: Any) -> FieldDef:
    return FieldDef(name, "string", label, length=length, **kw)


def _picklist(
    name: str,
    label: str,
    values: tuple[str, ...],
    *,
    multi: bool = False,
    default: str | None = None,
    custom: bool = False,
) -> FieldDef:
    return FieldDef(
        name,
        "multipicklist" if multi else "picklist",
        label,
        # Standard single-select picklists hold 40 characters; custom ones and multi-selects more.
        length=4099 if multi else (255 if custom else 40),
        picklist_values=values,
        default_picklist_value=default,
        custom=custom,
        sortable=not multi,
    )


def _person_name_fields() -> list[FieldDef]:
    # LastName/FirstName/Salutation are the parts of the compound Name field, in a real org's order.
    return [
        _text("LastName", "Last Name", 80, nillable=False, compound_field_name="Name"),
        _text("FirstName", "First Name", 40, compound_field_name="Name"),
        FieldDef(
            "Salutation",
            "picklist",
            "Salutation",
            length=40,
            picklist_values=SALUTATIONS,
            compound_field_name="Name",
        ),
        _text("Name", "Full Name", 121, createable=False, updateable=False, name_field=True, calculated=True),
    ]


def _lookup(
    name: str,
    label: str,
    targets: tuple[str, ...],
    relationship: str | None,
    *,
    nillable: bool = True,
    createable: bool = True,
    updateable: bool = True,
    defaulted: bool = False,
) -> FieldDef:
    return FieldDef(
        name,
        "reference",
        label,
        length=18,
        nillable=nillable,
        createable=createable,
        updateable=updateable,
        reference_to=targets,
        relationship_name=relationship,
        defaulted_on_create=defaulted,
    )


def _read_only(f: FieldDef) -> FieldDef:
    return replace(f, createable=False, updateable=False)


def _address_fields(prefix: str, compound: str, label: str) -> list[FieldDef]:
    """A compound address: Street, City, State, PostalCode, Country, Latitude, Longitude and
    GeocodeAccuracy (``compoundFieldName`` names the compound), then the read-only compound."""
    p, lp = prefix, (label + " ") if label else ""
    return [
        FieldDef(f"{p}Street", "textarea", f"{lp}Street", length=255, compound_field_name=compound, sortable=True),
        _text(f"{p}City", f"{lp}City", 40, compound_field_name=compound),
        _text(f"{p}State", f"{lp}State/Province", 80, compound_field_name=compound),
        _text(f"{p}PostalCode", f"{lp}Zip/Postal Code", 20, compound_field_name=compound),
        _text(f"{p}Country", f"{lp}Country", 80, compound_field_name=compound),
        FieldDef(f"{p}Latitude", "double", f"{lp}Latitude", precision=18, scale=15, compound_field_name=compound),
        FieldDef(f"{p}Longitude", "double", f"{lp}Longitude", precision=18, scale=15, compound_field_name=compound),
        FieldDef(
            f"{p}GeocodeAccuracy",
            "picklist",
            f"{lp}Geocode Accuracy",
            length=40,
            picklist_values=GEOCODE_ACCURACIES,
            compound_field_name=compound,
        ),
        FieldDef(
            compound,
            "address",
            f"{label} Address".strip() if label else "Address",
            createable=False,
            updateable=False,
            sortable=False,
        ),
    ]


def _audit_fields() -> list[FieldDef]:
    """CreatedDate, CreatedById, LastModifiedDate, LastModifiedById, SystemModstamp."""
    system = _system_fields()
    return [
        system[1],
        _lookup(
            "CreatedById",
            "Created By ID",
            ("User",),
            "CreatedBy",
            nillable=False,
            createable=False,
            updateable=False,
            defaulted=True,
        ),
        system[2],
        _lookup(
            "LastModifiedById",
            "Last Modified By ID",
            ("User",),
            "LastModifiedBy",
            nillable=False,
            createable=False,
            updateable=False,
            defaulted=True,
        ),
        system[3],
    ]


def _email_bounce_fields() -> list[FieldDef]:
    return [
        _text("EmailBouncedReason", "Email Bounced Reason", 255),
        FieldDef("EmailBouncedDate", "datetime", "Email Bounced Date"),
    ]


def _viewed_fields() -> list[FieldDef]:
    return [
        FieldDef("LastViewedDate", "datetime", "Last Viewed Date", createable=False, updateable=False),
        FieldDef("LastReferencedDate", "datetime", "Last Referenced Date", createable=False, updateable=False),
    ]


def _description() -> FieldDef:
    # Long text areas can be selected but neither filtered nor sorted.
    return FieldDef("Description", "textarea", "Description", length=32000, filterable=False, sortable=False)


SALUTATIONS = ("Mr.", "Ms.", "Mrs.", "Dr.", "Prof.")
GEOCODE_ACCURACIES = (
    "Address",
    "NearAddress",
    "Block",
    "Street",
    "ExtendedZip",
    "Zip",
    "Neighborhood",
    "City",
    "County",
    "State",
    "Unknown",
)
LEAD_STATUSES = (
    "Open - Not Contacted",
    "Working - Contacted",
    "Closed - Converted",
    "Closed - Not Converted",
)
RATINGS = ("Hot", "Warm", "Cold")
INDUSTRIES = (
    "Agriculture",
    "Apparel",
    "Banking",
    "Biotechnology",
    "Chemicals",
    "Communications",
    "Construction",
    "Consulting",
    "Education",
    "Electronics",
    "Energy",
    "Engineering",
    "Entertainment",
    "Finance",
    "Food & Beverage",
    "Government",
    "Healthcare",
    "Hospitality",
    "Insurance",
    "Manufacturing",
    "Media",
    "Not For Profit",
    "Retail",
    "Technology",
    "Telecommunications",
    "Transportation",
    "Utilities",
    "Other",
)
LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Trade Show", "Other")
INTERESTS = ("Product Updates", "Webinars", "Newsletters", "Events", "Promotions", "Case Studies")
LANGUAGES = ("English", "German", "French", "Spanish", "Japanese", "Portuguese")
CAMPAIGN_TYPES = ("Conference", "Webinar", "Trade Show", "Email", "Direct Mail", "Advertisement", "Other")
CAMPAIGN_STATUSES = ("Planned", "In Progress", "Completed", "Aborted")
MEMBER_STATUSES = ("Sent", "Responded")


def _lead() -> ObjectSchema:
    # Standard fields in the order a real org's describe lists them, then the custom ones.
    s = ObjectSchema("Lead", "Lead", "Leads", "00Q")
    for f in [
        _id(),
        _system_fields()[0],
        _lookup("MasterRecordId", "Master Record ID", ("Lead",), "MasterRecord", createable=False, updateable=False),
        *_person_name_fields(),
        _text("Title", "Title", 128),
        _text("Company", "Company", 255, nillable=False),
        *_address_fields("", "Address", ""),
        FieldDef("Phone", "phone", "Phone", length=40),
        FieldDef("MobilePhone", "phone", "Mobile Phone", length=40),
        FieldDef("Fax", "phone", "Fax", length=40),
        FieldDef("Email", "email", "Email", length=80),
        FieldDef("Website", "url", "Website", length=255),
        FieldDef("PhotoUrl", "url", "Photo URL", length=255, createable=False, updateable=False),
        _description(),
        _picklist("LeadSource", "Lead Source", LEAD_SOURCES),
        FieldDef(
            "Status",
            "picklist",
            "Status",
            length=40,
            nillable=False,
            picklist_values=LEAD_STATUSES,
            default_picklist_value=LEAD_STATUSES[0],
        ),
        _picklist("Industry", "Industry", INDUSTRIES),
        _picklist("Rating", "Rating", RATINGS),
        FieldDef("AnnualRevenue", "currency", "Annual Revenue", precision=18, scale=0),
        FieldDef("NumberOfEmployees", "int", "Employees", digits=8),
        _lookup("OwnerId", "Owner ID", ("Group", "User"), "Owner", nillable=False, defaulted=True),
        FieldDef("HasOptedOutOfEmail", "boolean", "Email Opt Out", nillable=False),
        FieldDef("IsConverted", "boolean", "Converted", nillable=False, createable=False, updateable=False),
        FieldDef("ConvertedDate", "date", "Converted Date", createable=False, updateable=False),
        _lookup(
            "ConvertedAccountId",
            "Converted Account ID",
            ("Account",),
            "ConvertedAccount",
            createable=False,
            updateable=False,
        ),
        _lookup(
            "ConvertedContactId",
            "Converted Contact ID",
            ("Contact",),
            "ConvertedContact",
            createable=False,
            updateable=False,
        ),
        _lookup(
            "ConvertedOpportunityId",
            "Converted Opportunity ID",
            ("Opportunity",),
            "ConvertedOpportunity",
            createable=False,
            updateable=False,
        ),
        FieldDef("IsUnreadByOwner", "boolean", "Unread By Owner", nillable=False),
        *_audit_fields(),
        FieldDef("LastActivityDate", "date", "Last Activity", createable=False, updateable=False),
        FieldDef("DoNotCall", "boolean", "Do Not Call", nillable=False),
        FieldDef("HasOptedOutOfFax", "boolean", "Fax Opt Out", nillable=False),
        *_viewed_fields(),
        FieldDef("LastTransferDate", "date", "Last Transfer Date", createable=False, updateable=False),
        _text("Jigsaw", "Data.com Key", 20),
        _text("JigsawContactId", "Jigsaw Contact ID", 20, createable=False, updateable=False),
        *_email_bounce_fields(),
        _lookup("IndividualId", "Individual ID", ("Individual",), "Individual"),
        _picklist("Interests__c", "Interests", INTERESTS, multi=True, custom=True),
        FieldDef("Score__c", "double", "Score", precision=18, scale=2, custom=True),
        FieldDef("Discount__c", "percent", "Discount", precision=5, scale=2, custom=True),
        FieldDef("Birthdate__c", "date", "Birthdate", custom=True),
    ]:
        s.add(f)
    return s


def _contact() -> ObjectSchema:
    s = ObjectSchema("Contact", "Contact", "Contacts", "003")
    for f in [
        _id(),
        _system_fields()[0],
        _lookup("MasterRecordId", "Master Record ID", ("Contact",), "MasterRecord", createable=False, updateable=False),
        _lookup("AccountId", "Account ID", ("Account",), "Account"),
        *_person_name_fields(),
        *_address_fields("Other", "OtherAddress", "Other"),
        *_address_fields("Mailing", "MailingAddress", "Mailing"),
        FieldDef("Phone", "phone", "Business Phone", length=40),
        FieldDef("Fax", "phone", "Business Fax", length=40),
        FieldDef("MobilePhone", "phone", "Mobile Phone", length=40),
        FieldDef("HomePhone", "phone", "Home Phone", length=40),
        FieldDef("OtherPhone", "phone", "Other Phone", length=40),
        FieldDef("AssistantPhone", "phone", "Asst. Phone", length=40),
        _lookup("ReportsToId", "Reports To ID", ("Contact",), "ReportsTo"),
        FieldDef("Email", "email", "Email", length=80),
        _text("Title", "Title", 128),
        _text("Department", "Department", 80),
        _text("AssistantName", "Assistant's Name", 40),
        _picklist("LeadSource", "Lead Source", LEAD_SOURCES),
        FieldDef("Birthdate", "date", "Birthdate"),
        _description(),
        _lookup("OwnerId", "Owner ID", ("User",), "Owner", nillable=False, defaulted=True),
        FieldDef("HasOptedOutOfEmail", "boolean", "Email Opt Out", nillable=False),
        FieldDef("HasOptedOutOfFax", "boolean", "Fax Opt Out", nillable=False),
        FieldDef("DoNotCall", "boolean", "Do Not Call", nillable=False),
        *_audit_fields(),
        FieldDef("LastActivityDate", "date", "Last Activity", createable=False, updateable=False),
        FieldDef(
            "LastCURequestDate", "datetime", "Last Stay-in-Touch Request Date", createable=False, updateable=False
        ),
        FieldDef("LastCUUpdateDate", "datetime", "Last Stay-in-Touch Save Date", createable=False, updateable=False),
        *_viewed_fields(),
        *_email_bounce_fields(),
        FieldDef("IsEmailBounced", "boolean", "Is Email Bounced", nillable=False),
        FieldDef("PhotoUrl", "url", "Photo URL", length=255, createable=False, updateable=False),
        _text("Jigsaw", "Data.com Key", 20),
        _text("JigsawContactId", "Jigsaw Contact ID", 20, createable=False, updateable=False),
        _lookup("IndividualId", "Individual ID", ("Individual",), "Individual"),
        _picklist("Preferred_Language__c", "Preferred Language", LANGUAGES, custom=True),
    ]:
        s.add(f)
    return s


def _campaign() -> ObjectSchema:
    s = ObjectSchema("Campaign", "Campaign", "Campaigns", "701")
    for f in [
        _id(),
        *_system_fields()[:1],
        _text("Name", "Campaign Name", 80, nillable=False, name_field=True),
        _picklist("Type", "Type", CAMPAIGN_TYPES),
        _picklist("Status", "Status", CAMPAIGN_STATUSES),
        FieldDef("IsActive", "boolean", "Active", nillable=False),
        FieldDef("StartDate", "date", "Start Date"),
        FieldDef("EndDate", "date", "End Date"),
        *_system_fields()[1:],
    ]:
        s.add(f)
    return s


def _campaign_member() -> ObjectSchema:
    s = ObjectSchema("CampaignMember", "Campaign Member", "Campaign Members", "00v")
    # A campaign member's person fields are read through to its lead (or else its contact) and
    # are read-only; its address parts are plain fields here, not parts of a compound.
    for f in [
        _id(),
        _system_fields()[0],
        _lookup("CampaignId", "Campaign ID", ("Campaign",), "Campaign", nillable=False, updateable=False),
        _lookup("LeadId", "Lead ID", ("Lead",), "Lead", updateable=False),
        _lookup("ContactId", "Contact ID", ("Contact",), "Contact", updateable=False),
        FieldDef(
            "Status",
            "picklist",
            "Status",
            length=40,
            picklist_values=MEMBER_STATUSES,
            default_picklist_value=MEMBER_STATUSES[0],
        ),
        FieldDef("HasResponded", "boolean", "Responded", nillable=False, createable=False, updateable=False),
        *_audit_fields(),
        FieldDef("FirstRespondedDate", "date", "First Responded Date", createable=False, updateable=False),
        _read_only(FieldDef("Salutation", "picklist", "Salutation", length=40, picklist_values=SALUTATIONS)),
        _read_only(_text("Name", "Name", 121, name_field=True, calculated=True)),
        _read_only(_text("FirstName", "First Name", 40)),
        _read_only(_text("LastName", "Last Name", 80)),
        _read_only(_text("Title", "Title", 128)),
        _read_only(_text("Street", "Street", 255)),
        _read_only(_text("City", "City", 40)),
        _read_only(_text("State", "State/Province", 80)),
        _read_only(_text("PostalCode", "Zip/Postal Code", 20)),
        _read_only(_text("Country", "Country", 80)),
        _read_only(FieldDef("Email", "email", "Email", length=80)),
        _read_only(FieldDef("Phone", "phone", "Phone", length=40)),
        _read_only(FieldDef("Fax", "phone", "Fax", length=40)),
        _read_only(FieldDef("MobilePhone", "phone", "Mobile", length=40)),
        _read_only(FieldDef("Description", "textarea", "Description", length=32000, filterable=False, sortable=False)),
        _read_only(FieldDef("DoNotCall", "boolean", "Do Not Call", nillable=False)),
        _read_only(FieldDef("HasOptedOutOfEmail", "boolean", "Email Opt Out", nillable=False)),
        _read_only(FieldDef("HasOptedOutOfFax", "boolean", "Fax Opt Out", nillable=False)),
        _read_only(FieldDef("LeadSource", "picklist", "Lead Source", length=40, picklist_values=LEAD_SOURCES)),
        _read_only(_text("CompanyOrAccount", "Company (Account)", 255)),
        _read_only(_text("Type", "Type", 40)),
        _lookup("LeadOrContactId", "Contact or Lead ID", ("Contact", "Lead"), None, createable=False, updateable=False),
        _lookup(
            "LeadOrContactOwnerId",
            "Lead or Contact Owner ID",
            ("Group", "User"),
            None,
            createable=False,
            updateable=False,
        ),
    ]:
        s.add(f)
    return s


def standard_schemas() -> dict[str, ObjectSchema]:
    """Fresh, independent schemas for one org, keyed by object name."""
    return {s.name: s for s in (_lead(), _contact(), _campaign(), _campaign_member())}
