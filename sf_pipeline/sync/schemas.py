"""pandera guards on the two shapes the sync trusts: extracted Salesforce records and user rows.

Extracted records that fail are dropped and counted (bad data never fails a sync); user rows that
fail mean the sync itself built something wrong, so that stops the run before anything is written.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

SALESFORCE_ID = r"^[a-zA-Z0-9]{18}$"

extracted_records = pa.DataFrameSchema(
    {
        "Id": pa.Column(str, pa.Check.str_matches(SALESFORCE_ID), nullable=False),
        "LastModifiedDate": pa.Column(str, nullable=False),
        "IsDeleted": pa.Column(bool, nullable=False, coerce=True),
    },
    strict=False,
)

user_rows = pa.DataFrameSchema(
    {
        "action": pa.Column(str, pa.Check.isin(["create", "update", "delete"])),
        "external_id": pa.Column(
            str, pa.Check.str_matches(r"^sf_[a-z][a-z0-9-]*_[A-Za-z]+_[a-zA-Z0-9]{18}$"), unique=True
        ),
        "email": pa.Column(str, pa.Check.str_length(max_value=320), nullable=True),
        "phone": pa.Column(str, pa.Check.str_length(max_value=64), nullable=True),
        "timezone": pa.Column(str, pa.Check.str_length(max_value=50), nullable=True),
        "locale": pa.Column(str, pa.Check.str_length(max_value=255), nullable=True),
        "data": pa.Column(str, nullable=False),
        "source_id": pa.Column(str, pa.Check.str_matches(SALESFORCE_ID)),
        "deleted": pa.Column(bool),
    },
    strict=False,
)


def invalid_extracted_rows(frame: pd.DataFrame) -> set[int]:
    """Row positions of extracted records that fail the schema."""
    try:
        extracted_records.validate(frame, lazy=True)
    except SchemaErrors as errors:
        index = errors.failure_cases["index"].dropna()
        return {int(i) for i in index}
    return set()


def check_user_rows(frame: pd.DataFrame) -> None:
    user_rows.validate(frame, lazy=True)
