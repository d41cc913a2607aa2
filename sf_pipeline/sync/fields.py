"""What a sync selects beyond the mapped fields.

- Every object: ``Id``, ``LastModifiedDate`` and ``IsDeleted`` (added by the mapping).
- An object mapped through parents (a CampaignMember's ``Lead.Email``, or its own ``Email``,
  which Salesforce reads through from the Lead or Contact): each parent's ``LastModifiedDate``,
  because a parent-only change never moves the member's own (see ``plan``).
- Lead: ``IsConverted``, ``ConvertedDate`` and ``ConvertedContactId``, so a converted Lead's
  user can be linked to the Contact user it became (see ``conversions``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sf_pipeline.salesforce.describe import ObjectDescribe

CONVERSION_FIELDS = ("IsConverted", "ConvertedDate", "ConvertedContactId")
# A CampaignMember's own Email, FirstName, LastName... are read through from its Lead or Contact,
# so its parents' changes are its changes even when only its own fields are mapped.
READ_THROUGH_PARENTS = {"campaignmember": ("Lead", "Contact")}


def extract_fields(
    object_name: str, mapped: Sequence[str], describe: ObjectDescribe
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The fields to select and the parent relationships whose changes count as the record's."""
    fields = list(mapped)
    lowered = {f.lower() for f in fields}
    parents: list[str] = list(READ_THROUGH_PARENTS.get(object_name.lower(), ()))
    for path in mapped:
        if "." in path:
            parent = path.split(".", 1)[0]
            if parent.lower() not in (p.lower() for p in parents):
                parents.append(parent)
    for parent in parents:
        stamp = f"{parent}.LastModifiedDate"
        if stamp.lower() not in lowered:
            fields.append(stamp)
            lowered.add(stamp.lower())
    if object_name.lower() == "lead" and all(describe.field(f) is not None for f in CONVERSION_FIELDS):
        fields.extend(f for f in CONVERSION_FIELDS if f.lower() not in lowered)
    return tuple(fields), tuple(parents)
