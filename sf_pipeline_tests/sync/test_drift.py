"""Drift on its own: the org's COUNT() per object (from the sandbox org over HTTPS) against the
users in scope and not deleted (SQLite), and the reasons given when it is not zero."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sf_pipeline.sandbox.testing import SandboxHandle
from sf_pipeline.storage.database import Database
from sf_pipeline.storage.models import Integration, User
from sf_pipeline.sync.drift import ObjectDrift, as_numbers, count_soql, explain, measure, org_counts
from sf_pipeline.sync.manifests import ObjectReconciliation
from sf_pipeline_tests.dbs import migrated_database
from sf_pipeline_tests.harness import pipeline


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    with migrated_database("sqlite", tmp_path) as database:
        yield database


def add_integration(database: Database, name: str) -> int:
    with database.session() as session:
        row = Integration(name=name, project_id=42, login_url="https://login.salesforce.com")
        session.add(row)
        session.flush()
        return row.id


def add_users(database: Database, integration_id: int, object_name: str, n: int, **flags: bool) -> None:
    with database.session() as session:
        for i in range(n):
            sf_id = f"{object_name[:3]}{integration_id}{len(flags)}{i:012d}"[:18]
            session.add(User(project_id=42, external_id=f"sf_x_{object_name}_{sf_id}_{sorted(flags.items())}",
                             integration_id=integration_id, source_object=object_name, source_id=sf_id, **flags))


def test_the_count_query_has_the_rules_where_clause_only_when_there_are_rules() -> None:
    assert count_soql("Lead", None) == "SELECT COUNT() FROM Lead"
    assert count_soql("Lead", "Rating = 'Hot'") == "SELECT COUNT() FROM Lead WHERE Rating = 'Hot'"


def test_org_counts_ask_the_org_once_per_object_for_live_records_under_the_rules(
    small_sandbox: SandboxHandle, tmp_path: Path
) -> None:
    org = small_sandbox.org
    leads = org.records("Lead")
    org.delete("Lead", [leads[0]["Id"]])
    hot = sum(1 for r in org.records("Lead") if r.get("Rating") == "Hot")
    with pipeline(small_sandbox, f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path) as p, \
            p.services.open_client(p.name) as client:
        before = client.api_calls
        everything = org_counts(client, [("Lead", None), ("Contact", None)])
        under_rules = org_counts(client, [("Lead", "Rating = 'Hot'")])
        assert client.api_calls - before == 3
    assert everything == {"Lead": len(leads) - 1, "Contact": len(org.records("Contact"))}
    assert under_rules == {"Lead": hot} and 0 < hot < len(leads) - 1


def test_measure_counts_only_the_integrations_in_scope_live_users_of_each_object(database: Database) -> None:
    mine, other = add_integration(database, "acme"), add_integration(database, "other")
    add_users(database, mine, "Lead", 5)
    add_users(database, mine, "Lead", 2, deleted=True)
    add_users(database, mine, "Lead", 3, in_scope=False)
    add_users(database, mine, "Contact", 4)
    add_users(database, other, "Lead", 7)
    drifts = measure(database.session, mine, {"Lead": 6, "Contact": 4, "CampaignMember": 1})
    assert drifts == [ObjectDrift("Lead", 6, 5), ObjectDrift("Contact", 4, 4), ObjectDrift("CampaignMember", 1, 0)]
    assert as_numbers(drifts) == {"Lead": 1, "Contact": 0, "CampaignMember": 1}


def test_negative_drift_means_users_the_org_no_longer_has() -> None:
    assert ObjectDrift("Lead", org_count=3, users=5).drift == -2


def test_objects_without_drift_get_no_reason() -> None:
    assert explain([ObjectDrift("Lead", 4, 4)], {"Lead": ObjectReconciliation("Lead", in_scope_ids=4)}) == {}


def test_drift_on_an_object_not_reconciled_says_so() -> None:
    assert explain([ObjectDrift("Contact", 4, 3)], {}) == {"Contact": "not reconciled in this run"}


def test_invalid_records_and_an_org_that_moved_during_the_run_are_both_named() -> None:
    reasons = explain([ObjectDrift("Lead", 10, 8)],
                      {"Lead": ObjectReconciliation("Lead", in_scope_ids=9, invalid_records=2)})
    assert reasons["Lead"].startswith("2 record(s) under the rules failed validation")
    assert "the Id scan saw 9 record(s)" in reasons["Lead"] and "COUNT() found 10" in reasons["Lead"]


def test_unexplained_drift_after_a_clean_reconcile_asks_to_reconcile_again() -> None:
    reasons = explain([ObjectDrift("Lead", 10, 11)], {"Lead": ObjectReconciliation("Lead", in_scope_ids=10)})
    assert reasons == {"Lead": "11 in-scope user(s) for 10 record(s) under the rules with no change seen during the "
                                "run; reconcile again and report it if it persists"}
