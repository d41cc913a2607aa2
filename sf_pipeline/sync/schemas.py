"""The user row contract, checked by pandera on every change chunk before the diff writes it.

The contract is the ``users`` row the upsert writes: a well-formed external ID and Salesforce ID,
a version time, the deleted flag, ``data`` as a JSON object, and the top-level text fields in the
shapes the mapping defines (the email pattern, each field's length limit). pandera's polars
backend validates a chunk in a few milliseconds (polars reads the Arrow chunk without copying),
which keeps the contract on the hot path affordable: see the README's benchmark section.

A broken value is the caller's to drop (``violations`` names each one by row and column); a
broken key drops the record. A failure not tied to a row (a missing column, a wrong type) means
the sync built the chunk wrongly, and stops the run before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandera.polars as pa
import polars as pl
import pyarrow
from pandera.errors import SchemaErrors

from sf_pipeline.mapping import EMAIL_PATTERN, TOP_LEVEL_MAX_LENGTH

SALESFORCE_ID = r"^[a-zA-Z0-9]{18}$"
EXTERNAL_ID = r"^sf_[a-z][a-z0-9-]*_[A-Za-z][A-Za-z0-9_]*_[a-zA-Z0-9]{18}$"

# Columns without which the row is no user at all: a violation drops the record.
KEY_COLUMNS = ("external_id", "source_id", "source_modified_at", "deleted", "data")
# Top-level values: a violation drops the value, and the rest of the record is kept.
VALUE_COLUMNS = ("email", "phone", "timezone", "locale")


def _text(name: str, *checks: pa.Check) -> pa.Column:
    return pa.Column(str, [pa.Check.str_length(max_value=TOP_LEVEL_MAX_LENGTH[name]), *checks], nullable=True)


user_rows = pa.DataFrameSchema(
    {
        "external_id": pa.Column(str, pa.Check.str_matches(EXTERNAL_ID)),
        "source_id": pa.Column(str, pa.Check.str_matches(SALESFORCE_ID)),
        "source_modified_at": pa.Column(pl.Datetime("us", "UTC")),
        "deleted": pa.Column(bool),
        "data": pa.Column(str, pa.Check.str_startswith("{")),
        "email": _text("email", pa.Check.str_matches(EMAIL_PATTERN)),
        "phone": _text("phone"),
        "timezone": _text("timezone"),
        "locale": _text("locale"),
    },
    strict=False,
)


class ContractError(Exception):
    """The sync built a chunk the contract rejects as a whole (not a bad value in one row)."""


@dataclass(frozen=True)
class Violation:
    row: int
    column: str
    check: str
    value: str


def violations(table: pyarrow.Table) -> list[Violation]:
    """Every value of ``table`` that breaks the contract, by row position and column."""
    try:
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)  # a Table always gives a DataFrame
        user_rows.validate(frame, lazy=True)
    except SchemaErrors as errors:
        found: list[Violation] = []
        for case in errors.failure_cases.iter_rows(named=True):
            if case["index"] is None:
                what = case["column"] or case["failure_case"]  # a missing column is named as the failure
                raise ContractError(f"change chunk rejected: {what}: {case['check']}") from None
            value = case["failure_case"]
            found.append(Violation(int(case["index"]), str(case["column"]), str(case["check"]),
                                   "null" if value is None else str(value)))
        return found
    return []
