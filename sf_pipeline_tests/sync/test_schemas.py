"""The user row contract: what pandera accepts, and how it names what it refuses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest

from sf_pipeline.mapping import is_valid_email
from sf_pipeline.sync.diff import CHANGE_SCHEMA
from sf_pipeline.sync.schemas import ContractError, Violation, violations

GOOD: dict[str, Any] = {
    "action": "create", "external_id": "sf_acme-eu_CampaignMember_00v000000000000ABC", "email": "a.b@example.co.uk",
    "phone": "+44 20 7946 0000", "timezone": "Europe/London", "locale": "en_GB", "data": '{"n":1}',
    "source_object": "CampaignMember", "source_id": "00v000000000000ABC",
    "source_modified_at": datetime(2026, 1, 1, tzinfo=UTC), "deleted": False, "content_hash": "0" * 32,
}


def table(*changes: dict[str, Any]) -> pa.Table:
    return pa.Table.from_pylist([{**GOOD, **c} for c in changes], CHANGE_SCHEMA)


def test_a_well_formed_chunk_passes_and_nulls_are_allowed_for_top_level_values() -> None:
    assert violations(table({}, {"email": None, "phone": None, "timezone": None, "locale": None})) == []


@pytest.mark.parametrize(
    ("column", "value", "check"),
    [
        ("email", "two@@example.com", "str_matches"),
        ("email", "x@" + "e" * 320 + ".com", "str_length"),
        ("phone", "1" * 65, "str_length"),
        ("timezone", "z" * 51, "str_length"),
        ("locale", "l" * 256, "str_length"),
        ("external_id", "sf_ACME_Lead_00Q000000000000001", "str_matches"),
        ("source_id", "00Q0001", "str_matches"),
        ("data", "[1, 2]", "str_startswith"),
        ("source_id", None, "not_nullable"),
    ],
)
def test_each_broken_value_is_named_by_row_and_column(column: str, value: Any, check: str) -> None:
    found = violations(table({}, {column: value}, {}))
    assert [(v.row, v.column) for v in found] == [(1, column)]
    assert found[0].check.startswith(check)
    assert found[0].value == ("null" if value is None else value)


def test_the_contract_email_shape_is_the_mapping_s() -> None:
    samples = ["a@b.co", "first.last@sub.example.org", "a@b", "a@.b.c", "a@b..c", "a b@c.d", "@b.c", "a@b.c.",
               "a@b.c\n", "a@@b.c", "ü@例え.jp"]
    contract = {s: not violations(table({"email": s})) for s in samples}
    assert contract == {s: is_valid_email(s) for s in samples}
    assert sum(contract.values()) == 3


def test_a_chunk_missing_a_column_is_a_contract_error_not_a_dropped_value() -> None:
    with pytest.raises(ContractError, match="phone"):
        violations(table({}).drop_columns(["phone"]))


def test_violations_are_plain_values() -> None:
    assert Violation(1, "email", "str_matches", "x") == Violation(1, "email", "str_matches", "x")
