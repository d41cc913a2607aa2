"""What a sync selects beyond the mapped fields.

- Every object: ``Id``, ``LastModifiedDate`` and ``IsDeleted`` (added by the mapping).
- An object mapped through parents (a CampaignMember's ``Lead.Email``, or its own ``Email``,
  which Salesforce reads through from the Lead or Contact): each parent's ``LastModifiedDate``,
  because a parent-only change never moves the member's own (see ``plan``).
- Lead: ``IsConverted``, ``ConvertedDate`` and ``ConvertedContactId``, so a converted Lead's
  user can be linked to the Contact user it became (see ``conversions``).

The extra fields ride in the resolved mapping's SOQL fields (so the extract's schema has them);
no property maps them, so they never reach a user's values.
"""

from __future__ import annotations

import dataclasses

from sf_pipeline.mapping import ResolvedMapping
from sf_pipeline.salesforce.describe import ObjectDescribe

CONVERSION_FIELDS = ("IsConverted", "ConvertedDate", "ConvertedContactId")
# A CampaignMember's own Email, FirstName, LastName... are read through from its Lead or Contact,
# so its parents' changes are its changes even when only its own fields are mapped.
READ_THROUGH_PARENTS = {"campaignmember": ("Lead", "Contact")}


def with_sync_fields(
    object_name: str, mapping: ResolvedMapping, describe: ObjectDescribe
) -> tuple[ResolvedMapping, tuple[str, ...]]:
    """The mapping with the extra fields added, and the parent relationships whose changes count
    as the record's."""
    fields = dict(zip(mapping.soql_fields, mapping.field_types, strict=True))
    lowered = {f.lower() for f in fields}
    parents: list[str] = list(READ_THROUGH_PARENTS.get(object_name.lower(), ()))
    for path in mapping.soql_fields:
        if "." in path:
            parent = path.split(".", 1)[0]
            if parent.lower() not in (p.lower() for p in parents):
                parents.append(parent)
    for parent in parents:
        stamp = f"{parent}.LastModifiedDate"
        if stamp.lower() not in lowered:
            fields[stamp] = "datetime"
            lowered.add(stamp.lower())
    if object_name.lower() == "lead":
        found = [describe.field(name) for name in CONVERSION_FIELDS]
        if all(f is not None for f in found):
            for name, info in zip(CONVERSION_FIELDS, found, strict=True):
                if name.lower() not in lowered and info is not None:
                    fields[name] = info.type
    if tuple(fields) == mapping.soql_fields:
        return mapping, tuple(parents)
    return dataclasses.replace(mapping, soql_fields=tuple(fields), field_types=tuple(fields.values())), tuple(parents)
