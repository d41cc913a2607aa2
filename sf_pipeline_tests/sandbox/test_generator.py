"""Generated orgs: deterministic by seed, realistic, and full of the bad data real orgs have."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from sf_pipeline.sandbox import Org, populate
from sf_pipeline_tests.sandbox.conftest import NOW

N = 5000
WELL_FORMED = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")


@pytest.fixture(scope="module")
def generated() -> Org:
    from sf_pipeline.sandbox import OrgClock

    org = Org(clock=OrgClock(NOW, frozen=True))
    populate(org, records=N, seed=7)
    return org


def column(org: Org, sobject: str, field: str) -> list[object]:
    table = org.table(sobject)
    return [table.getter(field)(row) for row in range(table.size)]


def test_counts_per_object(generated: Org) -> None:
    assert generated.count("Lead") == N
    assert generated.count("Contact") == N
    assert generated.count("CampaignMember") == N // 5
    assert 3 <= generated.count("Campaign") <= 50


def test_same_seed_and_clock_give_the_same_org() -> None:
    from sf_pipeline.sandbox import OrgClock

    def make(seed: int) -> list[dict[str, object]]:
        org = Org(clock=OrgClock(NOW, frozen=True))
        populate(org, records=200, seed=seed)
        return org.records("Lead")

    assert make(3) == make(3)
    assert make(3) != make(4)


def test_emails_include_missing_malformed_padded_and_duplicate_ones(generated: Org) -> None:
    emails = column(generated, "Lead", "Email")
    missing = sum(e is None for e in emails)
    present = [str(e) for e in emails if e is not None]
    malformed = [e for e in present if not WELL_FORMED.fullmatch(e.strip())]
    padded = [e for e in present if e != e.strip()]
    duplicates = Counter(e.strip().lower() for e in present)
    assert 0.02 * N < missing < 0.08 * N
    assert 0.01 * N < len(malformed) < 0.05 * N
    assert padded
    assert sum(c - 1 for c in duplicates.values() if c > 1) > 0.02 * N
    assert any(e != e.lower() and e.lower() in {p.lower() for p in present if p != e} for e in present)


def test_names_include_non_ascii_apostrophes_and_very_long_values(generated: Org) -> None:
    last_names = [str(v) for v in column(generated, "Lead", "LastName")]
    assert all(last_names)
    assert sum(not n.isascii() for n in last_names) > 0.1 * N
    assert any("'" in n for n in last_names)
    assert max(len(n) for n in last_names) == 80
    assert max(len(str(t)) for t in column(generated, "Lead", "Title") if t) == 128
    assert max(len(str(c)) for c in column(generated, "Lead", "Company")) == 255
    assert any(d is not None and len(str(d)) > 5000 for d in column(generated, "Lead", "Description"))


def test_last_modified_dates_spread_over_the_past_with_big_ties(generated: Org) -> None:
    stamps = [str(v) for v in column(generated, "Lead", "LastModifiedDate")]
    created = [str(v) for v in column(generated, "Lead", "CreatedDate")]
    system = [str(v) for v in column(generated, "Lead", "SystemModstamp")]
    now = "2024-06-15T12:00:00.000+0000"
    assert all(c <= m <= s <= now for c, m, s in zip(created, stamps, system, strict=True))
    assert min(stamps) < "2022-07-01"
    biggest_tie = Counter(stamps).most_common(1)[0][1]
    assert biggest_tie > 10
    assert sum(m != s for m, s in zip(stamps, system, strict=True)) > 0.02 * N


def test_generated_data_is_queryable_with_consistent_relationships(generated: Org) -> None:
    members = generated.query("SELECT LeadId, ContactId, Lead.Email, Contact.Email, Campaign.Name FROM CampaignMember")[
        "records"
    ]
    assert all((m["LeadId"] is None) != (m["ContactId"] is None) for m in members)
    assert all(m["Campaign"]["Name"] for m in members)
    pairs = [(m["LeadId"] or m["ContactId"]) for m in members]
    assert len(pairs) == len(set(pairs))
    converted = generated.query("SELECT ConvertedContactId, ConvertedDate FROM Lead WHERE IsConverted = true")
    assert converted["totalSize"] > 0
    assert all(r["ConvertedContactId"].startswith("003") and r["ConvertedDate"] for r in converted["records"])


def test_every_picklist_value_is_one_describe_allows(generated: Org) -> None:
    schema = generated.schema("Lead")
    assert schema is not None
    for name in ("Status", "Rating", "Industry", "LeadSource"):
        f = schema.field(name)
        assert f is not None
        allowed = set(f.picklist_values) | {None}
        assert set(column(generated, "Lead", name)) <= allowed
    interests = {p for v in column(generated, "Lead", "Interests__c") if v for p in str(v).split(";")}
    f = schema.field("Interests__c")
    assert f is not None and interests <= set(f.picklist_values)
