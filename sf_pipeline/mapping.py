"""Field mappings: which Salesforce fields become which Spotzee user properties, and how values convert.

``resolve_object_mapping`` resolves an object's mappings against describe once, into a
``ResolvedMapping``: plain data that travels in the extract manifest, so later stages never ask
Salesforce again. ``ResolvedMapping.compile`` builds the ``ObjectMapping`` whose ``convert`` turns
one Salesforce record into a ``MappedUser`` with precomputed per-field converters (it runs once per
record, on the sync's hot path). ``compile_object_mapping`` does both.

Conversions (Spotzee's table): text-like types → string; int/double/currency/percent → number;
boolean → boolean; date → ``YYYY-MM-DD``; datetime → ``YYYY-MM-DDTHH:MM:SSZ`` (UTC); multipicklist →
list of strings. A mapping's ``type`` overrides the property type; a value that does not fit its
property (or a top-level field's limits) is dropped with a ``ValueWarning`` and the rest still maps.

Nulls: a null (or empty) Salesforce value clears its property: ``None`` in ``data`` (or on the
top-level attribute). A dropped value is left out of ``data`` altogether. When several mappings feed
one property (``Lead.Email`` and ``Contact.Email`` → ``email`` on CampaignMember), the first non-null
value that converts, in mapping order, wins.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sf_pipeline.errors import ConfigError
from sf_pipeline.mapping_spec import MappingLike as MappingLike
from sf_pipeline.mapping_spec import MappingSpec as MappingSpec
from sf_pipeline.mapping_spec import as_spec as as_spec
from sf_pipeline.mapping_spec import default_mappings as default_mappings
from sf_pipeline.salesforce.describe import (
    BOOLEAN_TYPES,
    DATE_TYPES,
    DATETIME_TYPES,
    LIST_TYPES,
    NUMBER_TYPES,
    FieldInfo,
    ObjectDescribe,
)

TOP_LEVEL = frozenset({"email", "phone", "timezone", "locale"})
PROPERTY_TYPES = ("string", "number", "boolean", "date", "array")
TOP_LEVEL_MAX_LENGTH = {"email": 320, "phone": 64, "timezone": 50, "locale": 255}
MAX_STRING_LENGTH = 65_535
PREVIEW_LENGTH = 40
ALWAYS_QUERIED = ("Id", "LastModifiedDate", "IsDeleted")
OPT_OUT_FIELD = "HasOptedOutOfEmail"
# Types with no single-value form a user property could hold.
UNMAPPABLE_TYPES = frozenset({"address", "location", "base64", "complexvalue"})

PROPERTY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
FIELD_PATH = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
# One @, a non-empty local part, a dotted domain without empty labels, no whitespace: the email
# shape the mapping accepts, and the user row contract checks (sf_pipeline.sync.schemas).
EMAIL_PATTERN = r"^[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+$"
_EMAIL = re.compile(EMAIL_PATTERN)
_EXACT_FLOAT_INT = 2**53


# --- mapping definitions (sf_pipeline.mapping_spec, re-exported) ------------------------------------


@dataclass(frozen=True, slots=True)
class ResolvedField:
    """A mapped field found through describe: ``path`` uses Salesforce's canonical names."""

    path: str
    relationship: str | None
    name: str
    info: FieldInfo


def resolve_field(object_name: str, path: str, describe: Callable[[str], ObjectDescribe]) -> ResolvedField | None:
    """``Field`` on the object, or ``Parent.Field`` through one of its lookups; None if absent.

    Raises ConfigError for a lookup that can point at several objects (a polymorphic field)."""
    relationship, _, name = path.rpartition(".")
    owner = describe(object_name)
    if relationship:
        lookup = owner.relationship(relationship)
        if lookup is None or lookup.relationship_name is None:
            return None
        if len(lookup.reference_to) != 1:
            raise ConfigError(
                f"{path!r}: {object_name}.{lookup.relationship_name} can point at several objects "
                f"({', '.join(lookup.reference_to)}); map a field of a single-object lookup instead"
            )
        found = describe(lookup.reference_to[0]).field(name)
        if found is None:
            return None
        relationship = lookup.relationship_name
        return ResolvedField(f"{relationship}.{found.name}", relationship, found.name, found)
    found = owner.field(name)
    return None if found is None else ResolvedField(found.name, None, found.name, found)


def natural_type(info: FieldInfo) -> str:
    """The property type a Salesforce field's values have without a ``type`` override."""
    kind = _source_kind(info)
    return {"datetime": "date", "time": "string"}.get(kind, kind)


def property_type(resolved: ResolvedField, spec: MappingSpec) -> str:
    """The destination type of a mapping, checked: raises ValueError with the reason if impossible."""
    kind = _source_kind(resolved.info)
    if spec.type is not None and spec.type not in PROPERTY_TYPES:
        raise ValueError(f"unknown type {spec.type!r}; expected one of {', '.join(PROPERTY_TYPES)}")
    if spec.property in TOP_LEVEL:
        if spec.type not in (None, "string"):
            raise ValueError(f"{spec.property!r} is a top-level text field of the user, not a {spec.type}")
        return "string"
    wanted = spec.type or natural_type(resolved.info)
    accepted = _ACCEPTS[wanted]
    if kind not in accepted:
        raise ValueError(
            f"{resolved.path} is a {resolved.info.type} field; it cannot fill a {wanted} property "
            f"(a {wanted} property takes {', '.join(sorted(accepted))} fields)"
        )
    return wanted


def _source_kind(info: FieldInfo) -> str:
    t = info.type
    if t in UNMAPPABLE_TYPES:
        raise ValueError(f"{info.name} is a {t} field, which cannot be mapped; map its parts instead")
    if t in NUMBER_TYPES:
        return "number"
    if t in BOOLEAN_TYPES:
        return "boolean"
    if t in DATE_TYPES:
        return "date"
    if t in DATETIME_TYPES:
        return "datetime"
    if t in LIST_TYPES:
        return "array"
    if t == "time":
        return "time"
    return "string"  # the text-like types, and anything else text-shaped (anyType, ...)


_TEXT_KINDS = frozenset({"string", "time"})
_ACCEPTS: dict[str, frozenset[str]] = {
    "string": frozenset({"string", "time", "number", "boolean", "date", "datetime", "array"}),
    "number": _TEXT_KINDS | {"number"},
    "boolean": _TEXT_KINDS | {"boolean"},
    "date": _TEXT_KINDS | {"date", "datetime"},
    "array": _TEXT_KINDS | {"array"},
}


# --- values ----------------------------------------------------------------------------------------


def parse_iso_date(text: str) -> date:
    if not _DATE.fullmatch(text):
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD)")
    return date.fromisoformat(text)


def parse_iso_datetime(text: str) -> datetime:
    """An ISO-8601 datetime, aware and in UTC; one without an offset is taken as UTC."""
    if not _DATETIME.fullmatch(text):
        raise ValueError(f"{text!r} is not an ISO-8601 datetime (YYYY-MM-DDTHH:MM:SSZ)")
    parsed = datetime.fromisoformat(text)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def format_utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_valid_email(text: str) -> bool:
    """A deliberately simple RFC 5322-ish check: one @, a non-empty local part, a dotted domain."""
    return len(text) <= TOP_LEVEL_MAX_LENGTH["email"] and _EMAIL.fullmatch(text) is not None


class _Drop(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


Converter = Callable[[Any], Any]


def _number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise _Drop("type mismatch: expected a number, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        if not _NUMBER.fullmatch(text):
            raise _Drop("type mismatch: not a number")
        if "." not in text and "e" not in text.lower():
            return int(text)
        number = float(text)
    else:
        raise _Drop(f"type mismatch: expected a number, got {type(value).__name__}")
    if not math.isfinite(number):
        raise _Drop("type mismatch: not a finite number")
    # The same value must map the same way whether Salesforce sent 5, 5.0 or 5.0E0.
    return int(number) if number.is_integer() and abs(number) < _EXACT_FLOAT_INT else number


def _boolean_from_text(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise _Drop("type mismatch: expected true or false")


def _iso_date(value: Any) -> str:
    if isinstance(value, str) and _DATE.fullmatch(value):
        return value
    raise _Drop("type mismatch: not a date (YYYY-MM-DD)")


def _iso_datetime(value: Any) -> str:
    # Salesforce sends 2024-01-01T00:00:00.000+0000: always UTC, so the fast path just reformats.
    if isinstance(value, str) and len(value) == 28 and value.endswith("+0000") and value[10] == "T":
        return value[:19] + "Z"
    if isinstance(value, str):
        try:
            return format_utc(parse_iso_datetime(value))
        except ValueError:
            pass
    raise _Drop("type mismatch: not an ISO-8601 datetime")


def _date_from_text(value: Any) -> str:
    text = str(value).strip()
    return text if _DATE.fullmatch(text) else _iso_datetime(text)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(_number(value))
    raise _Drop(f"type mismatch: expected text, got {type(value).__name__}")


def _split_multipicklist(value: Any) -> list[str]:
    if not isinstance(value, str):
        raise _Drop("type mismatch: expected ';'-separated picklist values")
    return value.split(";")


def _single_item(value: Any) -> list[str]:
    return [_text(value)]


def _converter(kind: str, wanted: str, prop: str) -> Converter:
    """The function that turns one raw value of a ``kind`` field into a ``wanted`` property value,
    with the property's limits, raising _Drop when the value does not fit."""
    if wanted == "number":
        return _number
    if wanted == "boolean":
        return _boolean_from_text
    if wanted == "array":
        split = _split_multipicklist if kind == "array" else _single_item

        def items(value: Any) -> list[str]:
            result = split(value)
            if any(len(item) > MAX_STRING_LENGTH for item in result):
                raise _Drop(f"an item is longer than {MAX_STRING_LENGTH:,} characters")
            return result

        return items
    dated = {"date": _iso_date, "datetime": _iso_datetime}.get(kind)
    if wanted == "date":
        return dated or _date_from_text
    if dated is not None:
        # Already short, normalised text: of the property's limits only the email check can fail.
        return _checked_email(dated) if prop == "email" else dated
    limit = TOP_LEVEL_MAX_LENGTH.get(prop, MAX_STRING_LENGTH)
    too_long = f"longer than {limit:,} characters"

    def text(value: Any) -> str:
        result = value if type(value) is str else _text(value)
        if len(result) > limit:
            raise _Drop(too_long)
        return result

    return _checked_email(text) if prop == "email" else text


def _checked_email(convert: Converter) -> Converter:
    def email(value: Any) -> str:
        result: str = convert(value)
        if not is_valid_email(result):
            raise _Drop("not a valid email address")
        return result

    return email


def _preview(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= PREVIEW_LENGTH else text[: PREVIEW_LENGTH - 1] + "…"


# --- compiled per-object mapping ------------------------------------------------------------------


@dataclass(slots=True)
class ValueWarning:
    """A value that was dropped: ``value`` is a short preview, never the whole value."""

    property: str
    field: str
    reason: str
    value: str


@dataclass(slots=True)
class MappedUser:
    email: str | None = None
    phone: str | None = None
    timezone: str | None = None
    locale: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    warnings: list[ValueWarning] = field(default_factory=list)


# (relationship or None, field key, converter, field path as written in warnings)
_Source = tuple[str | None, str, Converter, str]
_MISSING = object()


class ObjectMapping:
    """One object's mappings, resolved against describe; ``convert`` maps one REST record."""

    __slots__ = ("_plan", "object_name", "opt_out_properties", "properties", "skipped", "soql_fields")

    def __init__(
        self,
        object_name: str,
        soql_fields: tuple[str, ...],
        plan: tuple[tuple[str, tuple[_Source, ...]], ...],
        opt_out_properties: frozenset[str],
        skipped: tuple[str, ...],
    ) -> None:
        self.object_name = object_name
        self.soql_fields = soql_fields
        self.properties = tuple(prop for prop, _ in plan)
        self.opt_out_properties = opt_out_properties
        self.skipped = skipped
        self._plan = plan

    def convert(self, record: Mapping[str, Any]) -> MappedUser:
        data: dict[str, Any] = {}
        warnings: list[ValueWarning] = []
        for prop, sources in self._plan:
            value: Any = None
            for relationship, key, convert, path in sources:
                if relationship is None:
                    raw = record.get(key)
                else:
                    # A parent lookup is a nested record, or null when the lookup is empty.
                    parent = record.get(relationship)
                    raw = parent.get(key) if parent else None
                if raw is None or raw == "":
                    continue
                try:
                    value = convert(raw)
                    break
                except _Drop as drop:
                    warnings.append(ValueWarning(prop, path, drop.reason, _preview(raw)))
                    value = _MISSING
            else:
                if value is _MISSING:
                    continue
            data[prop] = value
        return MappedUser(
            data.pop("email", None),
            data.pop("phone", None),
            data.pop("timezone", None),
            data.pop("locale", None),
            data,
            warnings,
        )

    def __repr__(self) -> str:
        return f"ObjectMapping({self.object_name!r}, properties={self.properties!r})"


def applies_to(spec: MappingLike, object_name: str) -> bool:
    return spec.object_name is None or spec.object_name == object_name


@dataclass(frozen=True, slots=True)
class MappedSource:
    """One field feeding a property: where it is in the record and how its value converts."""

    relationship: str | None
    name: str
    path: str
    kind: str  # the field's kind of value, from describe (``_source_kind``)
    wanted: str  # the property type it converts to


# The describe types of the fields every sync reads, whatever is mapped.
_ALWAYS_QUERIED_TYPES = {"Id": "id", "LastModifiedDate": "datetime", "IsDeleted": "boolean"}


@dataclass(frozen=True, slots=True)
class ResolvedMapping:
    """An object's mappings resolved against describe, as plain (picklable) data."""

    object_name: str
    soql_fields: tuple[str, ...]
    # The describe type of each SOQL field, in ``soql_fields`` order.
    field_types: tuple[str, ...]
    properties: tuple[tuple[str, tuple[MappedSource, ...]], ...]
    opt_out_properties: frozenset[str]
    skipped: tuple[str, ...]

    def compile(self) -> ObjectMapping:
        plan = tuple(
            (prop, tuple((s.relationship, s.name, _converter(s.kind, s.wanted, prop), s.path) for s in sources))
            for prop, sources in self.properties
        )
        return ObjectMapping(self.object_name, self.soql_fields, plan, self.opt_out_properties, self.skipped)


def resolve_object_mapping(
    object_name: str,
    mappings: Sequence[MappingLike],
    describe: Callable[[str], ObjectDescribe],
) -> ResolvedMapping:
    """Resolve the mappings that apply to ``object_name``. A mapping limited to this object must
    find its field (ConfigError otherwise); an unlimited one whose field this object lacks is left
    out and listed in ``skipped``."""
    fields: dict[str, str] = dict(_ALWAYS_QUERIED_TYPES)
    sources: dict[str, list[MappedSource]] = {}
    opt_out: set[str] = set()
    skipped: list[str] = []
    for index, spec in enumerate(map(as_spec, mappings)):
        if not applies_to(spec, object_name):
            continue
        key = f"mappings[{index}]"
        if not PROPERTY_NAME.fullmatch(spec.property):
            raise ConfigError(f"invalid property name {spec.property!r}", key=f"{key}.property")
        resolved = resolve_field(object_name, spec.field, describe)
        if resolved is None:
            if spec.object_name == object_name:
                raise ConfigError(f"field {spec.field!r} does not exist on {object_name}", key=f"{key}.field")
            skipped.append(spec.field)
            continue
        try:
            wanted = property_type(resolved, spec)
        except ValueError as exc:
            raise ConfigError(str(exc), key=f"{key}.type" if spec.type else f"{key}.field") from exc
        fields[resolved.path] = resolved.info.type
        sources.setdefault(spec.property, []).append(
            MappedSource(resolved.relationship, resolved.name, resolved.path, _source_kind(resolved.info), wanted)
        )
        if resolved.name.lower() == OPT_OUT_FIELD.lower() and wanted == "boolean":
            opt_out.add(spec.property)
    return ResolvedMapping(
        object_name=object_name,
        soql_fields=tuple(fields),
        field_types=tuple(fields.values()),
        properties=tuple((prop, tuple(found)) for prop, found in sources.items()),
        opt_out_properties=frozenset(opt_out),
        skipped=tuple(skipped),
    )


def compile_object_mapping(
    object_name: str,
    mappings: Sequence[MappingLike],
    describe: Callable[[str], ObjectDescribe],
) -> ObjectMapping:
    return resolve_object_mapping(object_name, mappings, describe).compile()
