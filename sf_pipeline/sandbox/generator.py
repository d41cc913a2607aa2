"""Seeded, realistic org data, including the bad data real orgs have.

``populate(org, records=N, seed=S)`` adds N Leads, N Contacts, N // 5 CampaignMembers (each
member a distinct lead or contact, in one of a few Campaigns) and returns the counts. The same
seed and org clock give the same data. What makes it realistic:

- about 4% of people have no email, 2% a malformed one (no ``@``, two ``@``, spaces, trailing
  dot, no domain), 1% one padded with spaces, 3% share another person's email (half of those in
  different letter case);
- about a fifth have non-ASCII names (``Zoë``, ``Łukasz``, ``山田``, ``Иванов``) or apostrophes
  (``O'Brien``); a few hold values at the field's maximum length or a long description;
- LastModifiedDate is spread over the two years before the org clock's now, and deliberately
  tied: 10% of records share one of 20 "mass update" timestamps (thousands of records on one
  timestamp at a million records), and 30% fall on whole minutes. CreatedDate precedes it, and
  SystemModstamp equals it except for 5% touched later by "the system".

Columns are built with numpy and list comprehensions and loaded in one ``Org.bulk_load`` call per
object, so a million leads take a few seconds.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from itertools import combinations
from typing import Any

import numpy as np

from sf_pipeline.sandbox.ids import KEY_PREFIXES, make_id
from sf_pipeline.sandbox.schema import (
    CAMPAIGN_STATUSES,
    CAMPAIGN_TYPES,
    INDUSTRIES,
    INTERESTS,
    LANGUAGES,
    LEAD_SOURCES,
    RATINGS,
    SALUTATIONS,
)
from sf_pipeline.sandbox.state import Org

Rng = np.random.Generator

# (display name, ASCII slug for email addresses)
FIRST_NAMES = [
    ("James", "james"),
    ("Mary", "mary"),
    ("Robert", "robert"),
    ("Patricia", "patricia"),
    ("John", "john"),
    ("Jennifer", "jennifer"),
    ("Michael", "michael"),
    ("Linda", "linda"),
    ("David", "david"),
    ("Elizabeth", "elizabeth"),
    ("William", "william"),
    ("Barbara", "barbara"),
    ("Richard", "richard"),
    ("Susan", "susan"),
    ("Joseph", "joseph"),
    ("Jessica", "jessica"),
    ("Thomas", "thomas"),
    ("Sarah", "sarah"),
    ("Christopher", "christopher"),
    ("Karen", "karen"),
    ("Daniel", "daniel"),
    ("Lisa", "lisa"),
    ("Matthew", "matthew"),
    ("Nancy", "nancy"),
    ("Anthony", "anthony"),
    ("Betty", "betty"),
    ("Mark", "mark"),
    ("Sandra", "sandra"),
    ("Priya", "priya"),
    ("Wei", "wei"),
    ("Aisha", "aisha"),
    ("Kenji", "kenji"),
    ("Fatima", "fatima"),
    ("Oluwaseun", "oluwaseun"),
    ("Mateo", "mateo"),
    ("Ingrid", "ingrid"),
    ("José", "jose"),
    ("Zoë", "zoe"),
    ("François", "francois"),
    ("Björn", "bjorn"),
    ("Søren", "soren"),
    ("Łukasz", "lukasz"),
    ("Małgorzata", "malgorzata"),
    ("Chloé", "chloe"),
    ("Renée", "renee"),
    ("Mónica", "monica"),
    ("Jürgen", "jurgen"),
    ("Çağla", "cagla"),
    ("美咲", "misaki"),
    ("太郎", "taro"),
    ("Алексей", "aleksei"),
    ("Δημήτρης", "dimitris"),
    ("محمد", "mohammed"),
    ("Siobhán", "siobhan"),
    ("D'Arcy", "darcy"),
    ("Anne-Marie", "anne-marie"),
]
LAST_NAMES = [
    ("Smith", "smith"),
    ("Johnson", "johnson"),
    ("Williams", "williams"),
    ("Brown", "brown"),
    ("Jones", "jones"),
    ("Garcia", "garcia"),
    ("Miller", "miller"),
    ("Davis", "davis"),
    ("Rodriguez", "rodriguez"),
    ("Martinez", "martinez"),
    ("Hernandez", "hernandez"),
    ("Lopez", "lopez"),
    ("Wilson", "wilson"),
    ("Anderson", "anderson"),
    ("Taylor", "taylor"),
    ("Moore", "moore"),
    ("Jackson", "jackson"),
    ("Martin", "martin"),
    ("Lee", "lee"),
    ("Thompson", "thompson"),
    ("White", "white"),
    ("Harris", "harris"),
    ("Clark", "clark"),
    ("Lewis", "lewis"),
    ("Walker", "walker"),
    ("Patel", "patel"),
    ("Chen", "chen"),
    ("Kim", "kim"),
    ("Okafor", "okafor"),
    ("Kowalski", "kowalski"),
    ("Schmidt", "schmidt"),
    ("O'Brien", "obrien"),
    ("O'Neil", "oneil"),
    ("Smith-Jones", "smith-jones"),
    ("van der Berg", "vanderberg"),
    ("Müller", "muller"),
    ("Nguyễn", "nguyen"),
    ("García Márquez", "garciamarquez"),
    ("Dvořák", "dvorak"),
    ("Øberg", "oberg"),
    ("Ødegaard", "odegaard"),
    ("Şahin", "sahin"),
    ("山田", "yamada"),
    ("佐藤", "sato"),
    ("Иванов", "ivanov"),
    ("Παπαδόπουλος", "papadopoulos"),
    ("Al-Farsi", "alfarsi"),
    ("Ó Súilleabháin", "osullivan"),
]
COMPANY_HEADS = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Cyberdyne",
    "Tyrell",
    "Wonka",
    "Gringotts",
    "Oscorp",
    "Pied Piper",
    "Aperture",
    "Blue Sun",
    "Müller & Söhne",
    "Nakatomi",
    "Zorg",
    "Massive Dynamic",
    "Duff",
    "Monarch",
    "Prestige",
    "株式会社サンプル",
    "Северсталь",
    "Ærø Fisk",
    "O'Reilly & Daughters",
]
COMPANY_TAILS = [
    "Inc.",
    "LLC",
    "GmbH",
    "Ltd",
    "Corp",
    "S.A.",
    "AG",
    "Group",
    "Holdings",
    "Labs",
    "& Co.",
    "KG",
    "Partners",
    "Systems",
    "Industries",
]
DOMAINS = [
    "example.com",
    "example.org",
    "mail.test",
    "corp.example",
    "acme.test",
    "globex.example",
    "gmail.example",
    "outlook.example",
    "müller.example",
    "xn--mller-kva.example",
]
TITLES = [
    "CEO",
    "CTO",
    "VP Marketing",
    "Marketing Manager",
    "Head of Growth",
    "Sales Director",
    "Software Engineer",
    "Product Manager",
    "Office Manager",
    "Procurement Lead",
    "Data Analyst",
    "Directeur Général",
    "Geschäftsführer",
    "Responsable Marketing",
    "代表取締役",
]
DEPARTMENTS = ["Marketing", "Sales", "Engineering", "Finance", "Operations", "Purchasing", "IT", "Legal"]
PLACES = [
    ("New York", "United States"),
    ("San Francisco", "USA"),
    ("Austin", "US"),
    ("London", "United Kingdom"),
    ("Manchester", "UK"),
    ("Berlin", "Germany"),
    ("München", "Deutschland"),
    ("Paris", "France"),
    ("Lyon", "France"),
    ("Madrid", "Spain"),
    ("São Paulo", "Brazil"),
    ("Tokyo", "Japan"),
    ("東京", "日本"),
    ("Sydney", "Australia"),
    ("Toronto", "Canada"),
    ("Montréal", "Canada"),
    ("Bengaluru", "India"),
    ("Lagos", "Nigeria"),
    ("Kraków", "Poland"),
    ("Zürich", "Switzerland"),
]
PHONE_FORMATS = [
    "+1 (415) 555-{:04d}",
    "415.555.{:04d}",
    "+44 20 7946 {:04d}",
    "0049 30 123{:04d}",
    "555-{:04d} ext. 12",
    "+81 3-1234-{:04d}",
    "(020) 7946 {:04d}",
    "+33 1 23 45 {:04d}",
]
DESCRIPTIONS = [
    "Met at the trade show.",
    "Asked for a demo.",
    "Downloaded the whitepaper.",
    "Referred by a partner.",
    "Interested in the enterprise plan.",
    "Prefers email; do not call before 10am.",
    "Wants pricing in EUR.",
    "Line one\nLine two\twith a tab",
    'Said "maybe next quarter"',
    "Back\\slash and 'quotes'",
]
LEAD_STATUS_WEIGHTS = [
    ("Open - Not Contacted", 0.5),
    ("Working - Contacted", 0.3),
    ("Closed - Not Converted", 0.15),
    ("Closed - Converted", 0.05),
]
INTEREST_SETS = [";".join(c) for k in (1, 2, 3) for c in combinations(INTERESTS, k)]

_SECOND = np.timedelta64(1, "s")


def populate(org: Org, *, records: int, seed: int = 0) -> dict[str, int]:
    """Add ``records`` Leads and Contacts and ``records // 5`` CampaignMembers to ``org``."""
    if records <= 0:
        return {"Lead": 0, "Contact": 0, "CampaignMember": 0, "Campaign": 0}
    rng = np.random.default_rng(seed)
    now = org.clock.now().replace(microsecond=0)
    n_campaigns = max(3, min(50, records // 1000))
    campaign_ids = org.bulk_load("Campaign", _campaigns(rng, n_campaigns, now), n_campaigns)
    # Fields added later come from their own generator, so the older fields keep their values.
    extra = np.random.default_rng([seed, 1])
    contacts = _contacts(rng, records, now)
    contacts.update(_contact_extras(extra, records, now))
    contact_ids = org.bulk_load("Contact", contacts, records)
    leads = _leads(rng, records, now, contact_ids)
    leads.update(_lead_extras(extra, records, now))
    lead_ids = org.bulk_load("Lead", leads, records)
    n_members = records // 5
    members = _members(rng, n_members, now, campaign_ids, lead_ids, contact_ids)
    audit = _ownership(extra, n_members)
    members.update(CreatedById=audit["CreatedById"], LastModifiedById=audit["LastModifiedById"])
    org.bulk_load("CampaignMember", members, n_members)
    return {"Lead": records, "Contact": records, "CampaignMember": n_members, "Campaign": n_campaigns}


def _pick(rng: Rng, pool: list[Any], n: int, *, none_rate: float = 0.0) -> list[Any]:
    values = [pool[i] for i in rng.integers(0, len(pool), n).tolist()]
    return _blank(rng, values, none_rate)


def _blank(rng: Rng, values: list[Any], rate: float) -> list[Any]:
    if rate > 0:
        for i in np.flatnonzero(rng.random(len(values)) < rate).tolist():
            values[i] = None
    return values


def _rows(rng: Rng, n: int, rate: float) -> list[int]:
    rows: list[int] = np.flatnonzero(rng.random(n) < rate).tolist()
    return rows


def _datetimes(*columns: np.ndarray[Any, Any]) -> list[list[str]]:
    """Salesforce datetime text for each column; equal instants share one string object."""
    joined = np.concatenate([c.astype("datetime64[s]").astype(np.int64) for c in columns])
    unique, inverse = np.unique(joined, return_inverse=True)
    days, day_index = np.unique(unique // 86400, return_inverse=True)
    day_texts = [d + "T" for d in np.datetime_as_string(days.astype("datetime64[D]"), unit="D").tolist()]
    clock_texts = _clock_texts()
    texts = [day_texts[d] + clock_texts[t] for d, t in zip(day_index.tolist(), (unique % 86400).tolist(), strict=True)]
    shared = [texts[i] for i in inverse.tolist()]
    out, start = [], 0
    for c in columns:
        out.append(shared[start : start + len(c)])
        start += len(c)
    return out


@cache
def _phone_numbers() -> list[str]:
    """80,000 distinct numbers in assorted formats, shared by the records that use them."""
    return [fmt.format(d) for fmt in PHONE_FORMATS for d in range(10000)]


@cache
def _mobile_numbers() -> list[str]:
    return [f"+1 555 {d:07d}" for d in range(0, 10**7, 97)]


@cache
def _clock_texts() -> list[str]:
    """``HH:MM:SS.000+0000`` for every second of a day."""
    return [f"{h:02d}:{m:02d}:{s:02d}.000+0000" for h in range(24) for m in range(60) for s in range(60)]


def _dates(seconds: np.ndarray[Any, Any]) -> list[str]:
    """``YYYY-MM-DD`` text; equal days share one string object."""
    days = seconds.astype("datetime64[D]")
    unique, inverse = np.unique(days, return_inverse=True)
    texts: list[str] = np.datetime_as_string(unique, unit="D").tolist()
    return [texts[i] for i in inverse.tolist()]


def _audit_columns(rng: Rng, n: int, now: datetime) -> dict[str, list[Any]]:
    """CreatedDate, LastModifiedDate and SystemModstamp with realistic spread and ties."""
    end = np.datetime64(now.replace(tzinfo=None), "s")
    span = 2 * 365 * 24 * 3600
    modified = end - rng.integers(60, span, n) * _SECOND
    on_minute = rng.random(n) < 0.3
    modified[on_minute] = modified[on_minute].astype("datetime64[m]").astype("datetime64[s]")
    mass = rng.random(n) < 0.1
    mass_stamps = end - rng.integers(3600, span, 20) * _SECOND
    modified[mass] = mass_stamps[rng.integers(0, 20, int(mass.sum()))]
    created = modified - rng.integers(0, 400 * 24 * 3600, n) * _SECOND
    created = np.minimum(created, modified)
    system = modified.copy()
    later = rng.random(n) < 0.05
    system[later] = np.minimum(end, modified[later] + rng.integers(1, 30 * 24 * 3600, int(later.sum())) * _SECOND)
    created_text, modified_text, system_text = _datetimes(created, modified, system)
    return {"CreatedDate": created_text, "LastModifiedDate": modified_text, "SystemModstamp": system_text}


def _people(rng: Rng, n: int) -> dict[str, list[Any]]:
    first_idx = rng.integers(0, len(FIRST_NAMES), n).tolist()
    last_idx = rng.integers(0, len(LAST_NAMES), n).tolist()
    domain_idx = rng.integers(0, len(DOMAINS), n).tolist()
    serial = rng.integers(1, 100000, n).tolist()
    first = [FIRST_NAMES[i][0] for i in first_idx]
    last = [LAST_NAMES[i][0] for i in last_idx]
    emails: list[str | None] = [
        f"{FIRST_NAMES[f][1]}.{LAST_NAMES[la][1]}{s}@{DOMAINS[d]}"
        for f, la, s, d in zip(first_idx, last_idx, serial, domain_idx, strict=True)
    ]
    for k, i in enumerate(_rows(rng, n, 0.02)):
        slug = f"{FIRST_NAMES[first_idx[i]][1]}.{LAST_NAMES[last_idx[i]][1]}"
        emails[i] = [
            f"{slug}.at.example.com",
            f"{slug}@",
            f"@{DOMAINS[domain_idx[i]]}",
            f"{slug}@@example.com",
            f"{slug} x@example.com",
            f"{slug}@example.com.",
            f"{slug}@localhost",
        ][k % 7]
    for i in _rows(rng, n, 0.01):
        emails[i] = f"  {emails[i]} "
    dup_rows = _rows(rng, n, 0.03)
    sources = rng.integers(0, n, len(dup_rows)).tolist()
    for k, (i, j) in enumerate(zip(dup_rows, sources, strict=True)):
        email = emails[j]
        emails[i] = email.upper() if email and k % 2 else email
    _blank(rng, emails, 0.04)
    _blank(rng, first, 0.03)
    for i in _rows(rng, n, 0.002):
        last[i] = ("Wolfeschlegelsteinhausenbergerdorff" * 3)[:80]
    phones = _pick(rng, _phone_numbers(), n)
    mobiles = _pick(rng, _mobile_numbers(), n)
    titles = _pick(rng, TITLES, n, none_rate=0.2)
    for i in _rows(rng, n, 0.002):
        titles[i] = (
            "Senior Vice President of Global Strategic Marketing Operations and Demand Generation "
            "for Europe, Middle East, Africa and Asia-Pacific Regions"
        )[:128].ljust(128, ".")
    descriptions = _pick(rng, DESCRIPTIONS, n, none_rate=0.85)
    for i in _rows(rng, n, 0.0005):
        descriptions[i] = ("Very long note. " * 2000)[: int(rng.integers(5000, 32000))]
    return {
        "Salutation": _pick(rng, list(SALUTATIONS), n, none_rate=0.3),
        "FirstName": first,
        "LastName": last,
        "Email": emails,
        "Phone": _blank(rng, phones, 0.15),
        "MobilePhone": _blank(rng, mobiles, 0.6),
        "Title": titles,
        "Description": descriptions,
        "LeadSource": _pick(rng, list(LEAD_SOURCES), n, none_rate=0.15),
        "HasOptedOutOfEmail": (rng.random(n) < 0.08).tolist(),
    }


def _leads(rng: Rng, n: int, now: datetime, contact_ids: list[str]) -> dict[str, list[Any]]:
    columns = _people(rng, n)
    columns.update(_audit_columns(rng, n, now))
    places = rng.integers(0, len(PLACES), n).tolist()
    heads = rng.integers(0, len(COMPANY_HEADS), n).tolist()
    tails = rng.integers(0, len(COMPANY_TAILS), n).tolist()
    names = [[f"{head} {tail}" for tail in COMPANY_TAILS] for head in COMPANY_HEADS]
    companies = [names[h][t] for h, t in zip(heads, tails, strict=True)]
    for i in _rows(rng, n, 0.002):
        companies[i] = ("International Consolidated Amalgamated Holdings " * 6)[:255]
    sites = [f"https://www.{head.lower().replace(' ', '')}.example" for head in COMPANY_HEADS]
    websites = [sites[h] for h in heads]
    status_names = [s for s, _ in LEAD_STATUS_WEIGHTS]
    statuses = [status_names[i] for i in rng.choice(len(status_names), n, p=[w for _, w in LEAD_STATUS_WEIGHTS])]
    converted = [s == "Closed - Converted" for s in statuses]
    converted_to: list[str | None] = [None] * n
    converted_on: list[str | None] = [None] * n
    if contact_ids:
        picks = rng.integers(0, len(contact_ids), n).tolist()
        for i in np.flatnonzero(converted).tolist():
            converted_to[i] = contact_ids[picks[i]]
            converted_on[i] = columns["LastModifiedDate"][i][:10]
    else:
        statuses = ["Working - Contacted" if c else s for c, s in zip(converted, statuses, strict=True)]
        converted = [False] * n
    revenue = np.round(rng.lognormal(14, 1.5, n), -3).tolist()
    employees = np.maximum(1, rng.lognormal(4, 1.5, n)).astype(int).tolist()
    end = np.datetime64(now.replace(tzinfo=None), "s")
    birth = np.datetime64("1950-01-01") + rng.integers(0, 55 * 365, n) * np.timedelta64(1, "D")
    activity = end - rng.integers(0, 365 * 24 * 3600, n) * _SECOND
    columns.update(
        {
            "Company": companies,
            "City": _blank(rng, [PLACES[p][0] for p in places], 0.1),
            "Country": _blank(rng, [PLACES[p][1] for p in places], 0.1),
            "Website": _blank(rng, websites, 0.4),
            "Status": statuses,
            "Industry": _pick(rng, list(INDUSTRIES), n, none_rate=0.2),
            "Rating": _pick(rng, list(RATINGS), n, none_rate=0.4),
            "AnnualRevenue": _blank(rng, revenue, 0.3),
            "NumberOfEmployees": _blank(rng, employees, 0.3),
            "IsConverted": converted,
            "ConvertedContactId": converted_to,
            "ConvertedDate": converted_on,
            "Interests__c": _pick(rng, INTEREST_SETS, n, none_rate=0.5),
            "Score__c": _blank(rng, np.round(rng.random(n) * 100, 2).tolist(), 0.4),
            "Discount__c": _blank(rng, np.round(rng.random(n) * 50, 2).tolist(), 0.7),
            "Birthdate__c": _blank(rng, _dates(birth), 0.7),
            "LastActivityDate": _blank(rng, _dates(activity), 0.5),
        }
    )
    return columns


def _contacts(rng: Rng, n: int, now: datetime) -> dict[str, list[Any]]:
    columns = _people(rng, n)
    columns.update(_audit_columns(rng, n, now))
    places = rng.integers(0, len(PLACES), n).tolist()
    end = np.datetime64(now.replace(tzinfo=None), "s")
    birth = np.datetime64("1950-01-01") + rng.integers(0, 55 * 365, n) * np.timedelta64(1, "D")
    activity = end - rng.integers(0, 365 * 24 * 3600, n) * _SECOND
    columns.update(
        {
            "Department": _pick(rng, DEPARTMENTS, n, none_rate=0.3),
            "MailingCity": _blank(rng, [PLACES[p][0] for p in places], 0.1),
            "MailingCountry": _blank(rng, [PLACES[p][1] for p in places], 0.1),
            "Birthdate": _blank(rng, _dates(birth), 0.6),
            "LastActivityDate": _blank(rng, _dates(activity), 0.5),
            "Preferred_Language__c": _pick(rng, list(LANGUAGES), n, none_rate=0.5),
        }
    )
    return columns


STREETS = [
    "1 Market Street",
    "221B Baker Street",
    "Friedrichstraße 43",
    "12 rue de la Paix",
    "Avenida Paulista, 1578",
    "1-1 Marunouchi",
    "500 Oracle Parkway\nBuilding 3",
    'Unit 4, "The Old Mill"',
    "Bahnhofstrasse 1",
    "Calle de Alcalá 50",
]
STATES = ["CA", "NY", "TX", "WA", "Ontario", "Bayern", "Île-de-France", "NSW", "Karnataka"]
# Approximate coordinates for geocoded records.
COORDINATES = [(40.7128, -74.006), (37.7749, -122.4194), (51.5074, -0.1278), (52.52, 13.405), (35.6762, 139.6503)]


def _user_ids(n: int) -> list[str]:
    """The org's users: the integration user first, then a few sales reps who own records."""
    return [make_id(KEY_PREFIXES["User"], k) for k in range(1, n + 1)]


def _ownership(rng: Rng, n: int) -> dict[str, list[Any]]:
    users = _user_ids(6)
    return {
        "OwnerId": _pick(rng, users[1:], n),
        "CreatedById": _pick(rng, users[:3], n),
        "LastModifiedById": _pick(rng, users[:3], n),
    }


def _address(rng: Rng, n: int, prefix: str) -> dict[str, list[Any]]:
    geocoded = rng.random(n) < 0.3
    coordinates = np.array(COORDINATES)[rng.integers(0, len(COORDINATES), n)] + (rng.random((n, 2)) - 0.5)
    coordinates = np.round(coordinates, 6).astype(object)
    coordinates[~geocoded] = None
    postal = np.char.zfill(rng.integers(1000, 99999, n).astype(str), 5).tolist()
    return {
        prefix + "Street": _pick(rng, STREETS, n, none_rate=0.3),
        prefix + "State": _pick(rng, STATES, n, none_rate=0.6),
        prefix + "PostalCode": _blank(rng, postal, 0.4),
        prefix + "Latitude": coordinates[:, 0].tolist(),
        prefix + "Longitude": coordinates[:, 1].tolist(),
        prefix + "GeocodeAccuracy": ["Address" if g else None for g in geocoded.tolist()],
    }


def _flags(rng: Rng, n: int, **rates: float) -> dict[str, list[Any]]:
    return {name: (rng.random(n) < rate).tolist() for name, rate in rates.items()}


def _lead_extras(rng: Rng, n: int, now: datetime) -> dict[str, list[Any]]:
    columns = _ownership(rng, n)
    columns.update(_address(rng, n, ""))
    columns.update(_flags(rng, n, DoNotCall=0.03, HasOptedOutOfFax=0.02, IsUnreadByOwner=0.1))
    columns["Fax"] = _blank(rng, _pick(rng, _phone_numbers(), n), 0.95)
    return columns


def _contact_extras(rng: Rng, n: int, now: datetime) -> dict[str, list[Any]]:
    columns = _ownership(rng, n)
    columns.update(_address(rng, n, "Mailing"))
    columns.update(_flags(rng, n, DoNotCall=0.03, HasOptedOutOfFax=0.02))
    columns["Fax"] = _blank(rng, _pick(rng, _phone_numbers(), n), 0.95)
    columns["HomePhone"] = _blank(rng, _pick(rng, _phone_numbers(), n), 0.8)
    return columns


def _campaigns(rng: Rng, n: int, now: datetime) -> dict[str, list[Any]]:
    columns = _audit_columns(rng, n, now)
    start = [now.date() - timedelta(days=int(d)) for d in rng.integers(0, 700, n).tolist()]
    columns.update(
        {
            "Name": [f"{now.year - i % 3} {CAMPAIGN_TYPES[i % len(CAMPAIGN_TYPES)]} #{i + 1}" for i in range(n)],
            "Type": [CAMPAIGN_TYPES[i % len(CAMPAIGN_TYPES)] for i in range(n)],
            "Status": _pick(rng, list(CAMPAIGN_STATUSES), n),
            "IsActive": (rng.random(n) < 0.6).tolist(),
            "StartDate": [d.isoformat() for d in start],
            "EndDate": [(d + timedelta(days=30)).isoformat() for d in start],
        }
    )
    return columns


def _members(
    rng: Rng, n: int, now: datetime, campaign_ids: list[str], lead_ids: list[str], contact_ids: list[str]
) -> dict[str, list[Any]]:
    columns = _audit_columns(rng, n, now)
    from_lead = rng.random(n) < 0.7
    n_leads = min(int(from_lead.sum()), len(lead_ids))
    n_contacts = min(n - n_leads, len(contact_ids))
    # Each person joins at most one campaign here, so (campaign, person) pairs are unique.
    lead_rows = rng.choice(len(lead_ids), n_leads, replace=False).tolist()
    contact_rows = rng.choice(len(contact_ids), n_contacts, replace=False).tolist()
    lead_col: list[str | None] = [lead_ids[r] for r in lead_rows] + [None] * (n - n_leads)
    contact_col: list[str | None] = (
        [None] * n_leads + [contact_ids[r] for r in contact_rows] + [None] * (n - n_leads - n_contacts)
    )
    statuses = ["Responded" if r else "Sent" for r in (rng.random(n) < 0.3).tolist()]
    columns.update(
        {
            "CampaignId": _pick(rng, campaign_ids, n),
            "LeadId": lead_col,
            "ContactId": contact_col,
            "Status": statuses,
            "FirstRespondedDate": [
                m[:10] if s == "Responded" else None for s, m in zip(statuses, columns["LastModifiedDate"], strict=True)
            ],
        }
    )
    return columns
