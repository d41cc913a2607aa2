"""Python values (or their JSON/ISO text) to the stored form of a field's type.

Tests and the control API hand the org ordinary values: ``str``, ``bool``, ``int``, ``float``,
``date``, ``datetime`` (or ISO text for the last two), and a list of strings for a multipicklist.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sf_pipeline.sandbox import ids
from sf_pipeline.sandbox.clock import format_date, format_datetime, parse_datetime
from sf_pipeline.sandbox.schema import FieldDef


def coerce(f: FieldDef, value: Any) -> Any:
    if value is None:
        if f.type == "boolean":
            raise ValueError(f"{f.name} is a boolean and cannot be null")
        return None
    kind = f.type
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ValueError(f"{f.name} needs a boolean, got {value!r}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
            raise ValueError(f"{f.name} needs an integer, got {value!r}")
        return int(value)
    if kind in ("double", "currency", "percent"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{f.name} needs a number, got {value!r}")
        return float(value)
    if kind == "date":
        if isinstance(value, datetime):
            return format_date(value.date())
        if isinstance(value, date):
            return format_date(value)
        if isinstance(value, str):
            return format_date(date.fromisoformat(value[:10]))
        raise ValueError(f"{f.name} needs a date, got {value!r}")
    if kind == "datetime":
        if isinstance(value, datetime):
            return format_datetime(value)
        if isinstance(value, str):
            return format_datetime(parse_datetime(value))
        raise ValueError(f"{f.name} needs a datetime, got {value!r}")
    if kind == "multipicklist" and isinstance(value, list | tuple):
        value = ";".join(str(v) for v in value)
    if not isinstance(value, str):
        raise ValueError(f"{f.name} needs text, got {value!r}")
    if kind in ("id", "reference"):
        if value == "":
            return None
        normal = ids.normalize(value)
        if normal is None:
            raise ValueError(f"{f.name} needs a record Id, got {value!r}")
        return normal
    return value or None  # Salesforce keeps empty text as null
