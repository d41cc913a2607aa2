"""Turns a parsed SOQL query into a plan: a row predicate, sort keys and a projection.

Names are resolved once against the org's schema and the WHERE clause is compiled once into
nested closures over column getters, so running the plan costs one Python call per row and
condition, with no re-interpretation. Sorting is a sequence of stable sorts from the last key
to the first over rows that start in Id order, so ties always fall back to Id order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import compress
from operator import not_
from typing import Any, Protocol

from sf_pipeline.sandbox import ids
from sf_pipeline.sandbox.clock import format_date, format_datetime
from sf_pipeline.sandbox.date_literals import day_range
from sf_pipeline.sandbox.errors import (
    InvalidField,
    InvalidQueryFilterOperator,
    InvalidType,
    MalformedQuery,
    SandboxError,
)
from sf_pipeline.sandbox.records_json import Getter, OutField, OutRelation, Projection, encoder_for
from sf_pipeline.sandbox.schema import COMPOUND_TYPES, NUMBER_TYPES, FieldDef, ObjectSchema
from sf_pipeline.sandbox.soql import (
    Comparison,
    Condition,
    FieldPath,
    Junction,
    Negation,
    Query,
    Value,
    decode_string,
    error,
    like_segments,
)
from sf_pipeline.sandbox.tables import Table

Predicate = Callable[[int], bool]

MAX_OFFSET = 2000


class Catalog(Protocol):
    def schema(self, sobject: str) -> ObjectSchema | None: ...

    def table(self, sobject: str) -> Table: ...


@dataclass(frozen=True)
class SortKey:
    get: Getter
    descending: bool
    nulls_first: bool
    fold_case: bool


@dataclass(frozen=True)
class FlatColumn:
    """One selected field as a flat column (Bulk CSV): ``Lead.Email`` with a getter by root row."""

    header: str
    field: FieldDef
    get: Getter


@dataclass(frozen=True)
class Plan:
    sobject: str
    table: Table
    predicate: Predicate | None
    order: tuple[SortKey, ...]
    limit: int | None
    offset: int
    projection: Projection | None  # None for SELECT COUNT()
    columns: tuple[FlatColumn, ...] = ()  # the selected fields in SELECT order

    def candidates(self, *, include_deleted: bool) -> Sequence[int]:
        size = self.table.size
        if include_deleted:
            purged = self.table.purged  # hard-deleted rows are gone even for queryAll
            return [r for r in range(size) if r not in purged] if purged else range(size)
        deleted = self.table.columns["IsDeleted"]
        return list(compress(range(size), map(not_, deleted[:size])))

    def rows(self, *, include_deleted: bool) -> list[int]:
        rows = self.candidates(include_deleted=include_deleted)
        found = list(filter(self.predicate, rows)) if self.predicate else list(rows)
        for key in reversed(self.order):
            found = _sorted(found, key)
        end = None if self.limit is None else self.offset + self.limit
        return found[self.offset : end] if self.offset or end is not None else found

    def count(self, *, include_deleted: bool) -> int:
        rows = self.candidates(include_deleted=include_deleted)
        total = sum(1 for _ in filter(self.predicate, rows)) if self.predicate else len(rows)
        total = max(0, total - self.offset)
        return total if self.limit is None else min(total, self.limit)


def _sorted(rows: list[int], key: SortKey) -> list[int]:
    get = key.get
    values = list(map(get, rows))
    if None in values:
        nulls = [r for r, v in zip(rows, values, strict=True) if v is None]
        present = [r for r, v in zip(rows, values, strict=True) if v is not None]
    else:
        nulls, present = [], rows
    if key.fold_case:
        present = sorted(present, key=lambda r: get(r).lower(), reverse=key.descending)
    else:
        present = sorted(present, key=get, reverse=key.descending)
    return nulls + present if key.nulls_first else present + nulls


class _LazyRelation:
    """A relationship group whose item list is still being filled while SELECT is resolved."""

    def __init__(
        self, name: str, sobject: str, items: list[OutField | _LazyRelation], ref_get: Getter, target: Table
    ) -> None:
        self.name, self.sobject, self.items = name, sobject, items
        self.ref_get, self.target = ref_get, target


@dataclass(frozen=True)
class _Resolved:
    field: FieldDef
    get: Getter
    chain: tuple[tuple[FieldDef, ObjectSchema], ...]  # lookups walked to reach the field


class _Compiler:
    def __init__(self, query: Query, catalog: Catalog, today: date) -> None:
        self.q = query
        self.catalog = catalog
        self.today = today
        root = catalog.schema(query.sobject)
        if root is None:
            raise error(
                InvalidType,
                query.text,
                query.sobject_pos,
                f"sObject type '{query.sobject}' is not supported. If you are attempting to use a "
                "custom object, be sure to append the '__c' after the entity name. Please reference "
                "your WSDL or the describe call for the appropriate names.",
            )
        self.root = root

    def fail(self, cls: type[SandboxError], pos: int, detail: str) -> SandboxError:
        return error(cls, self.q.text, pos, detail)

    def resolve(self, path: FieldPath) -> _Resolved:
        parts = list(path.parts)
        schema = self.root
        if len(parts) > 1 and parts[0].lower() == schema.name.lower() and schema.relationship(parts[0]) is None:
            parts = parts[1:]  # "SELECT Lead.Email FROM Lead" names the queried object itself
        chain: list[tuple[FieldDef, ObjectSchema]] = []
        for part in parts[:-1]:
            ref = schema.relationship(part)
            target = self.catalog.schema(ref.reference_to[0]) if ref else None
            if ref is None or target is None:
                raise self.fail(
                    InvalidField,
                    path.pos,
                    f"Didn't understand relationship '{part}' in field path. If you are attempting "
                    "to use a custom relationship, be sure to append the '__r' after the custom "
                    "relationship name. Please reference your WSDL or the describe call for the "
                    "appropriate names.",
                )
            chain.append((ref, target))
            schema = target
        found = schema.field(parts[-1])
        if found is None:
            raise self.fail(
                InvalidField,
                path.pos,
                f"No such column '{parts[-1]}' on entity '{schema.name}'. If you are attempting "
                "to use a custom field, be sure to append the '__c' after the custom field name. "
                "Please reference your WSDL or the describe call for the appropriate names.",
            )
        get: Getter = self.catalog.table(schema.name).getter(found.name)
        owner = self.root
        hops = []
        for ref, target in chain:
            hops.append((self.catalog.table(owner.name).getter(ref.name), self.catalog.table(target.name).row_of))
            owner = target
        for ref_get, row_of in reversed(hops):
            get = _through(ref_get, row_of, get)
        return _Resolved(found, get, tuple(chain))

    # -- SELECT -------------------------------------------------------------------------------------

    def projection(self, paths: tuple[FieldPath, ...]) -> Projection:
        seen: set[tuple[str, ...]] = set()
        root_items: list[OutField | _LazyRelation] = []
        groups: dict[tuple[str, ...], list[OutField | _LazyRelation]] = {(): root_items}
        for path in paths:
            resolved = self.resolve(path)
            key = (*tuple(ref.relationship_name or "" for ref, _ in resolved.chain), resolved.field.name)
            if key in seen:
                raise self.fail(MalformedQuery, path.pos, f"duplicate field selected: {path.text}")
            seen.add(key)
            prefix: tuple[str, ...] = ()
            owner = self.root
            for ref, target in resolved.chain:
                name = ref.relationship_name or ref.name
                if (*prefix, name) not in groups:
                    items: list[OutField | _LazyRelation] = []
                    groups[(*prefix, name)] = items
                    groups[prefix].append(
                        _LazyRelation(
                            name,
                            target.name,
                            items,
                            self.catalog.table(owner.name).getter(ref.name),
                            self.catalog.table(target.name),
                        )
                    )
                prefix = (*prefix, name)
                owner = target
            table = self.catalog.table(owner.name)
            groups[prefix].append(
                OutField(resolved.field.name, table.getter(resolved.field.name), encoder_for(resolved.field.type))
            )
        return Projection(
            self.root.name,
            self.catalog.table(self.root.name).ids.__getitem__,
            tuple(_freeze(item) for item in root_items),
        )

    def flat_columns(self, paths: tuple[FieldPath, ...]) -> tuple[FlatColumn, ...]:
        columns = []
        for path in paths:
            resolved = self.resolve(path)
            names = [ref.relationship_name or ref.name for ref, _ in resolved.chain]
            columns.append(FlatColumn(".".join([*names, resolved.field.name]), resolved.field, resolved.get))
        return tuple(columns)

    # -- ORDER BY -----------------------------------------------------------------------------------

    def order(self) -> tuple[SortKey, ...]:
        keys = []
        for item in self.q.order_by:
            resolved = self.resolve(item.path)
            if not resolved.field.sortable:
                raise self.fail(
                    InvalidField,
                    item.path.pos,
                    f"field '{resolved.field.name}' can not be sorted in a query call",
                )
            fold = resolved.field.is_text and resolved.field.type not in ("id", "reference")
            keys.append(SortKey(resolved.get, item.descending, item.nulls_first, fold))
        # Rows start in Id order and every sort is stable: a trailing "Id ASC" changes nothing.
        while keys and keys[-1].get == self.catalog.table(self.root.name).ids.__getitem__ and not keys[-1].descending:
            keys.pop()
        return tuple(keys)

    # -- WHERE --------------------------------------------------------------------------------------

    def condition(self, cond: Condition) -> Predicate:
        if isinstance(cond, Junction):
            preds = [self.condition(item) for item in cond.items]
            return _all(preds) if cond.op == "AND" else _any(preds)
        if isinstance(cond, Negation):
            inner = self.condition(cond.item)
            return lambda i: not inner(i)
        return self.comparison(cond)

    def comparison(self, cmp: Comparison) -> Predicate:
        resolved = self.resolve(cmp.path)
        f = resolved.field
        if not f.filterable or f.type in COMPOUND_TYPES:
            # A compound field is filterable only through DISTANCE(), which the sandbox lacks.
            raise self.fail(InvalidField, cmp.path.pos, f"field '{f.name}' can not be filtered in query call")
        kind = _kind(f)
        allowed = _OPERATORS[kind]
        if cmp.op not in allowed:
            if cmp.op == "LIKE":
                detail = (
                    "invalid operator on multipicklist field"
                    if kind == "multi"
                    else "LIKE operator only valid on string field"
                )
            else:
                detail = f"invalid operator on {f.type} field"
            raise self.fail(InvalidQueryFilterOperator, cmp.pos, detail)
        get = resolved.get
        if cmp.op in ("IN", "NOT IN"):
            return self.membership(cmp, f, kind, get)
        if cmp.op in ("INCLUDES", "EXCLUDES"):
            wanted = [self.literal(v, f, kind) for v in cmp.values]
            if any(w is None for w in wanted):
                raise self.fail(MalformedQuery, cmp.pos, "null is not valid in INCLUDES or EXCLUDES")
            return _includes(get, wanted, cmp.op == "EXCLUDES")
        value = cmp.values[0]
        if cmp.op == "LIKE":
            if value.kind != "string":
                raise self.fail(InvalidField, value.pos, _type_message(f, kind))
            return _like(get, like_segments(value, self.q.text))
        if value.kind == "date_literal":
            if kind not in ("date", "datetime"):
                raise self.fail(InvalidField, value.pos, _type_message(f, kind))
            return self.date_range(get, kind, cmp.op, value)
        literal = self.literal(value, f, kind)
        if literal is None:
            if cmp.op == "=":
                return lambda i: get(i) is None
            if cmp.op == "!=":
                return lambda i: get(i) is not None
            raise self.fail(MalformedQuery, value.pos, f"invalid operator for null: {cmp.op}")
        if kind == "datetime" and not literal[1]:
            return _inexact_datetime(get, cmp.op, literal[0])
        if kind == "datetime":
            literal = literal[0]
        return _compare(get, cmp.op, literal, fold=kind == "text", multi=kind == "multi")

    def membership(self, cmp: Comparison, f: FieldDef, kind: str, get: Getter) -> Predicate:
        values = []
        for v in cmp.values:
            if v.kind == "date_literal":
                raise self.fail(MalformedQuery, v.pos, "date literals are not supported in IN")
            lit = self.literal(v, f, kind)
            values.append(lit[0] if kind == "datetime" and lit is not None else lit)
        with_null = None in values
        wanted = frozenset(v for v in values if v is not None)
        negate = cmp.op == "NOT IN"
        fold = kind == "text"

        def member(i: int) -> bool:
            v = get(i)
            if v is None:
                return with_null != negate
            return ((v.lower() if fold else v) in wanted) != negate

        return member

    def literal(self, value: Value, f: FieldDef, kind: str) -> Any:
        """The literal in stored form for comparing with ``f``; None for null."""
        if value.kind == "null":
            return None
        expected = _LITERAL_KINDS[kind]
        if value.kind != expected:
            raise self.fail(InvalidField, value.pos, _type_message(f, kind))
        if kind == "text":
            text = decode_string(value, self.q.text)
            return text.lower() if text else None  # Salesforce stores empty text as null
        if kind == "multi":
            text = decode_string(value, self.q.text)
            return frozenset(p.strip().lower() for p in text.split(";") if p.strip()) or None
        if kind == "id":
            text = decode_string(value, self.q.text)
            if not text:
                return None
            normal = ids.normalize(text)
            if normal is None:
                raise self.fail(InvalidQueryFilterOperator, value.pos, f"invalid ID field: {text}")
            return normal
        if kind == "number":
            return value.number
        if kind == "boolean":
            return value.flag
        if kind == "date":
            assert value.day is not None
            return format_date(value.day)
        assert value.instant is not None
        return (value.instant.text, value.instant.exact)

    def date_range(self, get: Getter, kind: str, op: str, value: Value) -> Predicate:
        start_day, end_day = day_range(value.raw, value.n, self.today)
        if kind == "date":
            start, end = format_date(start_day), format_date(end_day)
        else:
            start = format_datetime(datetime(start_day.year, start_day.month, start_day.day, tzinfo=UTC))
            end = format_datetime(datetime(end_day.year, end_day.month, end_day.day, tzinfo=UTC))
        match op:
            case "=":
                return lambda i: (v := get(i)) is not None and start <= v < end
            case "!=":
                return lambda i: (v := get(i)) is None or not start <= v < end
            case "<":
                return lambda i: (v := get(i)) is not None and v < start
            case "<=":
                return lambda i: (v := get(i)) is not None and v < end
            case ">":
                return lambda i: (v := get(i)) is not None and v >= end
            case _:
                return lambda i: (v := get(i)) is not None and v >= start


def _freeze(item: OutField | _LazyRelation) -> OutField | OutRelation:
    if not isinstance(item, _LazyRelation):
        return item
    ref_get = item.ref_get
    row_of = item.target.row_of

    def parent_row(i: int) -> int | None:
        ref = ref_get(i)
        return None if ref is None else row_of(ref)

    return OutRelation(
        item.name,
        item.sobject,
        parent_row,
        item.target.ids.__getitem__,
        tuple(_freeze(x) for x in item.items),
    )


def _through(ref_get: Getter, row_of: Callable[[str], int | None], inner: Getter) -> Getter:
    def get(i: int) -> Any:
        ref = ref_get(i)
        if ref is None:
            return None
        row = row_of(ref)
        return None if row is None else inner(row)

    return get


def _kind(f: FieldDef) -> str:
    if f.type in ("id", "reference"):
        return "id"
    if f.type == "multipicklist":
        return "multi"
    if f.is_text:
        return "text"
    if f.type in NUMBER_TYPES:
        return "number"
    return f.type  # boolean, date, datetime


_RANGE = ("=", "!=", "<", "<=", ">", ">=", "IN", "NOT IN")
_OPERATORS = {
    "text": (*_RANGE, "LIKE"),
    "id": _RANGE,
    "multi": ("=", "!=", "INCLUDES", "EXCLUDES"),
    "number": _RANGE,
    "date": _RANGE,
    "datetime": _RANGE,
    "boolean": ("=", "!="),
}
_LITERAL_KINDS = {
    "text": "string",
    "id": "string",
    "multi": "string",
    "number": "number",
    "boolean": "boolean",
    "date": "date",
    "datetime": "datetime",
}
_TYPE_NAMES = {
    "text": "string",
    "id": "id",
    "multi": "string",
    "number": "double",
    "boolean": "boolean",
    "date": "date",
    "datetime": "dateTime",
}


def _type_message(f: FieldDef, kind: str) -> str:
    quoted = kind in ("text", "id", "multi")
    return (
        f"value of filter criterion for field '{f.name}' must be of type {_TYPE_NAMES[kind]} and should "
        f"{'' if quoted else 'not '}be enclosed in quotes"
    )


def _all(preds: list[Predicate]) -> Predicate:
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        first, second = preds
        return lambda i: first(i) and second(i)
    chain = tuple(preds)
    return lambda i: all(p(i) for p in chain)


def _any(preds: list[Predicate]) -> Predicate:
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        first, second = preds
        return lambda i: first(i) or second(i)
    chain = tuple(preds)
    return lambda i: any(p(i) for p in chain)


def _like(get: Getter, segments: list[tuple[str, int]]) -> Predicate:
    """LIKE without backtracking: pieces between ``%`` have fixed lengths, so the first must match
    at the start, the last at the end, and each middle one at its leftmost place after the last."""
    flags = re.IGNORECASE | re.DOTALL
    compiled = [(re.compile(pattern, flags), length) for pattern, length in segments]
    if len(compiled) == 1:
        whole = compiled[0][0].fullmatch
        return lambda i: (v := get(i)) is not None and whole(v) is not None
    (head, head_len), middle, (tail, tail_len) = compiled[0], compiled[1:-1], compiled[-1]

    def matches(i: int) -> bool:
        v = get(i)
        if v is None or head.match(v) is None:
            return False
        pos = head_len
        for piece, _ in middle:
            found = piece.search(v, pos)
            if found is None:
                return False
            pos = found.end()
        start = len(v) - tail_len
        return start >= pos and tail.fullmatch(v, start) is not None

    return matches


def _includes(get: Getter, wanted: list[frozenset[str]], exclude: bool) -> Predicate:
    def test(i: int) -> bool:
        v = get(i)
        if v is None:
            return exclude
        have = {p.strip().lower() for p in v.split(";")}
        return any(w <= have for w in wanted) != exclude

    return test


def _compare(get: Getter, op: str, lit: Any, *, fold: bool, multi: bool) -> Predicate:
    if multi:

        def as_set(v: str) -> frozenset[str]:
            return frozenset(p.strip().lower() for p in v.split(";"))

        if op == "=":
            return lambda i: (v := get(i)) is not None and as_set(v) == lit
        return lambda i: (v := get(i)) is None or as_set(v) != lit
    if fold:
        match op:
            case "=":
                return lambda i: (v := get(i)) is not None and v.lower() == lit
            # In SOQL a null value is "not equal" to any value (unlike SQL's unknown).
            case "!=":
                return lambda i: (v := get(i)) is None or v.lower() != lit
            case "<":
                return lambda i: (v := get(i)) is not None and v.lower() < lit
            case "<=":
                return lambda i: (v := get(i)) is not None and v.lower() <= lit
            case ">":
                return lambda i: (v := get(i)) is not None and v.lower() > lit
            case _:
                return lambda i: (v := get(i)) is not None and v.lower() >= lit
    match op:
        case "=":
            return lambda i: get(i) == lit
        case "!=":
            return lambda i: get(i) != lit
        case "<":
            return lambda i: (v := get(i)) is not None and v < lit
        case "<=":
            return lambda i: (v := get(i)) is not None and v <= lit
        case ">":
            return lambda i: (v := get(i)) is not None and v > lit
        case _:
            return lambda i: (v := get(i)) is not None and v >= lit


def _inexact_datetime(get: Getter, op: str, truncated: str) -> Predicate:
    """A datetime literal finer than a millisecond, against millisecond values."""
    match op:
        case "=":
            return lambda i: False
        case "!=":
            return lambda i: True
        case ">" | ">=":
            return lambda i: (v := get(i)) is not None and v > truncated
        case _:
            return lambda i: (v := get(i)) is not None and v <= truncated


def compile_query(query: Query, catalog: Catalog, *, today: date) -> Plan:
    c = _Compiler(query, catalog, today)
    projection = c.projection(query.fields) if query.fields is not None else None
    columns = c.flat_columns(query.fields) if query.fields is not None else ()
    predicate = c.condition(query.where) if query.where is not None else None
    order = c.order()
    offset = query.offset or 0
    if offset > MAX_OFFSET:
        raise MalformedQuery(f"Maximum SOQL offset allowed is {MAX_OFFSET}")
    return Plan(c.root.name, catalog.table(c.root.name), predicate, order, query.limit, offset, projection, columns)
