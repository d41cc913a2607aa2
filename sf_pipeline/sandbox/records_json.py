"""Records as Salesforce REST JSON text, built a page at a time, column by column.

A page is rendered by encoding each selected column's values for the page's rows in one pass
and filling a per-projection ``%``-template, which is far cheaper than building a dict per
record and calling ``json.dumps``. Output matches Salesforce: ``attributes`` first, then the
selected fields in SELECT order under their canonical names, parent relationships nested (or
``null`` when the lookup is empty), datetimes as ``2024-01-01T00:00:00.000+0000``, numbers and
booleans as JSON values, multipicklists as ``;``-joined text.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Getter = Callable[[int], Any]
Encoder = Callable[[list[Any]], list[str]]

_escape: Callable[[str], str] = json.encoder.encode_basestring  # type: ignore[attr-defined]


def encode_text(values: list[Any]) -> list[str]:
    esc = _escape
    return ["null" if v is None else esc(v) for v in values]


def encode_plain_text(values: list[Any]) -> list[str]:
    """Ids, dates and datetimes: never anything JSON would escape."""
    return ["null" if v is None else f'"{v}"' for v in values]


def encode_boolean(values: list[Any]) -> list[str]:
    return ["null" if v is None else ("true" if v else "false") for v in values]


def encode_int(values: list[Any]) -> list[str]:
    return ["null" if v is None else str(int(v)) for v in values]


def encode_float(values: list[Any]) -> list[str]:
    return ["null" if v is None else repr(float(v)) for v in values]


def encode_object(values: list[Any]) -> list[str]:
    """Compound fields (an address): a JSON object, or null."""
    return ["null" if v is None else json.dumps(v, ensure_ascii=False, separators=(",", ":")) for v in values]


def encoder_for(field_type: str) -> Encoder:
    if field_type in ("address", "location"):
        return encode_object
    if field_type in ("id", "reference", "date", "datetime"):
        return encode_plain_text
    if field_type == "boolean":
        return encode_boolean
    if field_type == "int":
        return encode_int
    if field_type in ("double", "currency", "percent"):
        return encode_float
    return encode_text


@dataclass(frozen=True)
class OutField:
    name: str
    get: Getter
    encode: Encoder


@dataclass(frozen=True)
class OutRelation:
    """A parent reached through a lookup: ``Lead`` in ``SELECT Lead.Email FROM CampaignMember``."""

    name: str
    sobject: str
    parent_row: Callable[[int], int | None]
    id_get: Getter
    items: tuple[OutField | OutRelation, ...]


@dataclass(frozen=True)
class Projection:
    sobject: str
    id_get: Getter
    items: tuple[OutField | OutRelation, ...]


def _render(
    sobject: str, id_get: Getter, items: Sequence[OutField | OutRelation], rows: Sequence[int], version: str
) -> list[str]:
    columns: list[list[str]] = []
    for item in items:
        if isinstance(item, OutField):
            columns.append(item.encode(list(map(item.get, rows))))
            continue
        parents = list(map(item.parent_row, rows))
        present = [p for p in parents if p is not None]
        rendered = iter(_render(item.sobject, item.id_get, item.items, present, version))
        columns.append(["null" if p is None else next(rendered) for p in parents])
    head = f'{{"attributes":{{"type":"{sobject}","url":"/services/data/v{version}/sobjects/{sobject}/%s"}}'
    template = head + "".join(f',"{item.name}":%s' for item in items) + "}"
    return [template % values for values in zip(map(id_get, rows), *columns, strict=True)]


def render_records(projection: Projection, rows: Sequence[int], version: str) -> str:
    """The JSON text of a ``records`` array (without brackets) for ``rows``."""
    return ",".join(_render(projection.sobject, projection.id_get, projection.items, rows, version))


def page_json(*, total: int, records: str, next_url: str | None) -> str:
    if next_url is None:
        return f'{{"totalSize":{total},"done":true,"records":[{records}]}}'
    return f'{{"totalSize":{total},"done":false,"nextRecordsUrl":"{next_url}","records":[{records}]}}'


def render_record_dicts(projection: Projection, rows: Sequence[int], version: str) -> list[dict[str, Any]]:
    """Decoded records, for in-process callers and tests."""
    decoded: list[dict[str, Any]] = json.loads("[" + render_records(projection, rows, version) + "]")
    return decoded
