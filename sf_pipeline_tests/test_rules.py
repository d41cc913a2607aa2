"""Sync rules compile to SOQL conditions whose values are typed literals that cannot change the
query's structure."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from sf_pipeline.errors import ConfigError
from sf_pipeline.rules import (
    OPERATORS,
    Rule,
    RuleProblem,
    RuleValue,
    check_rule,
    compile_condition,
    compile_where,
    soql_string,
)
from sf_pipeline_tests.describes import CAMPAIGN_MEMBER, CONTACT, LEAD

_UNESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "%": "%", "_": "_"}


def _read_literal(soql: str, start: int) -> tuple[str, int]:
    """Parse the SOQL string literal opening at ``start``, as Salesforce would; returns its text
    and the index after the closing quote."""
    assert soql[start] == "'"
    out, i = [], start + 1
    while soql[i] != "'":
        if soql[i] == "\\":
            code = soql[i + 1]
            if code == "u":
                out.append(chr(int(soql[i + 2 : i + 6], 16)))
                i += 6
                continue
            out.append(_UNESCAPES[code])  # any other escape would be a Salesforce error
            i += 2
            continue
        out.append(soql[i])
        i += 1
    return "".join(out), i + 1


def _structure(soql: str) -> tuple[str, list[str]]:
    """The condition with every string literal replaced by ``?``, and the literals' texts."""
    skeleton, literals, i = [], [], 0
    while i < len(soql):
        if soql[i] == "'":
            text, i = _read_literal(soql, i)
            literals.append(text)
            skeleton.append("?")
        else:
            skeleton.append(soql[i])
            i += 1
    return "".join(skeleton), literals


HOSTILE = [
    "' OR Id != null",
    "x' OR Name LIKE '%",
    "O'Brien",
    'say "hi"',
    "back\\slash",
    "trailing backslash\\",
    "\\' OR Id != null OR Name = \\'",
    "50% off_now",
    "line\nbreak\r\ttab",
    "bell\x07 null\x00 del\x7f",
    "Zoë 東京 🚀",
    ") OR (Id != null",
]


# --- one condition per operator --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "expected"),
    [
        ("equals", "(Rating = 'Hot')"),
        ("not_equals", "(Rating != 'Hot')"),
        ("contains", "(Rating LIKE '%Hot%')"),
        ("not_contains", "(NOT Rating LIKE '%Hot%')"),
        ("starts_with", "(Rating LIKE 'Hot%')"),
        ("ends_with", "(Rating LIKE '%Hot')"),
    ],
)
def test_text_operators_compile_to_soql(operator: str, expected: str) -> None:
    assert compile_condition(Rule("Rating", operator, "Hot"), LEAD) == expected


def test_is_set_and_is_not_set_compare_with_null() -> None:
    assert compile_condition(Rule("Email", "is_set"), LEAD) == "(Email != null)"
    assert compile_condition(Rule("Email", "is_not_set"), LEAD) == "(Email = null)"


def test_ordering_operators_on_numbers_and_dates() -> None:
    assert compile_condition(Rule("AnnualRevenue", "greater_than", 100000), LEAD) == "(AnnualRevenue > 100000)"
    assert compile_condition(Rule("ConvertedDate", "less_than", "2024-01-01"), LEAD) == "(ConvertedDate < 2024-01-01)"
    assert (
        compile_condition(Rule("CreatedDate", "greater_than", "2026-01-01T00:00:00Z"), LEAD)
        == "(CreatedDate > 2026-01-01T00:00:00Z)"
    )


def test_all_ten_operators_are_supported() -> None:
    assert OPERATORS == (
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


def test_field_names_are_written_as_salesforce_spells_them() -> None:
    assert compile_condition(Rule("annualrevenue", "greater_than", 5), LEAD) == "(AnnualRevenue > 5)"


# --- values cannot change the structure ----------------------------------------------------------


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("operator", ["equals", "not_equals"])
def test_hostile_values_stay_one_literal_in_comparisons(operator: str, value: str) -> None:
    condition = compile_condition(Rule("Company", operator, value), LEAD)
    symbol = "=" if operator == "equals" else "!="
    assert _structure(condition) == (f"(Company {symbol} ?)", [value])


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize(
    ("operator", "pattern"),
    [("contains", "%{}%"), ("not_contains", "%{}%"), ("starts_with", "{}%"), ("ends_with", "%{}")],
)
def test_hostile_values_stay_one_literal_in_like_patterns(operator: str, pattern: str, value: str) -> None:
    condition = compile_condition(Rule("Company", operator, value), LEAD)
    skeleton, literals = _structure(condition)
    assert skeleton == ("(NOT Company LIKE ?)" if operator == "not_contains" else "(Company LIKE ?)")
    # Inside the pattern, the value's own % and _ are escaped: they match only themselves.
    escaped = soql_string(value, like=True)[1:-1]
    assert condition.count(escaped) == 1
    assert literals == [pattern.format(value)]


def test_like_wildcards_in_a_value_are_escaped_but_not_in_plain_comparisons() -> None:
    assert compile_condition(Rule("Company", "contains", "50%_"), LEAD) == r"(Company LIKE '%50\%\_%')"
    assert compile_condition(Rule("Company", "equals", "50%_"), LEAD) == "(Company = '50%_')"


def test_string_escapes_follow_salesforce() -> None:
    assert soql_string("a'b\"c\\d\ne\rf\tg\bh\fi") == "'a\\'b\\\"c\\\\d\\ne\\rf\\tg\\bh\\fi'"
    assert soql_string("nul\x00") == "'nul\\u0000'"
    assert soql_string("Zoë 東京") == "'Zoë 東京'"


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_never_break_out_of_a_combined_where(value: str) -> None:
    rules = [Rule("Company", "equals", value), Rule("Rating", "contains", value), Rule("Email", "is_set")]
    where = compile_where(rules, "any", LEAD)
    assert where is not None
    assert _structure(where) == ("((Company = ?) OR (Rating LIKE ?) OR (Email != null))", [value, f"%{value}%"])


# --- typed values ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        (100000, "100000"),
        (1000.5, "1000.5"),
        ("2500.00", "2500"),
        (" -5 ", "-5"),
        (1e20, "100000000000000000000"),
        (0.0, "0"),
        (-0.0, "0"),
        ("1.5E3", "1500"),
    ],
)
def test_numbers_are_written_as_plain_numerals(value: RuleValue, literal: str) -> None:
    assert compile_condition(Rule("AnnualRevenue", "greater_than", value), LEAD) == f"(AnnualRevenue > {literal})"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "NaN", "abc", "1,000", True, "0x10", "1_000"])
def test_non_numbers_are_rejected_for_number_fields(value: RuleValue) -> None:
    with pytest.raises(RuleProblem) as raised:
        compile_condition(Rule("AnnualRevenue", "equals", value), LEAD)
    assert raised.value.part == "value"


def test_integer_fields_need_whole_numbers() -> None:
    assert compile_condition(Rule("NumberOfEmployees", "greater_than", 50), LEAD) == "(NumberOfEmployees > 50)"
    with pytest.raises(RuleProblem, match="whole number"):
        compile_condition(Rule("NumberOfEmployees", "greater_than", 50.5), LEAD)


@pytest.mark.parametrize(("value", "literal"), [(True, "true"), (False, "false"), ("TRUE", "true"), ("false", "false")])
def test_booleans_are_true_or_false(value: RuleValue, literal: str) -> None:
    assert compile_condition(Rule("HasOptedOutOfEmail", "equals", value), LEAD) == f"(HasOptedOutOfEmail = {literal})"


@pytest.mark.parametrize("value", ["yes", 1, "1"])
def test_booleans_reject_anything_else(value: RuleValue) -> None:
    with pytest.raises(RuleProblem, match="true or false"):
        compile_condition(Rule("HasOptedOutOfEmail", "equals", value), LEAD)


def test_dates_are_unquoted_iso_dates() -> None:
    assert compile_condition(Rule("ConvertedDate", "equals", date(2024, 1, 31)), LEAD) == "(ConvertedDate = 2024-01-31)"
    assert compile_condition(Rule("ConvertedDate", "equals", "2024-01-31"), LEAD) == "(ConvertedDate = 2024-01-31)"


@pytest.mark.parametrize(
    "value", ["2024-1-31", "31/01/2024", "2024-02-30", "20240131", datetime(2024, 1, 1, tzinfo=UTC)]
)
def test_malformed_dates_are_rejected(value: RuleValue) -> None:
    with pytest.raises(RuleProblem, match="date field"):
        compile_condition(Rule("ConvertedDate", "equals", value), LEAD)


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("2024-01-01T10:00:00+02:00", "2024-01-01T08:00:00Z"),
        ("2024-01-01T10:00:00.123456Z", "2024-01-01T10:00:00Z"),
        ("2024-01-01T10:00:00", "2024-01-01T10:00:00Z"),
        ("2024-01-01", "2024-01-01T00:00:00Z"),
        (date(2024, 1, 1), "2024-01-01T00:00:00Z"),
        (datetime(2024, 1, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5))), "2024-01-02T04:30:00Z"),
        (datetime(2024, 1, 1, 12), "2024-01-01T12:00:00Z"),
    ],
)
def test_datetimes_are_unquoted_utc_literals(value: RuleValue, literal: str) -> None:
    assert compile_condition(Rule("CreatedDate", "less_than", value), LEAD) == f"(CreatedDate < {literal})"


@pytest.mark.parametrize("value", ["yesterday", "2024-01-01 10:00", "LAST_N_DAYS:30", 20240101])
def test_malformed_datetimes_are_rejected(value: RuleValue) -> None:
    with pytest.raises(RuleProblem, match="datetime field"):
        compile_condition(Rule("CreatedDate", "less_than", value), LEAD)


def test_text_fields_take_text_and_unquoted_whole_numbers() -> None:
    assert compile_condition(Rule("Company", "equals", 42), LEAD) == "(Company = '42')"
    with pytest.raises(RuleProblem, match="quoted text"):
        compile_condition(Rule("Country", "equals", False), LEAD)  # YAML reads `NO` (Norway) as false


def test_id_and_lookup_fields_take_salesforce_ids() -> None:
    assert (
        compile_condition(Rule("CampaignId", "equals", "701000000000001AAA"), CAMPAIGN_MEMBER)
        == "(CampaignId = '701000000000001AAA')"
    )
    assert compile_condition(Rule("Id", "not_equals", "00Q000000000001"), LEAD) == "(Id != '00Q000000000001')"
    with pytest.raises(RuleProblem, match="Salesforce ID"):
        compile_condition(Rule("CampaignId", "equals", "' OR Id != null"), CAMPAIGN_MEMBER)


def test_multipicklist_contains_tests_for_a_selected_value() -> None:
    assert compile_condition(Rule("Interests__c", "contains", "Golf"), LEAD) == "(Interests__c INCLUDES ('Golf'))"
    assert compile_condition(Rule("Interests__c", "not_contains", "Golf"), LEAD) == "(Interests__c EXCLUDES ('Golf'))"
    with pytest.raises(RuleProblem, match="text fields"):
        compile_condition(Rule("Interests__c", "starts_with", "G"), LEAD)


# --- invalid rules --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "part", "reason"),
    [
        (Rule("Nope__c", "equals", "x"), "field", "field 'Nope__c' does not exist on Lead"),
        (Rule("Description", "contains", "x"), "field", "cannot be used in a filter"),
        (Rule("Rating", "gt", "x"), "operator", "unknown operator 'gt'; expected one of equals, not_equals"),
        (Rule("Rating", "greater_than", "A"), "operator", "greater_than works on number, date or datetime"),
        (Rule("AnnualRevenue", "contains", "1"), "operator", "contains works on text fields"),
        (Rule("Id", "starts_with", "00Q"), "operator", "starts_with works on text fields"),
        (Rule("Email", "is_set", "x"), "value", "is_set takes no value"),
        (Rule("Email", "equals"), "value", "equals needs a value"),
        (Rule("Email", "equals", ""), "value", "use is_not_set"),
        (Rule("Email", "contains", ""), "value", "non-empty value"),
    ],
)
def test_invalid_rules_say_which_part_is_wrong_and_why(rule: Rule, part: str, reason: str) -> None:
    with pytest.raises(RuleProblem) as raised:
        check_rule(rule, LEAD)
    assert raised.value.part == part
    assert reason in raised.value.reason


def test_rules_are_checked_against_their_own_object() -> None:
    check_rule(Rule("Birthdate", "less_than", "2000-01-01"), CONTACT)
    with pytest.raises(RuleProblem, match="does not exist on Lead"):
        check_rule(Rule("Birthdate", "less_than", "2000-01-01"), LEAD)


# --- where clauses -------------------------------------------------------------------------------


def test_no_rules_means_no_where_clause() -> None:
    assert compile_where([], "all", LEAD) is None


def test_one_rule_is_one_parenthesised_condition() -> None:
    assert compile_where([Rule("Rating", "equals", "Hot")], "any", LEAD) == "(Rating = 'Hot')"


def test_all_joins_with_and_and_any_with_or_in_one_group() -> None:
    rules = [Rule("Rating", "equals", "Hot"), Rule("Email", "not_contains", "test")]
    assert compile_where(rules, "all", LEAD) == "((Rating = 'Hot') AND (NOT Email LIKE '%test%'))"
    assert compile_where(rules, "any", LEAD) == "((Rating = 'Hot') OR (NOT Email LIKE '%test%'))"


def test_an_invalid_rule_in_a_where_is_a_config_error_naming_rule_and_reason() -> None:
    rules = [Rule("Rating", "equals", "Hot"), Rule("AnnualRevenue", "greater_than", "lots")]
    with pytest.raises(ConfigError) as raised:
        compile_where(rules, "all", LEAD)
    assert raised.value.key == "rules[1].value"
    assert "AnnualRevenue greater_than 'lots'" in str(raised.value)
    assert "expected a number" in str(raised.value)


def test_an_unknown_combinator_is_rejected() -> None:
    with pytest.raises(ConfigError, match="'all' or 'any'"):
        compile_where([Rule("Rating", "equals", "Hot")], "both", LEAD)


def test_rules_round_trip_through_their_stored_form() -> None:
    rules = [
        Rule("Rating", "equals", "Hot"),
        Rule("Email", "is_set"),
        Rule("ConvertedDate", "less_than", date(2024, 1, 1)),
        Rule("AnnualRevenue", "greater_than", 10.5),
    ]
    stored = [rule.to_dict() for rule in rules]
    assert stored[1] == {"field": "Email", "operator": "is_set"}
    assert stored[2]["value"] == "2024-01-01"
    again = [Rule.from_dict(raw) for raw in stored]
    assert compile_where(again, "all", LEAD) == compile_where(rules, "all", LEAD)
