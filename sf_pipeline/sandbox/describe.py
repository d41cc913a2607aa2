"""Describe results in Salesforce's JSON shape: global describe and one object's describe.

Every field object carries the ~55 keys a real v59 org sends, because clients index some of them
directly (dlt reads ``compoundFieldName`` with ``[...]``, tap-salesforce ``relationshipName``).
Unreadable fields (field-level security) are left out, as they are for a real user.
"""

from __future__ import annotations

from typing import Any

from sf_pipeline.sandbox.schema import FieldDef, ObjectSchema

_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "int": "xsd:int",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "address": "urn:address",
    "location": "urn:location",
}
_NOT_GROUPABLE = frozenset(
    {"textarea", "multipicklist", "double", "currency", "percent", "datetime", "address", "location"}
)


# Read-only fields the org leaves null until something happens (a conversion, a view, a bounce).
_NOT_DEFAULTED = frozenset(
    {
        "MasterRecordId",
        "ConvertedDate",
        "ConvertedAccountId",
        "ConvertedContactId",
        "ConvertedOpportunityId",
        "LastActivityDate",
        "LastViewedDate",
        "LastReferencedDate",
        "LastTransferDate",
        "JigsawContactId",
        "PhotoUrl",
        "LastCURequestDate",
        "LastCUUpdateDate",
        "FirstRespondedDate",
    }
)


def _object_flags(schema: ObjectSchema) -> dict[str, Any]:
    return {
        "activateable": False,
        "createable": True,
        "custom": schema.custom,
        "customSetting": False,
        "deletable": True,
        "deprecatedAndHidden": False,
        "feedEnabled": False,
        "hasSubtypes": False,
        "isSubtype": False,
        "keyPrefix": schema.key_prefix,
        "label": schema.label,
        "labelPlural": schema.label_plural,
        "layoutable": True,
        "mergeable": schema.name in ("Lead", "Contact"),
        "mruEnabled": True,
        "name": schema.name,
        "queryable": True,
        "replicateable": True,
        "retrieveable": True,
        "searchable": True,
        "triggerable": True,
        "undeletable": True,
        "updateable": True,
    }


def _urls(schema: ObjectSchema, version: str) -> dict[str, str]:
    base = f"/services/data/v{version}/sobjects/{schema.name}"
    return {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}


def global_describe(schemas: list[ObjectSchema], version: str) -> dict[str, Any]:
    return {
        "encoding": "UTF-8",
        "maxBatchSize": 200,
        "sobjects": [{**_object_flags(s), "urls": _urls(s, version)} for s in schemas],
    }


def sobject_describe(schema: ObjectSchema, version: str, children: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        **_object_flags(schema),
        "actionOverrides": [],
        "childRelationships": children,
        "compactLayoutable": True,
        "fields": [field_describe(f) for f in schema.fields()],
        "namedLayoutInfos": [],
        "networkScopeFieldName": None,
        "recordTypeInfos": [],
        "searchLayoutable": True,
        "supportedScopes": [{"label": "All " + schema.label_plural.lower(), "name": "everything"}],
        "urls": _urls(schema, version),
    }


def child_relationships(parent: ObjectSchema, schemas: list[ObjectSchema]) -> list[dict[str, Any]]:
    """Lookups on other objects that point at ``parent``."""
    children = []
    for child in schemas:
        for f in child.fields():
            if parent.name in f.reference_to:
                children.append(
                    {
                        "cascadeDelete": child.name == "CampaignMember",
                        "childSObject": child.name,
                        "deprecatedAndHidden": False,
                        "field": f.name,
                        "junctionIdListNames": [],
                        "junctionReferenceTo": [],
                        "relationshipName": "CampaignMembers" if child.name == "CampaignMember" else None,
                        "restrictedDelete": False,
                    }
                )
    return children


def field_describe(f: FieldDef) -> dict[str, Any]:
    text_like = f.is_text
    return {
        "aggregatable": f.type not in ("textarea", "multipicklist", "address", "location"),
        "aiPredictionField": False,
        "autoNumber": False,
        "byteLength": f.length * 3 if text_like else 0,
        "calculated": f.calculated,
        "calculatedFormula": None,
        "cascadeDelete": False,
        "caseSensitive": False,
        "compoundFieldName": f.compound_field_name,
        "controllerName": None,
        "createable": f.createable,
        "custom": f.custom,
        "defaultValue": None,
        "defaultValueFormula": None,
        "defaultedOnCreate": f.defaulted_on_create
        or f.type == "boolean"
        or (f.is_system and f.type not in ("address", "location") and f.name not in _NOT_DEFAULTED)
        or f.default_picklist_value is not None,
        "dependentPicklist": False,
        "deprecatedAndHidden": False,
        "digits": f.digits,
        "displayLocationInDecimal": False,
        "encrypted": False,
        "externalId": False,
        "extraTypeInfo": _extra_type_info(f),
        "filterable": f.filterable,
        "filteredLookupInfo": None,
        "formulaTreatNullNumberAsZero": False,
        "groupable": f.type not in _NOT_GROUPABLE,
        "highScaleNumber": False,
        "htmlFormatted": False,
        "idLookup": f.id_lookup or f.type == "email",
        "inlineHelpText": None,
        "label": f.label or f.name,
        "length": f.length if text_like else 0,
        "mask": None,
        "maskType": None,
        "name": f.name,
        "nameField": f.name_field,
        "namePointing": False,
        "nillable": f.nillable,
        "permissionable": f.nillable and not f.is_system,
        "picklistValues": [
            {
                "active": True,
                "defaultValue": value == f.default_picklist_value,
                "label": value,
                "validFor": None,
                "value": value,
            }
            for value in f.picklist_values
        ],
        "polymorphicForeignKey": len(f.reference_to) > 1,
        "precision": f.precision,
        "queryByDistance": False,
        "referenceTargetField": None,
        "referenceTo": list(f.reference_to),
        "relationshipName": f.relationship_name,
        "relationshipOrder": None,
        "restrictedDelete": False,
        "restrictedPicklist": False,
        "scale": f.scale,
        "searchPrefilterable": f.type == "reference",
        "soapType": _SOAP_TYPES.get(f.type, "xsd:string"),
        "sortable": f.sortable,
        "type": f.type,
        "unique": False,
        "updateable": f.updateable,
        "writeRequiresMasterRead": False,
    }


def _extra_type_info(f: FieldDef) -> str | None:
    if f.type == "textarea":
        return "plaintextarea"
    if f.type == "url":
        return "url"
    if f.compound_field_name == "Name" or (f.name == "Name" and f.calculated):
        return "personname"
    return None
