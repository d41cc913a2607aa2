"""WHERE clauses: every operator and literal form, evaluated in process against a hand-made org.

Each test asserts the set of LastNames a filter returns, so a wrong answer shows which records
were wrongly kept or dropped.
"""

from __future__ import annotations

import pytest

from sf_pipeline.sandbox import Org
from sf_pipeline.sandbox.errors import InvalidField, InvalidQueryFilterOperator, MalformedQuery

PEOPLE = [
    {
        "LastName": "Alpha",
        "FirstName": "Ann",
        "Email": "ann@acme.test",
        "NumberOfEmployees": 10,
        "AnnualRevenue": 1000.5,
        "HasOptedOutOfEmail": False,
        "Rating": "Hot",
        "Birthdate__c": "1990-01-31",
        "Interests__c": ["Webinars", "Events"],
        "Score__c": 50.0,
        "Company": "Acme",
    },
    {
        "LastName": "Bravo",
        "FirstName": "bob",
        "Email": "BOB@Acme.test",
        "NumberOfEmployees": 200,
        "AnnualRevenue": 5e6,
        "HasOptedOutOfEmail": True,
        "Rating": "Cold",
        "Birthdate__c": "1985-06-15",
        "Interests__c": ["Events"],
        "Score__c": 75.5,
        "Company": "Globex",
    },
    {
        "LastName": "Charlie",
        "Email": None,
        "NumberOfEmployees": None,
        "Rating": None,
        "Interests__c": ["Newsletters", "Webinars", "Events"],
        "Company": "O'Reilly \\ Sons",
    },
    {
        "LastName": "Delta",
        "FirstName": "Zoë",
        "Email": "zoe_100%@example.org",
        "NumberOfEmployees": 0,
        "Rating": "Warm",
        "Company": 'Quote "Co"',
        "Title": "line1\nline2",
    },
]


@pytest.fixture
def people(org: Org) -> Org:
    for i, person in enumerate(PEOPLE):
        org.create("Lead", [person], at=f"2024-06-{10 + i:02d}T08:00:00Z")
    return org


def names(org: Org, where: str) -> set[str]:
    return {r["LastName"] for r in org.query(f"SELECT LastName FROM Lead WHERE {where}")["records"]}


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Email = 'ann@acme.test'", {"Alpha"}),
        ("Email = 'ANN@ACME.TEST'", {"Alpha"}),
        ("Email = 'bob@acme.test'", {"Bravo"}),
        ("Email != 'ann@acme.test'", {"Bravo", "Charlie", "Delta"}),
        ("Email <> 'ann@acme.test'", {"Bravo", "Charlie", "Delta"}),
        ("Email = null", {"Charlie"}),
        ("Email != null", {"Alpha", "Bravo", "Delta"}),
        ("Email = ''", {"Charlie"}),
        ("FirstName < 'b'", {"Alpha"}),
        ("FirstName <= 'BOB'", {"Alpha", "Bravo"}),
        ("FirstName > 'bob'", {"Delta"}),
        ("FirstName >= 'Bob'", {"Bravo", "Delta"}),
        ("NumberOfEmployees > 10", {"Bravo"}),
        ("NumberOfEmployees >= 10", {"Alpha", "Bravo"}),
        ("NumberOfEmployees < 10", {"Delta"}),
        ("NumberOfEmployees <= 0", {"Delta"}),
        ("NumberOfEmployees = 200", {"Bravo"}),
        ("NumberOfEmployees != 200", {"Alpha", "Charlie", "Delta"}),
        ("AnnualRevenue > 1000.25", {"Alpha", "Bravo"}),
        ("AnnualRevenue < -1", set()),
        ("Score__c = 75.5", {"Bravo"}),
        ("HasOptedOutOfEmail = true", {"Bravo"}),
        ("HasOptedOutOfEmail = FALSE", {"Alpha", "Charlie", "Delta"}),
        ("HasOptedOutOfEmail != false", {"Bravo"}),
        ("Rating IN ('hot', 'Warm')", {"Alpha", "Delta"}),
        ("Rating NOT IN ('hot', 'Warm')", {"Bravo", "Charlie"}),
        ("Rating IN ('Cold', null)", {"Bravo", "Charlie"}),
        ("NumberOfEmployees IN (0, 200)", {"Bravo", "Delta"}),
        ("Birthdate__c = 1990-01-31", {"Alpha"}),
        ("Birthdate__c < 1990-01-01", {"Bravo"}),
        ("Birthdate__c IN (1985-06-15, 2000-01-01)", {"Bravo"}),
        ("Interests__c = 'Events;Webinars'", {"Alpha"}),
        ("Interests__c INCLUDES ('events')", {"Alpha", "Bravo", "Charlie"}),
        ("Interests__c INCLUDES ('Webinars;Newsletters', 'Nothing')", {"Charlie"}),
        ("Interests__c EXCLUDES ('Webinars')", {"Bravo", "Delta"}),
    ],
)
def test_comparison_operators_follow_salesforce_semantics(people: Org, where: str, expected: set[str]) -> None:
    assert names(people, where) == expected


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Email LIKE '%@acme.test'", {"Alpha", "Bravo"}),
        ("Email LIKE 'A%'", {"Alpha"}),
        ("Email LIKE '%ACME%'", {"Alpha", "Bravo"}),
        ("Email LIKE '_ob@%'", {"Bravo"}),
        ("Email LIKE 'zoe\\_100\\%@%'", {"Delta"}),
        ("Email LIKE 'zoe\\_100\\%'", set()),
        ("FirstName LIKE 'zo_'", {"Delta"}),
        ("NOT Email LIKE '%acme%'", {"Charlie", "Delta"}),
    ],
)
def test_like_is_case_insensitive_with_escaped_wildcards(people: Org, where: str, expected: set[str]) -> None:
    assert names(people, where) == expected


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Company = 'O\\'Reilly \\\\ Sons'", {"Charlie"}),
        ("Company = 'O\\'Reilly \\ Sons'", None),
        ("Company = 'Quote \\\"Co\\\"'", {"Delta"}),
        ("Company = 'Quote \"Co\"'", {"Delta"}),
        ("Title = 'line1\\nline2'", {"Delta"}),
        ("Title = 'LINE1\\Nline2'", {"Delta"}),
        ("Title = 'line1\\u000aline2'", {"Delta"}),
        ("FirstName = 'Zo\\u00eb'", {"Delta"}),
        ("Company = 'O''Reilly'", None),
    ],
)
def test_quoted_strings_match_only_what_they_literally_say(people: Org, where: str, expected: set[str] | None) -> None:
    if expected is None:
        with pytest.raises(MalformedQuery):
            names(people, where)
    else:
        assert names(people, where) == expected


def test_escaped_quote_does_not_end_the_string_or_inject_conditions(people: Org) -> None:
    assert names(people, "Email = 'x\\' OR Email != null OR Email = \\'y'") == set()


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Rating = 'Hot' OR Rating = 'Cold'", {"Alpha", "Bravo"}),
        ("Rating = 'Hot' AND Email != null", {"Alpha"}),
        ("(Rating = 'Hot' OR Rating = 'Cold') AND HasOptedOutOfEmail = false", {"Alpha"}),
        ("Rating = 'Warm' OR (Rating = 'Cold' AND HasOptedOutOfEmail = true)", {"Bravo", "Delta"}),
        ("NOT Rating = 'Hot'", {"Bravo", "Charlie", "Delta"}),
        ("NOT (Rating = 'Hot' OR Rating = 'Cold')", {"Charlie", "Delta"}),
        ("Email != null AND (NOT Rating = 'Hot')", {"Bravo", "Delta"}),
        ("((Rating = 'Hot'))", {"Alpha"}),
    ],
)
def test_boolean_logic_with_parentheses(people: Org, where: str, expected: set[str]) -> None:
    assert names(people, where) == expected


@pytest.mark.parametrize(
    "where",
    [
        "Rating = 'Hot' AND Email != null OR Rating = 'Cold'",
        "Rating = 'Hot' OR Email != null AND Rating = 'Cold'",
        "Email != null AND NOT Rating = 'Hot'",
        "NOT Rating = 'Hot' AND Email != null",
        "(Rating = 'Hot'",
        "Rating = 'Hot')",
        "Rating = ",
        "Rating == 'Hot'",
        'Rating = "Hot"',
        "Rating = 'Hot",
        "Email NOT LIKE 'a%'",
        "Rating IN ('Hot',)",
        "Birthdate__c = 2024-13-45",
    ],
)
def test_invalid_where_clauses_are_malformed_queries(people: Org, where: str) -> None:
    with pytest.raises(MalformedQuery):
        names(people, where)


def test_mixing_and_with_or_reports_the_or_token_with_row_and_column(people: Org) -> None:
    with pytest.raises(MalformedQuery) as caught:
        names(people, "Rating = 'Hot' AND Email != null OR Rating = 'Cold'")
    message = caught.value.message
    assert "unexpected token: 'OR'" in message
    assert "ERROR at Row:1:Column:" in message
    assert message.splitlines()[2].strip() == "^"


@pytest.mark.parametrize(
    ("where", "error"),
    [
        ("CreatedDate = '2024-01-01T00:00:00Z'", InvalidField),
        ("CreatedDate = 2024-01-01", InvalidField),
        ("Birthdate__c = 2024-01-01T00:00:00Z", InvalidField),
        ("Birthdate__c = '2024-01-01'", InvalidField),
        ("NumberOfEmployees = '10'", InvalidField),
        ("Email = 10", InvalidField),
        ("HasOptedOutOfEmail = 'true'", InvalidField),
        ("Description = 'x'", InvalidField),
        ("NumberOfEmployees LIKE '1%'", InvalidQueryFilterOperator),
        ("Interests__c LIKE '%Events%'", InvalidQueryFilterOperator),
        ("HasOptedOutOfEmail > false", InvalidQueryFilterOperator),
        ("Id = 'not-an-id'", InvalidQueryFilterOperator),
        ("Email INCLUDES ('a')", InvalidQueryFilterOperator),
    ],
)
def test_type_and_operator_mismatches_are_rejected(people: Org, where: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        names(people, where)


def test_date_type_mismatch_uses_salesforce_message(people: Org) -> None:
    with pytest.raises(InvalidField) as caught:
        names(people, "CreatedDate > 2024-01-01")
    assert (
        "value of filter criterion for field 'CreatedDate' must be of type dateTime and should not be "
        "enclosed in quotes"
    ) in caught.value.message


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("CreatedDate = 2024-06-11T08:00:00Z", {"Bravo"}),
        ("CreatedDate = 2024-06-11T08:00:00.000Z", {"Bravo"}),
        ("CreatedDate = 2024-06-11T08:00:00.000000Z", {"Bravo"}),
        ("CreatedDate = 2024-06-11T10:30:00+02:30", {"Bravo"}),
        ("CreatedDate = 2024-06-11T03:00:00-0500", {"Bravo"}),
        ("CreatedDate > 2024-06-11T08:00:00Z", {"Charlie", "Delta"}),
        ("CreatedDate >= 2024-06-11T08:00:00Z", {"Bravo", "Charlie", "Delta"}),
        ("CreatedDate > 2024-06-11T07:59:59.999Z", {"Bravo", "Charlie", "Delta"}),
        ("CreatedDate >= 2024-06-11T08:00:00.0001Z", {"Charlie", "Delta"}),
        ("CreatedDate < 2024-06-11T08:00:00.0001Z", {"Alpha", "Bravo"}),
        ("CreatedDate = 2024-06-11T08:00:00.0001Z", set()),
        ("CreatedDate IN (2024-06-10T08:00:00Z, 2024-06-13T08:00:00Z)", {"Alpha", "Delta"}),
    ],
)
def test_datetime_literals_in_every_form(people: Org, where: str, expected: set[str]) -> None:
    assert names(people, where) == expected


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        # The org clock is frozen at 2024-06-15 12:00 UTC (a Saturday); records were created 10th..13th.
        ("CreatedDate = TODAY", set()),
        ("CreatedDate < TODAY", {"Alpha", "Bravo", "Charlie", "Delta"}),
        ("CreatedDate = LAST_N_DAYS:2", {"Delta"}),
        ("CreatedDate = LAST_N_DAYS:4", {"Bravo", "Charlie", "Delta"}),
        ("CreatedDate = N_DAYS_AGO:5", {"Alpha"}),
        ("CreatedDate = THIS_WEEK", {"Alpha", "Bravo", "Charlie", "Delta"}),
        ("CreatedDate = LAST_WEEK", set()),
        ("CreatedDate = THIS_MONTH", {"Alpha", "Bravo", "Charlie", "Delta"}),
        ("CreatedDate = LAST_MONTH", set()),
        ("CreatedDate = THIS_YEAR", {"Alpha", "Bravo", "Charlie", "Delta"}),
        ("CreatedDate > YESTERDAY", set()),
        ("CreatedDate = NEXT_N_DAYS:3", set()),
        ("CreatedDate = THIS_QUARTER", {"Alpha", "Bravo", "Charlie", "Delta"}),
        ("Birthdate__c = LAST_N_YEARS:40", {"Alpha", "Bravo"}),
        ("Birthdate__c < LAST_N_YEARS:34", {"Bravo"}),
    ],
)
def test_relative_date_literals_use_the_org_clock(people: Org, where: str, expected: set[str]) -> None:
    assert names(people, where) == expected


def test_relative_date_literals_follow_the_clock_when_it_moves(people: Org) -> None:
    assert names(people, "CreatedDate = YESTERDAY") == set()
    people.clock.set(people.clock.now().replace(day=14))
    assert names(people, "CreatedDate = YESTERDAY") == {"Delta"}


def test_id_filters_accept_15_and_18_character_ids(people: Org) -> None:
    alpha = people.query("SELECT Id FROM Lead WHERE LastName = 'Alpha'")["records"][0]["Id"]
    assert names(people, f"Id = '{alpha}'") == {"Alpha"}
    assert names(people, f"Id = '{alpha[:15]}'") == {"Alpha"}
    assert names(people, f"Id = '{alpha.lower()[:15] + alpha[15:]}'") == {"Alpha"}
    assert names(people, f"Id IN ('{alpha}')") == {"Alpha"}
    assert names(people, f"Id > '{alpha}'") == {"Bravo", "Charlie", "Delta"}


def test_unknown_field_is_invalid_field_with_salesforce_message(people: Org) -> None:
    with pytest.raises(InvalidField) as caught:
        people.query("SELECT Id, Foo FROM Lead")
    assert "No such column 'Foo' on entity 'Lead'" in caught.value.message
    assert "ERROR at Row:1:Column:12" in caught.value.message


@pytest.mark.timeout(120)  # backtracking would take years on this pattern, not seconds
def test_like_with_many_wildcards_on_long_text_does_not_backtrack(org: Org) -> None:
    org.create("Lead", [{"LastName": "a" * 5000, "Company": "C"}])
    assert names(org, "LastName LIKE '" + "%a" * 30 + "%b'") == set()
    assert len(names(org, "LastName LIKE '" + "%a" * 30 + "%'")) == 1


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        ("a%b%c", "abc", True),
        ("a%b%c", "axxbyyc", True),
        ("a%b%c", "acb", False),
        ("%", "", False),
        ("%%", "x", True),
        ("a_c", "abc", True),
        ("a_c", "abbc", False),
        ("%b_", "abc", True),
        ("ab%ab", "ab", False),
        ("ab%ab", "abab", True),
        ("%\\%", "50%", True),
        ("%\\%", "50", False),
    ],
)
def test_like_pattern_semantics(org: Org, pattern: str, value: str, matches: bool) -> None:
    org.create("Lead", [{"LastName": "X", "Company": "C", "Title": value}])
    assert names(org, f"Title LIKE '{pattern}'") == ({"X"} if matches else set())


def test_deeply_nested_conditions_are_malformed_not_a_crash(people: Org) -> None:
    with pytest.raises(MalformedQuery):
        names(people, "(" * 2000 + "Rating = 'Hot'" + ")" * 2000)
    assert names(people, "(" * 50 + "Rating = 'Hot'" + ")" * 50) == {"Alpha"}


def test_long_or_chains_work(people: Org) -> None:
    chain = " OR ".join(f"Email = 'nobody{i}@x.test'" for i in range(3000))
    assert names(people, chain + " OR Rating = 'Cold'") == {"Bravo"}
