"""Typed view of Salesforce's describe results: what a field is, for rules and field mappings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Salesforce field types grouped by the value a mapping produces (the spec's conversion table).
STRING_TYPES = frozenset(
    {"string", "picklist", "email", "phone", "url", "textarea", "id", "reference", "combobox", "encryptedstring"}
)
NUMBER_TYPES = frozenset({"int", "double", "currency", "percent", "long"})
BOOLEAN_TYPES = frozenset({"boolean"})
DATE_TYPES = frozenset({"date"})
DATETIME_TYPES = frozenset({"datetime"})
LIST_TYPES = frozenset({"multipicklist"})


@dataclass(frozen=True)
class FieldInfo:
    name: str
    type: str
    label: str = ""
    custom: bool = False
    filterable: bool = True
    length: int = 0
    relationship_name: str | None = None
    reference_to: tuple[str, ...] = ()

    @classmethod
    def from_describe(cls, raw: Mapping[str, Any]) -> FieldInfo:
        return cls(
            name=str(raw["name"]),
            type=str(raw["type"]),
            label=str(raw.get("label") or raw["name"]),
            custom=bool(raw.get("custom", False)),
            filterable=bool(raw.get("filterable", True)),
            length=int(raw.get("length") or 0),
            relationship_name=raw.get("relationshipName"),
            reference_to=tuple(raw.get("referenceTo") or ()),
        )


@dataclass(frozen=True)
class ObjectDescribe:
    name: str
    fields: Mapping[str, FieldInfo] = field(default_factory=dict)

    @classmethod
    def from_describe(cls, raw: Mapping[str, Any]) -> ObjectDescribe:
        fields = {f["name"]: FieldInfo.from_describe(f) for f in raw.get("fields", [])}
        return cls(name=str(raw["name"]), fields=fields)

    def field(self, name: str) -> FieldInfo | None:
        """Salesforce field names are case-insensitive."""
        found = self.fields.get(name)
        if found is not None:
            return found
        lowered = name.lower()
        return next((f for f in self.fields.values() if f.name.lower() == lowered), None)

    def relationship(self, relationship_name: str) -> FieldInfo | None:
        lowered = relationship_name.lower()
        return next(
            (f for f in self.fields.values() if (f.relationship_name or "").lower() == lowered), None
        )

    def sorted_fields(self) -> list[FieldInfo]:
        """Standard fields first, then custom, as the field picker lists them."""
        return sorted(self.fields.values(), key=lambda f: (f.custom, f.name.lower()))
