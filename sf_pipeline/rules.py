"""Sync rules → a SOQL WHERE clause.

A rule is ``{field, operator, value}``; an object's rules are joined by one combinator, ``all``
(AND) or ``any`` (OR). Values are typed by the field's describe type and written as SOQL literals,
so a value can never change the query's structure.

Salesforce semantics worth knowing (they are SOQL's, not ours):
- ``not_equals`` compiles to ``!=``, which in SOQL (unlike SQL) also matches records whose field is
  null, so "Status not_equals Closed" keeps records with no Status.
- ``=``, ``!=`` and ``LIKE`` ignore case for text; LIKE works on text fields only.
- Salesforce stores empty text as null: ``is_not_set`` (``= null``) also matches empty text.
- A date value on a datetime field means midnight UTC of that day; datetimes without an offset are
  taken as UTC.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal

from sf_pipeline.errors import ConfigError
from sf_pipeline.mapping import format_utc, parse_iso_date, parse_iso_datetime
from sf_pipeline.salesforce.describe import (
    BOOLEAN_TYPES,
    DATE_TYPES,
    DATETIME_TYPES,
    LIST_TYPES,
    NUMBER_TYPES,
    FieldInfo,
    ObjectDescribe,
)

OPERATORS = (
    "equals",
    "not_equals",
    "contains",
    "not_contains",
    "starts_with",
    "ends_with",
    "greater_than",
    "less_than",
    "is_set",
    "is_not_set",
)
VALUELESS_OPERATORS = frozenset({"is_set", "is_not_set"})
LIKE_OPERATORS = frozenset({"contains", "not_contains", "starts_with", "ends_with"})
ORDER_OPERATORS = frozenset({"greater_than", "less_than"})
MATCHES = ("all", "any")
Match = Literal["all", "any"]

# Text-like types SOQL can LIKE. Ids and lookups cannot be LIKEd.
LIKE_TYPES = frozenset({"string", "picklist", "email", "phone", "url", "textarea", "combobox"})
ID_TYPES = frozenset({"id", "reference"})
INTEGER_TYPES = frozenset({"int", "long"})
_SALESFORCE_ID = re.compile(r"[a-zA-Z0-9]{15}([a-zA-Z0-9]{3})?")
_NUMERAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")

RuleValue = str | int | float | bool | date | datetime | None


@dataclass(frozen=True, slots=True)
class Rule:
    field: str
    operator: str
    value: RuleValue = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Rule:
        return cls(str(raw.get("field", "")), str(raw.get("operator", "")), raw.get("value"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, as stored in ``ObjectConfig.rules`` (dates as ISO strings)."""
        value: Any = self.value
        if isinstance(value, date):  # datetimes too
            value = value.isoformat()
        stored: dict[str, Any] = {"field": self.field, "operator": self.operator}
        if self.operator not in VALUELESS_OPERATORS:
            stored["value"] = value
        return stored

    def describe_short(self) -> str:
        if self.operator in VALUELESS_OPERATORS:
            return f"{self.field} {self.operator}"
        return f"{self.field} {self.operator} {self.value!r}"


class RuleProblem(ValueError):
    """What is wrong with one rule, and which part of it (``field``, ``operator`` or ``value``)."""

    def __init__(self, part: Literal["field", "operator", "value"], reason: str) -> None:
        self.part = part
        self.reason = reason
        super().__init__(reason)


# --- checking ------------------------------------------------------------------------------------


def check_rule_shape(rule: Rule) -> None:
    """The checks that need no describe: a known operator, and a value exactly when it needs one."""
    if rule.operator not in OPERATORS:
        raise RuleProblem("operator", f"unknown operator {rule.operator!r}; expected one of {', '.join(OPERATORS)}")
    if rule.operator in VALUELESS_OPERATORS:
        if rule.value is not None:
            raise RuleProblem("value", f"{rule.operator} takes no value")
        return
    if rule.value is None:
        raise RuleProblem("value", f"{rule.operator} needs a value")
    if isinstance(rule.value, str) and rule.value == "":
        hint = "; use is_not_set for empty fields" if rule.operator == "equals" else ""
        raise RuleProblem("value", f"{rule.operator} needs a non-empty value{hint}")
    if not isinstance(rule.value, str | int | float | bool | date):
        raise RuleProblem("value", f"must be one text, number, boolean or date value, not {rule.value!r}")


def check_rule(rule: Rule, describe: ObjectDescribe) -> FieldInfo:
    """Check a rule against its object's fields; returns the field. Raises RuleProblem."""
    check_rule_shape(rule)
    info = describe.field(rule.field)
    if info is None:
        raise RuleProblem("field", f"field {rule.field!r} does not exist on {describe.name}")
    if not info.filterable:
        raise RuleProblem("field", f"{describe.name}.{info.name} cannot be used in a filter in Salesforce")
    if rule.operator in VALUELESS_OPERATORS:
        return info
    operator, t = rule.operator, info.type
    if operator in ORDER_OPERATORS and t not in NUMBER_TYPES | DATE_TYPES | DATETIME_TYPES:
        raise RuleProblem("operator", f"{operator} works on number, date or datetime fields; {info.name} is {t}")
    if operator in LIKE_OPERATORS and t not in LIKE_TYPES and not _multipicklist_ok(t, operator):
        raise RuleProblem("operator", f"{operator} works on text fields; {info.name} is {t}")
    _value_text(info, rule.value)
    return info


def _multipicklist_ok(field_type: str, operator: str) -> bool:
    return field_type in LIST_TYPES and operator in ("contains", "not_contains")


# --- SOQL literals --------------------------------------------------------------------------------

_STRING_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}
_LIKE_ESCAPES = {"%": "\\%", "_": "\\_"}


def soql_string(text: str, *, like: bool = False) -> str:
    """A quoted SOQL string. Salesforce accepts only these backslash escapes (any other backslash
    is an error), plus ``\\%`` and ``\\_`` inside LIKE patterns; other control characters are
    written as ``\\uXXXX``."""
    return "'" + _escape(text, like=like) + "'"


def _escape(text: str, *, like: bool) -> str:
    out = []
    for char in text:
        escaped = _STRING_ESCAPES.get(char) or (_LIKE_ESCAPES.get(char) if like else None)
        if escaped is None and (ord(char) < 0x20 or ord(char) == 0x7F):
            escaped = f"\\u{ord(char):04x}"
        out.append(escaped or char)
    return "".join(out)


def soql_number(value: Any, *, integer: bool = False) -> str:
    if isinstance(value, bool):
        raise RuleProblem("value", "expected a number, got a boolean")
    if isinstance(value, float) and not math.isfinite(value):
        raise RuleProblem("value", f"expected a finite number, got {value!r}")
    if isinstance(value, int | float):
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    elif isinstance(value, str) and _NUMERAL.fullmatch(value.strip()):
        number = Decimal(value.strip())
    else:
        raise RuleProblem("value", f"expected a number, got {value!r}")
    if integer and number != number.to_integral_value():
        raise RuleProblem("value", f"expected a whole number, got {value!r}")
    return format(number.normalize() if number != 0 else Decimal(0), "f")


def _value_text(info: FieldInfo, value: Any) -> str:
    """``value`` as SOQL writes it for ``info``'s field: numbers, booleans, dates and datetimes as
    their unquoted literals; text as the plain text, which the caller quotes and escapes."""
    t = info.type
    if t in NUMBER_TYPES:
        return soql_number(value, integer=t in INTEGER_TYPES)
    if t in BOOLEAN_TYPES:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower()
        raise RuleProblem("value", f"{info.name} is a boolean field; expected true or false, got {value!r}")
    if t in DATE_TYPES:
        if isinstance(value, datetime) or not isinstance(value, date | str):
            raise RuleProblem("value", f"{info.name} is a date field; expected YYYY-MM-DD, got {value!r}")
        try:
            return (value if isinstance(value, date) else parse_iso_date(value.strip())).isoformat()
        except ValueError as exc:
            raise RuleProblem("value", f"{info.name} is a date field; {exc}") from exc
    if t in DATETIME_TYPES:
        return _datetime_literal(info, value)
    return _text_literal(info, value)


def _datetime_literal(info: FieldInfo, value: Any) -> str:
    if isinstance(value, datetime):
        return format_utc(value if value.tzinfo else value.replace(tzinfo=UTC))
    if isinstance(value, date):
        return f"{value.isoformat()}T00:00:00Z"
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return f"{parse_iso_date(text).isoformat()}T00:00:00Z"
            return format_utc(parse_iso_datetime(text))
        except ValueError as exc:
            raise RuleProblem("value", f"{info.name} is a datetime field; {exc}") from exc
    raise RuleProblem("value", f"{info.name} is a datetime field; expected ISO-8601, got {value!r}")


def _text_literal(info: FieldInfo, value: Any) -> str:
    if isinstance(value, bool | float | datetime):
        raise RuleProblem("value", f"{info.name} is a text field; write the value as quoted text (got {value!r})")
    text = value.isoformat() if isinstance(value, date) else str(value)
    if info.type in ID_TYPES and not _SALESFORCE_ID.fullmatch(text):
        raise RuleProblem("value", f"{info.name} takes a Salesforce ID (15 or 18 characters), not {text!r}")
    return text


# --- compiling ------------------------------------------------------------------------------------


def compile_condition(rule: Rule, describe: ObjectDescribe) -> str:
    """One rule as a parenthesised SOQL condition. Raises RuleProblem."""
    info = check_rule(rule, describe)
    name, operator = info.name, rule.operator
    if operator == "is_set":
        return f"({name} != null)"
    if operator == "is_not_set":
        return f"({name} = null)"
    if info.type in LIST_TYPES and operator in LIKE_OPERATORS:
        # Multi-select picklists cannot be LIKEd: INCLUDES/EXCLUDES test for one selected value.
        function = "INCLUDES" if operator == "contains" else "EXCLUDES"
        return f"({name} {function} ({soql_string(str(rule.value))}))"
    written = _value_text(info, rule.value)
    if operator in LIKE_OPERATORS:
        body = _escape(written, like=True)
        pattern = {
            "contains": f"'%{body}%'",
            "not_contains": f"'%{body}%'",
            "starts_with": f"'{body}%'",
            "ends_with": f"'%{body}'",
        }[operator]
        if operator == "not_contains":
            return f"(NOT {name} LIKE {pattern})"
        return f"({name} LIKE {pattern})"
    is_text = info.type not in NUMBER_TYPES | BOOLEAN_TYPES | DATE_TYPES | DATETIME_TYPES
    value = soql_string(written) if is_text else written
    symbol = {"equals": "=", "not_equals": "!=", "greater_than": ">", "less_than": "<"}[operator]
    return f"({name} {symbol} {value})"


def compile_where(rules: Sequence[Rule], match: str, describe: ObjectDescribe) -> str | None:
    """The WHERE condition for an object's rules, or None when there are none.

    The result is one parenthesised group, so callers can AND it with their own conditions.
    Raises ConfigError naming the rule and the reason."""
    if match not in MATCHES:
        raise ConfigError(f"{describe.name}: match must be 'all' or 'any', not {match!r}", key="match")
    conditions = []
    for index, rule in enumerate(rules):
        try:
            conditions.append(compile_condition(rule, describe))
        except RuleProblem as problem:
            raise ConfigError(
                f"{describe.name} rule {rule.describe_short()}: {problem.reason}",
                key=f"rules[{index}].{problem.part}",
            ) from problem
    if not conditions:
        return None
    if len(conditions) == 1:
        return conditions[0]
    return "(" + (" AND " if match == "all" else " OR ").join(conditions) + ")"
