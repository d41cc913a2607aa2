"""The sync against a 50,000-record sandbox org, on SQLite and PostgreSQL: a full sync, then 500
changes (100 sharing one timestamp across a page boundary, 20 committed late), 10 deletions, and
a sync with no changes that writes nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from sf_pipeline.sandbox.clock import parse_datetime
from sf_pipeline.sandbox.testing import SandboxHandle, serve_in_thread
from sf_pipeline_tests.conftest import trust
from sf_pipeline_tests.harness import Pipeline, pipeline

RECORDS = 50_000
PAGE = 200  # Salesforce's smallest batch size, so 500 changes span several pages
PLAIN_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")


@pytest.fixture
def big_sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxHandle]:
    with serve_in_thread(records=RECORDS, seed=11) as sandbox:
        trust(monkeypatch, sandbox)
        yield sandbox


def lead_matches(record: dict) -> bool:  # type: ignore[type-arg]
    # Email is_set AND Status not_equals 'Closed - Not Converted' (SOQL: != keeps nulls).
    return bool(record["Email"]) and (record["Status"] or "").lower() != "closed - not converted"


def expected_users(sandbox: SandboxHandle) -> dict[str, dict]:  # type: ignore[type-arg]
    expected = {f"sf_acme_Lead_{r['Id']}": r for r in sandbox.org.records("Lead") if lead_matches(r)}
    expected.update({f"sf_acme_Contact_{r['Id']}": r for r in sandbox.org.records("Contact")})
    return expected


def assert_mapped(user: dict, record: dict) -> None:  # type: ignore[type-arg]
    assert user["source_id"] == record["Id"]
    if record["Email"] and PLAIN_EMAIL.match(record["Email"]) and len(record["Email"]) <= 320:
        assert user["email"] == record["Email"]
    else:
        assert user["email"] is None  # malformed or missing: dropped, the rest still synced
    assert user["data"].get("first_name") == (record["FirstName"] or None)
    assert user["data"].get("last_name") == (record["LastName"] or None)
    assert user["data"].get("unsubscribed") == record["HasOptedOutOfEmail"]


def contact_watermark(p: Pipeline) -> datetime:
    records = p.sandbox.org.records("Contact")
    return max(parse_datetime(r["LastModifiedDate"]) for r in records)


def test_full_incremental_delete_and_idle_syncs_keep_users_exact(
    big_sandbox: SandboxHandle, database_url: str, tmp_path: Path
) -> None:
    org = big_sandbox.org
    with pipeline(big_sandbox, database_url, tmp_path, page_size=2000) as p:
        # 1. Full sync: exactly one user per matching record, with the mapped values.
        first = p.sync()
        expected = expected_users(big_sandbox)
        users = p.users()
        assert set(users) == set(expected)
        assert first["created"] == len(expected)
        assert first["invalid_values"] > 0  # the generator's malformed emails were dropped, not fatal
        for ext_id, record in expected.items():
            assert_mapped(users[ext_id], record)

        # 2. 500 changes arranged around the incremental boundary.
        p.services.page_size = PAGE
        w = contact_watermark(p)
        lookback = timedelta(minutes=10)  # the default lookback_minutes
        contacts = sorted(org.records("Contact"), key=lambda r: r["Id"])
        reread = sum(1 for r in contacts if w - lookback <= parse_datetime(r["LastModifiedDate"]) <= w)
        late = org.create("Contact", [{"LastName": f"Late{i}", "FirstName": "Tardy", "Email": f"late{i}@x.example"}
                                      for i in range(20)], at=w - timedelta(seconds=30))
        # Put the 100-record tie group at window positions 150..249, across the 200-record page edge.
        n_before = (150 - reread - 20) % PAGE
        pool = iter(c["Id"] for c in contacts)
        fillers = [next(pool) for _ in range(n_before)]
        ties = [next(pool) for _ in range(100)]
        rest = [next(pool) for _ in range(500 - 20 - 100 - n_before)]
        mapped_rest, unmapped_rest = rest[: len(rest) // 2], rest[len(rest) // 2 :]
        for i, record_id in enumerate(fillers):
            org.update("Contact", record_id, {"FirstName": f"Filler{i}"}, at=w + timedelta(seconds=1 + i))
        tie_time = w + timedelta(seconds=1000)
        org.update_many("Contact", {rid: {"FirstName": "Tied"} for rid in ties}, at=tie_time)
        for i, record_id in enumerate(mapped_rest):
            org.update("Contact", record_id, {"FirstName": f"Later{i}"}, at=w + timedelta(seconds=2000 + i))
        for i, record_id in enumerate(unmapped_rest):  # Title is not mapped: no user changes
            org.update("Contact", record_id, {"Title": f"Title {i}"}, at=w + timedelta(seconds=3000 + i))
        before = p.users()

        second = p.sync()
        after = p.users()
        assert second["created"] == 20
        assert second["updated"] == len(fillers) + len(ties) + len(mapped_rest)
        assert second["deleted"] == 0
        for record_id in late:
            assert after[f"sf_acme_Contact_{record_id}"]["data"]["first_name"] == "Tardy"
        for record_id in ties:
            assert after[f"sf_acme_Contact_{record_id}"]["data"]["first_name"] == "Tied"
        for i, record_id in enumerate(fillers):
            assert after[f"sf_acme_Contact_{record_id}"]["data"]["first_name"] == f"Filler{i}"
        changed = {f"sf_acme_Contact_{r}" for r in [*fillers, *ties, *mapped_rest, *late]}
        for ext_id, user in before.items():
            if ext_id not in changed:
                assert after[ext_id] == user, f"{ext_id} was rewritten without a mapped change"
        assert set(after) == set(expected_users(big_sandbox))

        # 3. Ten deletions flag ten users; nothing is hard-deleted.
        doomed = [c["Id"] for c in contacts[-10:]]
        org.delete("Contact", doomed, at=w + timedelta(seconds=4000))
        third = p.sync()
        assert third["deleted"] == 10 and third["created"] == 0 and third["updated"] == 0
        flagged = p.users()
        assert sorted(k for k, u in flagged.items() if u["deleted"]) == sorted(f"sf_acme_Contact_{d}" for d in doomed)
        assert len(flagged) == len(after)

        # 4. A second sync with no changes writes nothing.
        idle = p.sync()
        assert (idle["created"], idle["updated"], idle["deleted"]) == (0, 0, 0)
        assert p.users() == flagged
