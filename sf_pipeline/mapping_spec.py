"""What a field mapping says, before anything is resolved against Salesforce: the shape the
integration file, the stored ``FieldMapping`` rows and the mapping compiler share. It depends on
nothing, so storage can read and write mappings without knowing how they are resolved."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Protocol


class MappingLike(Protocol):
    """A ``MappingSpec`` or a stored ``FieldMapping`` row."""

    # builtins.property: a member named ``property`` shadows the decorator inside this class.
    @builtins.property
    def field(self) -> str: ...
    @builtins.property
    def property(self) -> str: ...
    @builtins.property
    def object_name(self) -> str | None: ...
    @builtins.property
    def type(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class MappingSpec:
    """One mapping: Salesforce ``field`` (or ``Lead.Email``-style parent path) → user ``property``."""

    field: str
    property: str
    object_name: str | None = None
    type: str | None = None


def as_spec(mapping: MappingLike) -> MappingSpec:
    """A ``MappingSpec`` for a spec or a stored ``FieldMapping`` row."""
    if isinstance(mapping, MappingSpec):
        return mapping
    return MappingSpec(mapping.field, mapping.property, mapping.object_name, mapping.type)


def default_mappings() -> list[MappingSpec]:
    return [
        MappingSpec("Email", "email"),
        MappingSpec("FirstName", "first_name"),
        MappingSpec("LastName", "last_name"),
        MappingSpec("Phone", "phone"),
    ]
