"""Integration files: their shape, the errors they give (key path and reason), and the checks
against Salesforce's describe. Applying them to a database is in storage/test_apply_spec.py."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from sf_pipeline.errors import ConfigError
from sf_pipeline.integration_spec import (
    IntegrationSpec,
    SpecError,
    check_against_describe,
    load_spec_file,
    parse_spec,
    rule_text,
)
from sf_pipeline.mapping import MappingSpec
from sf_pipeline.rules import Rule
from sf_pipeline_tests.describes import describe

EXAMPLE = """\
name: acme              # the id
project_id: 42
login_url: https://login.salesforce.com
frequency_minutes: 60
objects:
  Lead:
    match: all
    rules:
      - {field: Rating, operator: equals, value: Hot}
      - {field: Email, operator: is_set}
  Contact: {}
mappings:
  - {field: Email, property: email}
  - {field: FirstName, property: first_name}
  - {field: Industry, property: industry}
  - {field: HasOptedOutOfEmail, property: unsubscribed, type: boolean}
  - {field: Lead.Email, property: email, object: CampaignMember}
"""


def _with(**changes: str) -> str:
    """The example with top-level keys replaced (a value of "" drops the key)."""
    lines = EXAMPLE.splitlines()
    out, skipping = [], False
    for line in lines:
        key = line.split(":", 1)[0]
        if not line.startswith(" ") and key in changes:
            skipping = True
            if changes[key]:
                out.append(f"{key}: {changes[key]}" if "\n" not in changes[key] else f"{key}:{changes[key]}")
            continue
        if skipping and line.startswith(" "):
            continue
        skipping = False
        out.append(line)
    return "\n".join(out) + "\n"


def _problems(text: str) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as raised:
        parse_spec(text)
    return raised.value.problems


def _problem(text: str) -> tuple[str, str]:
    problems = _problems(text)
    assert len(problems) == 1, problems
    return problems[0]


# --- the documented shape ---------------------------------------------------------------------------


def test_the_documented_example_parses() -> None:
    spec = parse_spec(EXAMPLE.replace("  Contact: {}", "  Contact: {}\n  CampaignMember: {}"))
    assert (spec.name, spec.project_id, spec.login_url, spec.frequency_minutes) == (
        "acme",
        42,
        "https://login.salesforce.com",
        60,
    )
    assert list(spec.objects) == ["Lead", "Contact", "CampaignMember"]
    assert spec.objects["Lead"].match == "all"
    assert [r.to_rule() for r in spec.objects["Lead"].rules] == [
        Rule("Rating", "equals", "Hot"),
        Rule("Email", "is_set"),
    ]
    assert spec.objects["Contact"].rules == []
    assert spec.mappings is not None
    assert [m.to_mapping() for m in spec.mappings][3:] == [
        MappingSpec("HasOptedOutOfEmail", "unsubscribed", None, "boolean"),
        MappingSpec("Lead.Email", "email", "CampaignMember", None),
    ]


def test_defaults_frequency_sixty_match_all_and_no_mappings() -> None:
    spec = parse_spec(_with(frequency_minutes="", mappings="", objects="\n  Lead:\n    rules: []\n  Contact:"))
    assert spec.frequency_minutes == 60
    assert spec.objects["Lead"].match == "all"
    assert spec.objects["Contact"].rules == []
    assert spec.mappings is None


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("https://login.salesforce.com/", "https://login.salesforce.com"),
        ("https://test.salesforce.com", "https://test.salesforce.com"),
        ("https://Acme.My.Salesforce.com", "https://acme.my.salesforce.com"),
        ("https://acme--uat.sandbox.my.salesforce.com", "https://acme--uat.sandbox.my.salesforce.com"),
        ("https://127.0.0.1:8443", "https://127.0.0.1:8443"),
        ("https://localhost:9443", "https://localhost:9443"),
    ],
)
def test_login_urls_are_salesforce_hosts_over_https(given: str, stored: str) -> None:
    assert parse_spec(_with(login_url=given)).login_url == stored


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("http://login.salesforce.com", "must be an https:// URL"),
        ("https://login.salesforce.com.evil.io", "not a Salesforce login URL"),
        ("https://my.salesforce.com", "not a Salesforce login URL"),
        ("https://login.salesforce.com/services/oauth2", "just the login host"),
        ("https://user:pw@login.salesforce.com", "just the login host"),
        ("https://127.0.0.1", "needs its port"),
        ("https://login.salesforce.com:8443", "take no port"),
    ],
)
def test_other_login_urls_are_rejected(given: str, reason: str) -> None:
    key, message = _problem(_with(login_url=given))
    assert key == "login_url" and reason in message


# --- errors name the key path and the reason -------------------------------------------------------


def test_an_unknown_operator_names_its_rule_and_the_expected_operators() -> None:
    text = EXAMPLE.replace("{field: Email, operator: is_set}", "{field: Email, operator: gt, value: 1}")
    with pytest.raises(SpecError) as raised:
        parse_spec(text, source="acme.yaml")
    assert str(raised.value) == (
        "acme.yaml: objects.Lead.rules[1].operator: unknown operator 'gt'; expected one of equals, not_equals, "
        "contains, not_contains, starts_with, ends_with, greater_than, less_than, is_set, is_not_set"
    )
    assert isinstance(raised.value, ConfigError) and raised.value.key == "objects.Lead.rules[1].operator"


@pytest.mark.parametrize(
    ("old", "new", "key", "reason"),
    [
        (
            "{field: Email, operator: is_set}",
            "{field: Email, operator: is_set, value: x}",
            "objects.Lead.rules[1].value",
            "is_set takes no value",
        ),
        (
            "{field: Rating, operator: equals, value: Hot}",
            "{field: Rating, operator: equals}",
            "objects.Lead.rules[0].value",
            "equals needs a value",
        ),
        (
            "{field: Rating, operator: equals, value: Hot}",
            "{field: Rating, operator: equals, value: [a, b]}",
            "objects.Lead.rules[0].value",
            "single value",
        ),
        (
            "{field: Rating, operator: equals, value: Hot}",
            "{field: Lead.Rating, operator: equals, value: Hot}",
            "objects.Lead.rules[0].field",
            "not a Salesforce field name",
        ),
        (
            "{field: Rating, operator: equals, value: Hot}",
            "{field: Rating, operator: equals, value: Hot, note: x}",
            "objects.Lead.rules[0].note",
            "unknown key; expected one of field, operator, value",
        ),
        (
            "{field: Rating, operator: equals, value: Hot}",
            "{operator: equals, value: Hot}",
            "objects.Lead.rules[0].field",
            "required",
        ),
        ("match: all", "match: both", "objects.Lead.match", "unknown match 'both'"),
        ("  Contact: {}", "  Account: {}", "objects.Account", "unknown object 'Account'; expected one of Lead"),
        ("  Contact: {}", "  Contact: {rules: {field: Email}}", "objects.Contact.rules", "expected a list"),
        (
            "{field: Industry, property: industry}",
            "{field: Industry, property: industry, type: integer}",
            "mappings[2].type",
            "unknown value 'integer'; expected one of 'string', 'number'",
        ),
        (
            "{field: Industry, property: industry}",
            "{field: Industry, property: 2nd-industry}",
            "mappings[2].property",
            "not a property name",
        ),
        (
            "{field: Industry, property: industry}",
            "{field: Lead.Owner.Name, property: industry}",
            "mappings[2].field",
            "not a Salesforce field",
        ),
        (
            "{field: Industry, property: industry}",
            "{field: Industry, property: industry, object: Account}",
            "mappings[2].object",
            "unknown value 'Account'",
        ),
        (
            "{field: Industry, property: industry}",
            "{field: Industry, property: phone, type: number}",
            "mappings[2].type",
            "top-level text field",
        ),
        (
            "{field: Industry, property: industry}",
            "{field: FirstName, property: first_name}",
            "mappings[2]",
            "repeats mappings[1]",
        ),
        (
            "{field: Industry, property: industry}",
            "{field: Industry, property: industry, propery: x}",
            "mappings[2].propery",
            "unknown key; expected one of field, property, type, object",
        ),
    ],
)
def test_problems_inside_the_file_name_their_key_path(old: str, new: str, key: str, reason: str) -> None:
    assert old in EXAMPLE
    problems = _problems(EXAMPLE.replace(old, new, 1))
    assert [k for k, _ in problems] == [key]
    assert reason in problems[0][1], problems


@pytest.mark.parametrize(
    ("changes", "key", "reason"),
    [
        ({"name": "Acme"}, "name", "lower-case letters, digits and '-'"),
        ({"name": "-acme"}, "name", "starting with a letter"),
        ({"name": "a" * 64}, "name", "1 to 63 characters"),
        ({"name": "42"}, "name", "expected text, got 42"),
        ({"name": ""}, "name", "required"),
        ({"project_id": "'42'"}, "project_id", "expected a whole number, got '42'"),
        ({"project_id": "0"}, "project_id", "positive whole number"),
        ({"frequency_minutes": "4"}, "frequency_minutes", "between 5 and 10080 minutes, got 4"),
        ({"frequency_minutes": "7.5"}, "frequency_minutes", "expected a whole number, got 7.5"),
        ({"frequency_minutes": "true"}, "frequency_minutes", "expected a whole number, got True"),
        ({"objects": "{}"}, "objects", "choose at least one object: Lead, Contact, CampaignMember"),
        ({"objects": "[Lead]"}, "objects", "expected a mapping"),
        ({"mappings": "[]"}, "mappings", "list at least one mapping, or leave the key out"),
        ({"extra": "1"}, "extra", "unknown key; expected one of name, project_id, login_url"),
    ],
)
def test_problems_with_top_level_keys_name_the_key(changes: dict[str, str], key: str, reason: str) -> None:
    text = _with(**changes) if "extra" not in changes else EXAMPLE + "extra: 1\n"
    found_key, message = _problem(text)
    assert found_key == key and reason in message


def test_every_problem_is_reported_at_once() -> None:
    text = _with(name="Bad Name", frequency_minutes="1").replace("operator: is_set", "operator: exists")
    with pytest.raises(SpecError) as raised:
        parse_spec(text)
    assert [key for key, _ in raised.value.problems] == ["name", "frequency_minutes", "objects.Lead.rules[1].operator"]
    assert str(raised.value).startswith("<integration file>: 3 problems:\n  name: ")


def test_yaml_dates_and_numbers_are_kept_as_values() -> None:
    text = EXAMPLE.replace("value: Hot", "value: 2024-01-01").replace(
        "{field: Email, operator: is_set}", "{field: AnnualRevenue, operator: greater_than, value: 1000000}"
    )
    rules = [r.to_rule() for r in parse_spec(text).objects["Lead"].rules]
    assert rules[0].value == date(2024, 1, 1) and rules[1].value == 1000000


# --- YAML itself -----------------------------------------------------------------------------------


def test_yaml_syntax_errors_name_the_line() -> None:
    with pytest.raises(ConfigError, match=r"^acme.yaml: line 3, column 10: invalid YAML: mapping values"):
        parse_spec("name: acme\nproject_id: 42\n  objects: 1\n", source="acme.yaml")
    with pytest.raises(ConfigError, match=r"^acme.yaml: line 5, column 10: invalid YAML: expected ','"):
        parse_spec("name: acme\nproject_id: 42\nobjects:\n  Lead: {match: all\n  Contact: {}\n", source="acme.yaml")


def test_a_key_given_twice_is_an_error_naming_its_line() -> None:
    text = EXAMPLE.replace("  Contact: {}", "  Contact: {}\n  Lead: {}")
    with pytest.raises(ConfigError, match=r"line 12, column 3: invalid YAML: duplicate key 'Lead'"):
        parse_spec(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "the file is empty"),
        ("# only a comment\n", "the file is empty"),
        ("- a\n- b\n", "expected a mapping of keys"),
    ],
)
def test_files_that_are_not_a_mapping_are_rejected(text: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        parse_spec(text)


def test_load_spec_file_reads_a_file_and_names_it_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text(EXAMPLE, encoding="utf-8")
    assert load_spec_file(path).name == "acme"
    path.write_text(_with(project_id="-1"), encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{path}: project_id: "):
        load_spec_file(path)
    with pytest.raises(ConfigError, match="no such file"):
        load_spec_file(tmp_path / "missing.yaml")


# --- checks against describe -----------------------------------------------------------------------


def _check(spec: IntegrationSpec, mappings: list[MappingSpec] | None = None) -> list[tuple[str, str]]:
    rules = {name: [r.to_rule() for r in obj.rules] for name, obj in spec.objects.items()}
    if mappings is None:
        mappings = [m.to_mapping() for m in spec.mappings or []]
    return check_against_describe(
        list(spec.objects), rules, [(f"mappings[{i}]", m) for i, m in enumerate(mappings)], describe
    )


def test_the_example_is_valid_against_describe() -> None:
    spec = parse_spec(EXAMPLE.replace("  Contact: {}", "  Contact: {}\n  CampaignMember: {}"))
    assert _check(spec) == []


@pytest.mark.parametrize(
    ("rule", "key", "reason"),
    [
        (
            "{field: Ratng, operator: equals, value: Hot}",
            "objects.Lead.rules[0].field",
            "field 'Ratng' does not exist on Lead",
        ),
        (
            "{field: AnnualRevenue, operator: greater_than, value: lots}",
            "objects.Lead.rules[0].value",
            "expected a number",
        ),
        ("{field: ConvertedDate, operator: less_than, value: 01/02/2024}", "objects.Lead.rules[0].value", "date field"),
        ("{field: CreatedDate, operator: greater_than, value: soon}", "objects.Lead.rules[0].value", "datetime field"),
        ("{field: IsConverted, operator: equals, value: maybe}", "objects.Lead.rules[0].value", "true or false"),
        (
            "{field: Rating, operator: greater_than, value: A}",
            "objects.Lead.rules[0].operator",
            "number, date or datetime",
        ),
        ("{field: AnnualRevenue, operator: contains, value: '1'}", "objects.Lead.rules[0].operator", "text fields"),
    ],
)
def test_rules_are_checked_against_the_objects_fields(rule: str, key: str, reason: str) -> None:
    spec = parse_spec(EXAMPLE.replace("{field: Rating, operator: equals, value: Hot}", rule))
    problems = _check(spec)
    assert [k for k, _ in problems] == [key] and reason in problems[0][1]


def test_a_mapping_field_is_an_error_only_if_no_selected_object_has_it() -> None:
    spec = parse_spec(EXAMPLE)  # Lead and Contact
    assert _check(spec, [MappingSpec("Company", "company"), MappingSpec("Birthdate", "birthday")]) == []
    assert _check(spec, [MappingSpec("Nope__c", "nope")]) == [
        ("mappings[0].field", "field 'Nope__c' does not exist on Lead or Contact")
    ]


def test_a_mapping_limited_to_one_object_must_exist_there() -> None:
    spec = parse_spec(EXAMPLE)
    assert _check(spec, [MappingSpec("Company", "company", object_name="Contact")]) == [
        ("mappings[0].field", "field 'Company' does not exist on Contact")
    ]


def test_parent_paths_resolve_through_campaign_member_lookups() -> None:
    spec = parse_spec(
        EXAMPLE.replace("  Contact: {}", "  CampaignMember: {}").replace(
            "  - {field: Lead.Email, property: email, object: CampaignMember}\n", ""
        )
    )
    assert (
        _check(
            spec,
            [
                MappingSpec("Lead.HasOptedOutOfEmail", "unsubscribed"),
                MappingSpec("Contact.Email", "email"),
                MappingSpec("Campaign.Name", "campaign"),
            ],
        )
        == []
    )
    assert _check(spec, [MappingSpec("Lead.Nope__c", "x")]) == [
        ("mappings[0].field", "field 'Lead.Nope__c' does not exist on Lead or CampaignMember")
    ]


def test_mapping_types_are_checked_against_the_field_type() -> None:
    spec = parse_spec(EXAMPLE)
    problems = _check(spec, [MappingSpec("HasOptedOutOfEmail", "unsubscribed", type="date")])
    assert [k for k, _ in problems] == ["mappings[0].type", "mappings[0].type"]
    assert "on Lead: HasOptedOutOfEmail is a boolean field; it cannot fill a date property" in problems[0][1]


def test_rule_text_reads_like_the_file() -> None:
    assert rule_text(Rule("Rating", "equals", "Hot")) == "Rating equals 'Hot'"
    assert rule_text(Rule("Email", "is_set")) == "Email is_set"
    assert rule_text(Rule("IsConverted", "equals", False)) == "IsConverted equals false"
    assert rule_text(Rule("ConvertedDate", "less_than", date(2024, 1, 1))) == "ConvertedDate less_than 2024-01-01"


# --- the Salesforce API ------------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["auto", "rest", "bulk"])
def test_api_is_auto_rest_or_bulk(api: str) -> None:
    assert parse_spec(EXAMPLE).api == "auto"
    assert parse_spec(EXAMPLE.replace("frequency_minutes: 60\n", f"frequency_minutes: 60\napi: {api}\n")).api == api


def test_an_unknown_api_is_refused_naming_the_choices() -> None:
    key, reason = _problem(EXAMPLE.replace("frequency_minutes: 60\n", "frequency_minutes: 60\napi: soap\n"))
    assert key == "api"
    assert "'soap'" in reason and "'auto'" in reason and "'rest'" in reason and "'bulk'" in reason


LIMITS_BASE = "name: a\nproject_id: 1\nlogin_url: https://login.salesforce.com\nobjects:\n  Lead:\n    rules:\n"


def _rules(count: int, value: str) -> str:
    return "".join(f"      - {{field: Rating, operator: equals, value: {value}{i}}}\n" for i in range(count))


def test_rules_mappings_and_query_length_are_limited_naming_the_key() -> None:
    from sf_pipeline.integration_spec import MAX_MAPPINGS, MAX_QUERY_URI_BYTES, MAX_RULES_PER_OBJECT

    parse_spec(LIMITS_BASE + _rules(MAX_RULES_PER_OBJECT, "x"))
    with pytest.raises(ConfigError, match=rf"objects\.Lead\.rules: .*at most {MAX_RULES_PER_OBJECT}"):
        parse_spec(LIMITS_BASE + _rules(MAX_RULES_PER_OBJECT + 1, "x"))
    with pytest.raises(ConfigError, match=rf"objects\.Lead: the sync query would be about .* {MAX_QUERY_URI_BYTES:,}"):
        parse_spec(LIMITS_BASE + _rules(40, "y" * 400))
    mappings = "".join(f"  - {{field: F{i}__c, property: p{i}}}\n" for i in range(MAX_MAPPINGS + 1))
    with pytest.raises(ConfigError, match=rf"mappings: .*at most {MAX_MAPPINGS}"):
        parse_spec(LIMITS_BASE + _rules(1, "x") + "mappings:\n" + mappings)


def test_an_oversized_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    from sf_pipeline.integration_spec import MAX_FILE_BYTES

    path = tmp_path / "huge.yaml"
    path.write_text(LIMITS_BASE + "#" * MAX_FILE_BYTES)
    with pytest.raises(ConfigError, match="larger than"):
        load_spec_file(path)
