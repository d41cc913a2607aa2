"""Declarative integration files (``sf-pipeline integration apply FILE.yaml``).

```yaml
name: acme                 # lower-case letters, digits, '-'; starts with a letter; at most 63
project_id: 42
login_url: https://login.salesforce.com
frequency_minutes: 60      # whole minutes, at least 5 (default 60)
lookback_minutes: 10       # incremental runs re-read this far below the watermark (0-1440, default 10)
api: auto                  # auto (Bulk API 2.0 for large results), rest or bulk (default auto)
reconcile_every_days: 7    # reconcile with the org by Id at least this often (1..90, default 7)
objects:                   # any of Lead, Contact, CampaignMember, each with its own rules
  Lead:
    match: all             # all = AND, any = OR
    rules:
      - {field: Rating, operator: equals, value: Hot}
  Contact: {}
mappings:                  # optional: when absent the current (or default) mappings stay
  - {field: Email, property: email}
  - {field: HasOptedOutOfEmail, property: unsubscribed, type: boolean}
  - {field: Lead.Email, property: email, object: CampaignMember}
```

A mapping limited (``object:``) to an object that is not selected is kept: it applies once that
object is selected.

Every problem is reported with its key path (``objects.Lead.rules[1].operator``) and reason, all of
them at once, before anything is written; ``apply_spec`` then writes in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from sqlalchemy.orm import Session

from sf_pipeline.errors import ConfigError, ConflictError
from sf_pipeline.mapping import (
    FIELD_PATH,
    PROPERTY_NAME,
    TOP_LEVEL,
    MappingSpec,
    property_type,
    resolve_field,
)
from sf_pipeline.rules import (
    MATCHES,
    OPERATORS,
    VALUELESS_OPERATORS,
    Rule,
    RuleProblem,
    check_rule,
    check_rule_shape,
)
from sf_pipeline.salesforce.describe import ObjectDescribe
from sf_pipeline.storage.integrations import (
    DEFAULT_FREQUENCY_MINUTES,
    check_frequency,
    check_name,
    create_integration,
    find_integration,
    mapping_specs,
    normalize_login_url,
    refresh_setup_status,
    replace_mappings,
)
from sf_pipeline.storage.models import Integration, ObjectConfig
from sf_pipeline.sync.plan import DEFAULT_LOOKBACK_MINUTES, MAX_LOOKBACK_MINUTES

SUPPORTED_OBJECTS = ("Lead", "Contact", "CampaignMember")
ObjectName = Literal["Lead", "Contact", "CampaignMember"]
Describe = Callable[[str], ObjectDescribe]


class SpecError(ConfigError):
    """An invalid integration file. ``problems`` lists every (key path, reason)."""

    def __init__(self, problems: Sequence[tuple[str, str]], *, source: str | None = None) -> None:
        self.problems = list(problems)
        prefix = f"{source}: " if source else ""
        if len(self.problems) == 1:
            message = f"{prefix}{self.problems[0][0]}: {self.problems[0][1]}"
        else:
            lines = "\n".join(f"  {key}: {reason}" for key, reason in self.problems)
            message = f"{prefix}{len(self.problems)} problems:\n{lines}"
        super().__init__(message)
        self.key = self.problems[0][0] if self.problems else None


# --- the file's shape ------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class RuleSpec(_Strict):
    field: str
    operator: str
    value: Any = Field(default=None, validate_default=True)

    @field_validator("field")
    @classmethod
    def _field_name(cls, value: str) -> str:
        if not FIELD_PATH.fullmatch(value) or "." in value:
            raise ValueError(f"{value!r} is not a Salesforce field name (like Rating or Custom__c)")
        return value

    @field_validator("operator")
    @classmethod
    def _known_operator(cls, value: str) -> str:
        if value not in OPERATORS:
            raise ValueError(f"unknown operator {value!r}; expected one of {', '.join(OPERATORS)}")
        return value

    @field_validator("value")
    @classmethod
    def _value_fits_operator(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, list | dict):
            raise ValueError("must be a single value, not a list or mapping")
        operator = info.data.get("operator")
        if operator is not None:
            try:
                check_rule_shape(Rule("-", operator, value))
            except RuleProblem as problem:
                raise ValueError(problem.reason) from problem
        return value

    def to_rule(self) -> Rule:
        return Rule(self.field, self.operator, None if self.operator in VALUELESS_OPERATORS else self.value)


# Limits that keep every sync query within what Salesforce accepts. Queries go as REST GETs
# (``/query?q=...``), and Salesforce refuses a request URI longer than 16,384 bytes; SOQL itself
# allows 100,000 characters, so the URI is the binding limit. Rules and mappings are capped so a
# file cannot grow a query (or the stored configuration) without bound.
MAX_FILE_BYTES = 1_000_000
MAX_RULES_PER_OBJECT = 50
MAX_MAPPINGS = 200
MAX_QUERY_URI_BYTES = 16_384


class ObjectSpec(_Strict):
    match: str = "all"
    rules: list[RuleSpec] = Field(default_factory=list, max_length=MAX_RULES_PER_OBJECT)

    @field_validator("match")
    @classmethod
    def _combinator(cls, value: str) -> str:
        if value not in MATCHES:
            raise ValueError(f"unknown match {value!r}; expected all (every rule, AND) or any (OR)")
        return value


class MappingEntry(_Strict):
    field: str
    property: str
    type: Literal["string", "number", "boolean", "date", "array"] | None = None
    object: ObjectName | None = None

    @field_validator("field")
    @classmethod
    def _field_path(cls, value: str) -> str:
        if not FIELD_PATH.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a Salesforce field (like Email or Custom__c) or parent path (Lead.Email)"
            )
        return value

    @field_validator("property")
    @classmethod
    def _property_name(cls, value: str) -> str:
        if not PROPERTY_NAME.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a property name: use letters, digits and '_', not starting with a digit"
            )
        return value

    def to_mapping(self) -> MappingSpec:
        return MappingSpec(self.field, self.property, self.object, self.type)


DEFAULT_RECONCILE_EVERY_DAYS = 7
MAX_RECONCILE_EVERY_DAYS = 90


class IntegrationSpec(_Strict):
    name: str
    project_id: int
    login_url: str
    frequency_minutes: int = DEFAULT_FREQUENCY_MINUTES
    lookback_minutes: int = DEFAULT_LOOKBACK_MINUTES
    api: Literal["auto", "rest", "bulk"] = "auto"
    reconcile_every_days: int = DEFAULT_RECONCILE_EVERY_DAYS
    # Keys are checked before validation (see ``spec_from_data``) so errors can name the object.
    objects: dict[str, ObjectSpec] = Field(min_length=1)
    mappings: list[MappingEntry] | None = Field(default=None, max_length=MAX_MAPPINGS)

    @field_validator("objects", mode="before")
    @classmethod
    def _no_rules_when_empty(cls, value: Any) -> Any:
        # ``Contact:`` with nothing after it reads as null in YAML: the object, without rules.
        if isinstance(value, dict):
            return {name: {} if spec is None else spec for name, spec in value.items()}
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value)

    @field_validator("project_id")
    @classmethod
    def _project_id(cls, value: int) -> int:
        if value <= 0:
            raise ValueError(f"must be a positive whole number, got {value}")
        return value

    @field_validator("login_url")
    @classmethod
    def _login_url(cls, value: str) -> str:
        return normalize_login_url(value)

    @field_validator("frequency_minutes")
    @classmethod
    def _frequency(cls, value: int) -> int:
        return check_frequency(value)

    @field_validator("lookback_minutes")
    @classmethod
    def _lookback(cls, value: int) -> int:
        if not 0 <= value <= MAX_LOOKBACK_MINUTES:
            raise ValueError(f"must be between 0 and {MAX_LOOKBACK_MINUTES} minutes, got {value}")
        return value

    @field_validator("reconcile_every_days")
    @classmethod
    def _reconcile_every(cls, value: int) -> int:
        # Past 15 days a delete can leave the Recycle Bin unseen; a sync older than that
        # reconciles anyway, so the bound only keeps the schedule meaningful.
        if not 1 <= value <= MAX_RECONCILE_EVERY_DAYS:
            raise ValueError(f"must be between 1 and {MAX_RECONCILE_EVERY_DAYS} days, got {value}")
        return value


_SHAPES: dict[str, type[BaseModel]] = {
    "": IntegrationSpec,
    "objects.*": ObjectSpec,
    "objects.*.rules[]": RuleSpec,
    "mappings[]": MappingEntry,
}
_TYPE_NAMES = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping of keys to values",
    "model_type": "a mapping of keys to values",
}


def _key_path(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        if part == "[key]":
            continue
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _shape_of(loc: Sequence[int | str]) -> str:
    pattern = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            pattern += "[]"
        elif i > 0 and loc[i - 1] == "objects":
            pattern += ".*"
        else:
            pattern += f".{part}" if pattern else part
    return pattern


def _reason(error: Any) -> str:
    kind, loc, given = error["type"], error["loc"], error.get("input")
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        allowed = _SHAPES.get(_shape_of(loc[:-1]))
        keys = f"; expected one of {', '.join(allowed.model_fields)}" if allowed else ""
        return f"unknown key{keys}"
    if kind == "value_error":
        return str(error["ctx"]["error"])
    if kind == "literal_error":
        what = "object" if "[key]" in loc else "value"
        return f"unknown {what} {given!r}; expected one of {error['ctx']['expected'].replace(' or ', ', ')}"
    if kind == "too_short" and loc == ("objects",):
        return f"choose at least one object: {', '.join(SUPPORTED_OBJECTS)}"
    if kind in _TYPE_NAMES:
        return f"expected {_TYPE_NAMES[kind]}, got {given!r}"
    return str(error["msg"])


def _cross_check(spec: IntegrationSpec) -> list[tuple[str, str]]:
    """The checks that span keys (done once each part is valid on its own)."""
    problems: list[tuple[str, str]] = []
    for object_name, obj in spec.objects.items():
        size = estimated_query_uri_bytes(object_name, obj, spec.mappings or [])
        if size > MAX_QUERY_URI_BYTES:
            problems.append((f"objects.{object_name}", f"the sync query would be about {size:,} bytes as a URL; "
                             f"Salesforce accepts at most {MAX_QUERY_URI_BYTES:,}: use fewer or shorter rules"))
    if spec.mappings is None:
        return problems
    if not spec.mappings:
        problems.append(("mappings", "list at least one mapping, or leave the key out to keep the current ones"))
    seen: dict[tuple[str, str, str | None], int] = {}
    for index, entry in enumerate(spec.mappings):
        key = f"mappings[{index}]"
        if entry.property in TOP_LEVEL and entry.type not in (None, "string"):
            problems.append((f"{key}.type", f"{entry.property!r} is a top-level text field of the user"))
        signature = (entry.field.lower(), entry.property, entry.object)
        if signature in seen:
            problems.append((key, f"repeats mappings[{seen[signature]}]"))
        seen.setdefault(signature, index)
    return problems


def estimated_query_uri_bytes(object_name: str, obj: ObjectSpec, mappings: Sequence[MappingEntry]) -> int:
    """The length of the ``/query?q=`` URI the sync would send, close enough to check the limit
    before Salesforce is asked (the exact SOQL needs the fields' types from describe)."""
    from urllib.parse import quote

    fields = ["Id", "LastModifiedDate", "IsDeleted",
              *(m.field for m in mappings if m.object in (None, object_name))]
    joiner = " AND " if obj.match == "all" else " OR "
    where = joiner.join(f"{r.field} {r.operator} '{r.value}'" for r in obj.rules)
    soql = (f"SELECT {', '.join(fields)} FROM {object_name} WHERE ({where}) AND LastModifiedDate >= "
            "2000-01-01T00:00:00Z ORDER BY LastModifiedDate, Id")
    return len("/services/data/v62.0/queryAll?q=") + len(quote(soql, safe=""))


def spec_from_data(data: Any, *, source: str | None = None) -> IntegrationSpec:
    if not isinstance(data, dict):
        raise SpecError(
            [("(file)", "expected a mapping of keys (name, project_id, login_url, objects, ...)")],
            source=source,
        )
    problems, data = _unknown_objects(data)
    try:
        spec = IntegrationSpec.model_validate(data)
    except ValidationError as exc:
        problems += [
            (_key_path(e["loc"]) or "(file)", _reason(e))
            for e in exc.errors()
            if not (problems and e["loc"] == ("objects",))  # no "choose an object" after unknown ones
        ]
        raise SpecError(problems, source=source) from None
    problems += _cross_check(spec)
    if problems:
        raise SpecError(problems, source=source)
    return spec


def _unknown_objects(data: dict[str, Any]) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """Problems with object names, and the data without those objects."""
    objects = data.get("objects")
    if not isinstance(objects, dict):
        return [], data
    expected = ", ".join(SUPPORTED_OBJECTS)
    problems = [
        (f"objects.{name}", f"unknown object {name!r}; expected one of {expected}")
        for name in objects
        if name not in SUPPORTED_OBJECTS
    ]
    if not problems:
        return [], data
    known = {name: spec for name, spec in objects.items() if name in SUPPORTED_OBJECTS}
    return problems, {**data, "objects": known}


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML that rejects a key given twice (PyYAML silently keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_spec(text: str, *, source: str = "<integration file>") -> IntegrationSpec:
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(f"{source}: {where}invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from None
    if data is None:
        raise ConfigError(f"{source}: the file is empty")
    return spec_from_data(data, source=source)


def load_spec_file(path: Path) -> IntegrationSpec:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ConfigError(f"{path}: the file is larger than {MAX_FILE_BYTES:,} bytes; an integration file "
                              f"holds at most {MAX_RULES_PER_OBJECT} rules per object and {MAX_MAPPINGS} mappings")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the file ({exc})") from None
    return parse_spec(text, source=str(path))


# --- validation against Salesforce's describe -----------------------------------------------------


def check_against_describe(
    objects: Sequence[str],
    rules: Mapping[str, list[Rule]],
    mappings: Sequence[tuple[str, MappingSpec]],
    describe: Describe,
) -> list[tuple[str, str]]:
    """Problems with rules and mappings given the org's fields. ``mappings`` pairs each mapping with
    the key path to report it under."""
    problems: list[tuple[str, str]] = []
    for object_name in objects:
        for index, rule in enumerate(rules.get(object_name, [])):
            try:
                check_rule(rule, describe(object_name))
            except RuleProblem as problem:
                problems.append((f"objects.{object_name}.rules[{index}].{problem.part}", problem.reason))
    for key, mapping in mappings:
        targets = [o for o in objects if mapping.object_name in (None, o)]
        found_on = []
        for object_name in targets:
            try:
                resolved = resolve_field(object_name, mapping.field, describe)
                if resolved is None:
                    continue
                found_on.append(object_name)
                property_type(resolved, mapping)
            except (ValueError, ConfigError) as exc:
                part = "type" if mapping.type else "field"
                problems.append((f"{key}.{part}", f"on {object_name}: {exc}"))
        if not found_on and targets:
            where = " or ".join(targets)
            problems.append((f"{key}.field", f"field {mapping.field!r} does not exist on {where}"))
    return problems


# --- applying ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApplyResult:
    name: str
    created: bool
    status_before: str | None
    status_after: str
    activated: bool
    objects: tuple[str, ...]
    mappings: int

    @property
    def updated(self) -> bool:
        return not self.created


def apply_spec(session: Session, spec: IntegrationSpec, *, describe: Describe | None, now: datetime) -> ApplyResult:
    """Create or update the integration the file describes, in the caller's transaction.

    With ``describe`` (the integration has credentials), every rule and mapping, including stored
    mappings the file keeps, is checked against the org's fields first; without it the file is
    checked structurally only. Nothing is written unless everything is valid.

    Applying a file counts as the admin saving the integration's setup: objects (with their rules)
    become saved, and so do mappings, whether the file lists them or keeps the existing (or
    default) ones. An Incomplete integration with credentials therefore turns Active here and its
    initial sync is requested. Objects, rules and mappings left out of the file are removed; sync
    watermarks are not touched (the sync notices configuration changes itself).
    """
    integration = find_integration(session, spec.name)
    if integration is not None and integration.project_id != spec.project_id:
        raise ConflictError(
            f"integration {spec.name!r} belongs to project {integration.project_id}, not {spec.project_id}: "
            "an integration cannot move between projects (its users live in the first); create a new one"
        )
    objects = list(spec.objects)
    rules = {name: [rule.to_rule() for rule in object_spec.rules] for name, object_spec in spec.objects.items()}
    new_mappings = None if spec.mappings is None else [entry.to_mapping() for entry in spec.mappings]
    if describe is not None:
        if new_mappings is not None:
            keyed: list[tuple[str, MappingSpec]] = [(f"mappings[{i}]", m) for i, m in enumerate(new_mappings)]
        else:
            kept = mapping_specs(integration) if integration is not None else []
            keyed = [(f"stored mappings[{i}] ({m.field} → {m.property})", m) for i, m in enumerate(kept)]
        problems = check_against_describe(objects, rules, keyed, describe)
        if problems:
            raise SpecError(problems, source=spec.name)

    created = integration is None
    status_before = None if integration is None else integration.status
    if integration is None:
        integration = create_integration(
            session,
            name=spec.name,
            project_id=spec.project_id,
            login_url=spec.login_url,
            frequency_minutes=spec.frequency_minutes,
        )
    else:
        integration.login_url = spec.login_url
        integration.frequency_minutes = spec.frequency_minutes
    integration.lookback_minutes = spec.lookback_minutes
    integration.api = spec.api
    integration.reconcile_every_days = spec.reconcile_every_days
    _replace_objects(integration, spec)
    if new_mappings is not None:
        replace_mappings(integration, new_mappings)
    integration.objects_saved = True
    integration.mappings_saved = True
    activated = refresh_setup_status(integration, now)
    session.flush()
    return ApplyResult(
        name=integration.name,
        created=created,
        status_before=status_before,
        status_after=integration.status,
        activated=activated,
        objects=tuple(objects),
        mappings=len(integration.mappings),
    )


def _replace_objects(integration: Integration, spec: IntegrationSpec) -> None:
    # Kept objects are updated in place: deleting and re-inserting a row for the same object in one
    # flush would trip the (integration, object) unique constraint, as inserts run before deletes.
    existing = {config.object_name: config for config in integration.objects}
    configs = []
    for name, object_spec in spec.objects.items():
        config = existing.get(name) or ObjectConfig(object_name=name)
        config.match = object_spec.match
        config.rules = [rule.to_rule().to_dict() for rule in object_spec.rules]
        configs.append(config)
    integration.objects = configs


def stored_rules(config: ObjectConfig) -> list[Rule]:
    return [Rule.from_dict(raw) for raw in config.rules]


def rule_text(rule: Rule) -> str:
    """A rule as the admin wrote it: ``Rating equals 'Hot'``, ``Email is_set``."""
    if rule.operator in VALUELESS_OPERATORS:
        return f"{rule.field} {rule.operator}"
    value = rule.value
    if isinstance(value, bool):
        shown = "true" if value else "false"
    elif isinstance(value, date):  # datetimes too
        shown = value.isoformat()
    else:
        shown = repr(value) if isinstance(value, str) else str(value)
    return f"{rule.field} {rule.operator} {shown}"
