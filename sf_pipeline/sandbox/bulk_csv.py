"""Bulk API 2.0 query results as CSV, formatted the way Salesforce formats them.

- The header row names the columns as the query selected them, parent fields with their
  relationship path (``Lead.Email``).
- Every value is enclosed in double quotes, with embedded quotes doubled; newlines stay inside
  the quoted value.
- A null is an empty, unquoted field (so a reader can tell it from an empty string).
- Booleans are ``true``/``false``; datetimes ``2024-01-02T03:04:05.000Z``; dates ``2024-01-02``;
  numbers plain (never in exponent form); multi-select picklists ``;``-joined.
- Text is UTF-8.

pyarrow's CSV writer does the quoting: its ``all_valid`` style quotes every non-null value and
leaves nulls empty and unquoted, which is exactly Salesforce's rule (the stdlib ``csv`` module
of Python 3.11 cannot leave a null unquoted while quoting everything else). It also takes the
job's delimiter and line ending.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pa_compute
import pyarrow.csv as pa_csv

ColumnDelimiter = Literal["COMMA", "TAB", "PIPE", "SEMICOLON", "CARET", "BACKQUOTE"]
LineEnding = Literal["LF", "CRLF"]

DELIMITERS: dict[str, str] = {
    "COMMA": ",",
    "TAB": "\t",
    "PIPE": "|",
    "SEMICOLON": ";",
    "CARET": "^",
    "BACKQUOTE": "`",
}
LINE_ENDINGS: dict[str, str] = {"LF": "\n", "CRLF": "\r\n"}

Formatter = Callable[[Any], str | None]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _boolean(value: Any) -> str | None:
    return None if value is None else ("true" if value else "false")


def _datetime(value: Any) -> str | None:
    # Stored as 2024-01-02T03:04:05.000+0000; Bulk CSV writes the same instant with a Z.
    if value is None:
        return None
    text = str(value)
    return text[:-5] + "Z" if text.endswith("+0000") else text


def _int(value: Any) -> str | None:
    return None if value is None else str(int(value))


def _float(value: Any) -> str | None:
    if value is None:
        return None
    text = repr(float(value))
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text


def formatter_for(field_type: str) -> Formatter:
    if field_type == "boolean":
        return _boolean
    if field_type == "datetime":
        return _datetime
    if field_type == "int":
        return _int
    if field_type in ("double", "currency", "percent"):
        return _float
    return _text


@dataclass(frozen=True)
class CsvColumn:
    header: str  # as selected: "Email", "Lead.Email"
    field_type: str


@dataclass(frozen=True)
class CsvFormat:
    delimiter: str = ","
    line_ending: str = "\n"

    @classmethod
    def of(cls, column_delimiter: str, line_ending: str) -> CsvFormat:
        return cls(DELIMITERS[column_delimiter], LINE_ENDINGS[line_ending])


def render_csv(columns: Sequence[CsvColumn], values: Sequence[Sequence[Any]], fmt: CsvFormat) -> bytes:
    """One results page: a header row, then one row per record (``values`` is column-major,
    in stored form)."""
    arrays = [
        _column_array(column.field_type, column_values) for column, column_values in zip(columns, values, strict=True)
    ]
    table = pa.Table.from_arrays(arrays, names=[c.header for c in columns])
    out = io.BytesIO()
    options = pa_csv.WriteOptions(
        include_header=True, delimiter=fmt.delimiter, quoting_style="all_valid", eol=fmt.line_ending
    )
    pa_csv.write_csv(table, out, options)
    return out.getvalue()


def _column_array(field_type: str, values: Sequence[Any]) -> pa.Array:
    """A column's values as Arrow strings, converted in Arrow where its text matches Salesforce's
    (text as stored, booleans true/false, integers, datetimes with their +0000 turned into Z)."""
    if field_type == "boolean":
        return pa.array(values, type=pa.bool_()).cast(pa.string())
    if field_type == "int":
        return pa.array(values, type=pa.int64()).cast(pa.string())
    if field_type == "datetime":
        return pa_compute.replace_substring_regex(
            pa.array(values, type=pa.string()), pattern=r"\+0000$", replacement="Z"
        )
    if field_type in ("double", "currency", "percent"):
        # Arrow prints 12500000.0 as "12500000"; Salesforce keeps the decimal point, as Python's repr does.
        return pa.array([_float(v) for v in values], type=pa.string())
    if field_type in ("address", "location"):
        return pa.array([_text(v) for v in values], type=pa.string())
    return pa.array(values, type=pa.string())
