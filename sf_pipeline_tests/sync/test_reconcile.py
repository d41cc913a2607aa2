"""Reconciliation, drift, conversion links and parent-only changes, on SQLite and PostgreSQL,
against the sandbox org over HTTPS."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from sf_pipeline.sandbox.state import Org
from sf_pipeline.sandbox.testing import SandboxHandle, serve_in_thread
from sf_pipeline.storage.models import BulkQueryJob, User
from sf_pipeline.sync.reconcile_service import run_reconcile
from sf_pipeline.sync.service import HealthCheckFailed
from sf_pipeline_tests.conftest import trust
from sf_pipeline_tests.harness import Pipeline, pipeline

SPEC = """
name: {name}
project_id: 42
login_url: {login_url}
objects:
  Lead:
    rules:
      - {{field: Rating, operator: equals, value: Hot}}
  Contact: {{}}
  CampaignMember: {{}}
mappings:
  - {{field: Email, property: email}}
  - {{field: FirstName, property: first_name}}
  - {{field: Status, property: member_status, object: CampaignMember}}
  - {{field: Lead.Email, property: lead_email, object: CampaignMember}}
"""
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def org_sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxHandle]:
    """A small hand-made org on a frozen clock that the pipeline's clock follows."""
    org = Org(seed=5)
    org.clock.freeze(START)
    leads = org.create("Lead", [
        {"LastName": f"L{i}", "Company": "Acme", "Email": f"l{i}@acme.test", "FirstName": f"F{i}",
         "Rating": "Hot" if i < 4 else "Cold"} for i in range(6)])
    contacts = org.create("Contact", [{"LastName": f"C{i}", "Email": f"c{i}@acme.test"} for i in range(2)])
    [campaign] = org.create("Campaign", [{"Name": "Spring"}])
    org.create("CampaignMember", [{"CampaignId": campaign, "LeadId": leads[0], "Status": "Sent"},
                                  {"CampaignId": campaign, "ContactId": contacts[0], "Status": "Sent"}])
    with serve_in_thread(org) as sandbox:
        trust(monkeypatch, sandbox)
        yield sandbox


def later(org: Org, **delta: float) -> None:
    org.clock.freeze(org.clock.now() + timedelta(**delta))


def user(p: Pipeline, object_name: str, sf_id: str) -> User:
    with p.database.session() as session:
        found = session.scalar(select(User).where(User.external_id == f"sf_acme_{object_name}_{sf_id}"))
        assert found is not None, f"no user for {object_name} {sf_id}"
        session.expunge(found)
        return found


def reconcile(p: Pipeline) -> dict[str, Any]:
    return run_reconcile(p.services, p.name, f"reconcile-{uuid.uuid4().hex}")


def table(p: Pipeline) -> list[tuple[Any, ...]]:
    with p.database.session() as session:
        return sorted(session.execute(select(
            User.external_id, User.email, User.data, User.deleted, User.deleted_reason, User.in_scope,
            User.converted_to)).tuples().all())


@pytest.fixture
def synced(org_sandbox: SandboxHandle, database_url: str, tmp_path: Path) -> Iterator[Pipeline]:
    org = org_sandbox.org
    with pipeline(org_sandbox, database_url, tmp_path, spec=SPEC, clock=org.clock.now) as p:
        first = p.sync()
        assert first["reconcile"]["reasons"] == ["full sync"]
        assert first["drift"] == {"Lead": 0, "Contact": 0, "CampaignMember": 0}
        later(org, minutes=30)
        yield p


def hot_leads(org: Org) -> list[str]:
    return [r["Id"] for r in org.records("Lead") if r["Rating"] == "Hot"]


def test_purged_record_is_flagged_by_reconcile_and_drift_shows_it_until_then(synced: Pipeline) -> None:
    org = synced.sandbox.org
    gone = hot_leads(org)[1]
    org.purge("Lead", [gone])  # a hard delete: queryAll never returns it
    later(org, minutes=30)
    incremental = synced.sync()
    assert "reconcile" not in incremental
    assert user(synced, "Lead", gone).deleted is False  # an incremental sync cannot see it
    assert incremental["drift"]["Lead"] == -1
    result = reconcile(synced)
    assert result["status"] == "completed"
    assert result["objects"]["Lead"]["purged"] == 1
    purged = user(synced, "Lead", gone)
    assert (purged.deleted, purged.deleted_reason) == (True, "purged")
    assert result["drift"] == {"Lead": 0, "Contact": 0, "CampaignMember": 0}
    assert "drift_reasons" in result and result["drift_reasons"] == {}
    # Nothing else was flagged, and a second reconcile changes nothing.
    flagged = [row for row in table(synced) if row[3]]
    assert [row[0] for row in flagged] == [f"sf_acme_Lead_{gone}"]
    before = table(synced)
    again = reconcile(synced)
    assert again["objects"]["Lead"]["purged"] == 0
    assert table(synced) == before


def test_record_leaving_the_rules_is_out_of_scope_and_back_in_scope_when_it_returns(synced: Pipeline) -> None:
    org = synced.sandbox.org
    lead = hot_leads(org)[2]
    org.update("Lead", lead, {"Rating": "Cold", "FirstName": "Gone"})
    later(org, minutes=30)
    incremental = synced.sync()
    assert user(synced, "Lead", lead).in_scope is True
    assert incremental["drift"]["Lead"] == -1
    result = reconcile(synced)
    assert result["objects"]["Lead"]["out_of_scope"] == 1
    left = user(synced, "Lead", lead)
    assert (left.in_scope, left.deleted) == (False, False)
    assert left.data.get("first_name") != "Gone"  # values stay as last synced in scope
    assert result["drift"]["Lead"] == 0
    later(org, minutes=30)
    org.update("Lead", lead, {"Rating": "Hot", "FirstName": "Back"})
    later(org, minutes=30)
    back = synced.sync()
    returned = user(synced, "Lead", lead)
    assert (returned.in_scope, returned.data.get("first_name")) == (True, "Back")
    assert back["drift"]["Lead"] == 0


def user_flags(p: Pipeline, object_name: str, sf_id: str) -> tuple[bool, bool, str | None]:
    found = user(p, object_name, sf_id)
    return found.deleted, found.in_scope, found.deleted_reason


def test_record_undeleted_outside_the_rules_is_no_longer_deleted_but_out_of_scope(synced: Pipeline) -> None:
    """No sync fetches a record outside the rules, so only reconciliation can see that it came
    back from the Recycle Bin: its user is then out of scope, not deleted."""
    org = synced.sandbox.org
    lead = hot_leads(org)[2]
    org.update("Lead", lead, {"Rating": "Cold"})
    later(org, minutes=30)
    synced.sync()
    assert reconcile(synced)["objects"]["Lead"]["out_of_scope"] == 1
    assert user_flags(synced, "Lead", lead) == (False, False, None)
    org.delete("Lead", [lead])
    later(org, minutes=30)
    synced.sync()
    assert reconcile(synced)["objects"]["Lead"]["deleted"] == 1
    assert user_flags(synced, "Lead", lead) == (True, False, "deleted")
    org.undelete("Lead", [lead])
    later(org, minutes=30)
    incremental = synced.sync()
    assert user_flags(synced, "Lead", lead) == (True, False, "deleted")  # the sync's query cannot see it
    result = reconcile(synced)
    assert result["objects"]["Lead"]["out_of_scope"] == 1
    assert user_flags(synced, "Lead", lead) == (False, False, None)
    assert (incremental["drift"]["Lead"], result["drift"]["Lead"]) == (0, 0)
    assert reconcile(synced)["objects"]["Lead"]["out_of_scope"] == 0  # settled: nothing to flag again
    # Back under the rules, the next sync fetches it like any other.
    org.update("Lead", lead, {"Rating": "Hot", "FirstName": "Back"})
    later(org, minutes=30)
    synced.sync()
    assert user_flags(synced, "Lead", lead) == (False, True, None)
    assert user(synced, "Lead", lead).data["first_name"] == "Back"


def test_in_scope_record_deleted_then_undeleted_and_moved_out_of_the_rules_is_out_of_scope(
    synced: Pipeline,
) -> None:
    org = synced.sandbox.org
    lead = hot_leads(org)[1]
    org.delete("Lead", [lead])
    later(org, minutes=30)
    synced.sync()  # the incremental queryAll sees IsDeleted under the rules
    assert user(synced, "Lead", lead).deleted is True
    org.undelete("Lead", [lead])
    later(org, minutes=1)
    org.update("Lead", lead, {"Rating": "Cold"})  # out of the rules before any sync saw it back
    later(org, minutes=30)
    synced.sync()
    assert user(synced, "Lead", lead).deleted is True
    assert reconcile(synced)["objects"]["Lead"]["out_of_scope"] == 1
    assert user_flags(synced, "Lead", lead) == (False, False, None)
    # A full sync (which reconciles from its own extract) leaves it so.
    full = synced.sync(full=True)
    assert full["reconcile"]["objects"]["Lead"]["out_of_scope"] == 0
    assert user_flags(synced, "Lead", lead) == (False, False, None)


def test_record_in_scope_without_user_is_fetched_and_cold_lead_turning_hot_counts(synced: Pipeline) -> None:
    org = synced.sandbox.org
    with synced.database.session() as session:
        victim = session.scalar(select(User).where(User.source_object == "Contact"))
        assert victim is not None
        victim_ext = victim.external_id
        session.delete(victim)  # a user lost outside the sync
    result = reconcile(synced)
    assert result["objects"]["Contact"]["created"] == 1
    assert any(row[0] == victim_ext and not row[3] for row in table(synced))
    assert result["drift"]["Contact"] == 0
    assert org.count("Contact") == sum(1 for row in table(synced) if "_Contact_" in row[0] and not row[3])


def test_parent_only_change_reaches_campaign_member_user_on_incremental_sync(synced: Pipeline) -> None:
    org = synced.sandbox.org
    member = next(r for r in org.records("CampaignMember") if r["LeadId"])
    member_before = org.get("CampaignMember", member["Id"])["LastModifiedDate"]
    org.update("Lead", member["LeadId"], {"Email": "changed@acme.test"})
    assert org.get("CampaignMember", member["Id"])["LastModifiedDate"] == member_before
    later(org, minutes=30)
    summary = synced.sync()
    assert summary["watermarks"]["CampaignMember"]["full"] is False
    assert user(synced, "CampaignMember", member["Id"]).data["lead_email"] == "changed@acme.test"
    # The watermark covers the parent's timestamp.
    lead_stamp = org.get("Lead", member["LeadId"])["LastModifiedDate"]
    after = datetime.strptime(lead_stamp, "%Y-%m-%dT%H:%M:%S.%f%z")
    assert datetime.fromisoformat(summary["watermarks"]["CampaignMember"]["after"]) == after
    assert summary["drift"]["CampaignMember"] == 0


def test_converted_lead_links_to_its_contact_user_without_merging(synced: Pipeline) -> None:
    org = synced.sandbox.org
    lead = hot_leads(org)[3]
    contact = org.convert_lead(lead)
    later(org, minutes=30)
    summary = synced.sync()
    converted = user(synced, "Lead", lead)
    assert converted.converted_contact_id == contact
    assert converted.converted_to == f"sf_acme_Contact_{contact}"
    assert converted.converted_at is not None and converted.converted_at.date() == START.date()
    contact_user = user(synced, "Contact", contact)
    assert contact_user.external_id != converted.external_id and not contact_user.deleted and not converted.deleted
    assert summary["drift"] == {"Lead": 0, "Contact": 0, "CampaignMember": 0}


def test_delete_past_the_15_day_horizon_is_caught_by_the_next_sync(synced: Pipeline) -> None:
    org = synced.sandbox.org
    lead = hot_leads(org)[0]
    org.delete("Lead", [lead])
    later(org, days=16)  # the sandbox empties its Recycle Bin after 15 days
    assert not org.query(f"SELECT Id FROM Lead WHERE Id = '{lead}'", include_deleted=True)["records"]
    summary = synced.sync()
    assert any("15-day" in reason for reason in summary["reconcile"]["reasons"])
    gone = user(synced, "Lead", lead)
    assert (gone.deleted, gone.deleted_reason) == (True, "purged")
    assert summary["drift"] == {"Lead": 0, "Contact": 0, "CampaignMember": 0}


def test_reconcile_of_missing_rule_field_fails_with_field_mappings_message_and_changes_nothing(
    synced: Pipeline,
) -> None:
    org = synced.sandbox.org
    org.purge("Lead", [hot_leads(org)[1]])
    before = table(synced)
    org.rename_field("Lead", "Rating", "Rating__c")
    with pytest.raises(HealthCheckFailed, match=r"field_mappings: Field not found: Lead\.Rating"):
        reconcile(synced)
    assert table(synced) == before
    org.rename_field("Lead", "Rating__c", "Rating")
    assert reconcile(synced)["objects"]["Lead"]["purged"] == 1


def test_reconcile_of_object_that_no_longer_exists_fails_and_changes_nothing(synced: Pipeline) -> None:
    org = synced.sandbox.org
    before = table(synced)
    schema = org.schemas.pop("CampaignMember")  # the object is gone from describe and SOQL
    try:
        with pytest.raises(HealthCheckFailed, match=r"field_mappings: "):
            reconcile(synced)
    finally:
        org.schemas["CampaignMember"] = schema
    assert table(synced) == before


class DropsAt:
    """The real client, except that its ``fail_at``-th query (or COUNT) raises as a dropped
    connection would after the client's own retries: a reconcile interrupted at that point."""

    def __init__(self, inner: Any, fail_at: int) -> None:
        self.inner, self.fail_at, self.calls = inner, fail_at, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _tick(self) -> None:
        self.calls += 1
        if self.calls == self.fail_at:
            raise ConnectionError("connection dropped")

    def query_pages(self, soql: str, **options: Any) -> Any:
        self._tick()
        return self.inner.query_pages(soql, **options)

    def count(self, soql: str) -> int:
        self._tick()
        return int(self.inner.count(soql))


def test_interrupted_reconcile_flags_nothing_and_completes_next_run(synced: Pipeline) -> None:
    org = synced.sandbox.org
    gone, cold = hot_leads(org)[1], hot_leads(org)[2]
    org.purge("Lead", [gone])
    org.update("Lead", cold, {"Rating": "Cold"})
    with synced.database.session() as session:  # and one in-scope Contact with no user
        lost = session.scalar(select(User).where(User.source_object == "Contact"))
        assert lost is not None
        session.delete(lost)
    before = table(synced)
    real_open = synced.services.open_client
    fail_at = 1
    while True:
        synced.services.open_client = lambda n, k=fail_at: DropsAt(real_open(n), k)
        try:
            result = reconcile(synced)
            break
        except ConnectionError:
            now = table(synced)
            was_flagged = {row[0] for row in before if row[3] or not row[5]}
            flagged = {row[0] for row in now if row[3] or not row[5]} - was_flagged
            assert flagged == set(), f"interrupted at query {fail_at} yet flagged {flagged}"
            # Re-fetched users may have been written; nothing else changed.
            assert {row[0] for row in now} >= {row[0] for row in before}
            fail_at += 1
    assert fail_at > 4  # it was interrupted at every query it makes
    synced.services.open_client = real_open
    assert (result["objects"]["Lead"]["purged"], result["objects"]["Lead"]["out_of_scope"]) == (1, 1)
    assert result["drift"] == {"Lead": 0, "Contact": 0, "CampaignMember": 0}
    assert user(synced, "Lead", hot_leads(org)[0]).deleted is False


def test_reconcile_api_cost_is_one_call_per_page_of_ids_plus_lookups_and_counts(synced: Pipeline) -> None:
    """The figures the README's cost per 100,000 records is computed from, counted by the org."""
    org = synced.sandbox.org
    org.create("Contact", [{"LastName": f"More{i}"} for i in range(450)])
    synced.services.page_size = 200  # Salesforce's smallest page
    synced.sync()
    in_scope = {"Lead": len(hot_leads(org)), "Contact": org.count("Contact"),
                "CampaignMember": org.count("CampaignMember")}
    org.counters.reset()
    reconcile(synced)
    counted = org.counters.snapshot()
    # First pages: one Id scan and one COUNT() per object; then one call per further page of 200.
    assert counted["query"] == 2 * len(in_scope)
    assert counted["query_more"] == sum(-(-n // 200) - 1 for n in in_scope.values()) == 2
    gone = hot_leads(org)[:3]
    org.purge("Lead", gone)
    org.counters.reset()
    reconcile(synced)
    # Three leftover users: one lookup by Id (up to 200 Ids a call).
    assert org.counters.snapshot()["query"] == 2 * len(in_scope) + 1


# ----------------------------------------------------------------------------- which API scans Ids


def with_api(api: str) -> str:
    return SPEC.replace("project_id: 42\n", f"project_id: 42\napi: {api}\n")


@contextmanager
def synced_with(sandbox: SandboxHandle, database_url: str, home: Path, api: str) -> Iterator[Pipeline]:
    home.mkdir()
    with pipeline(sandbox, database_url, home, spec=with_api(api), clock=sandbox.org.clock.now) as p:
        p.services.bulk_page_records = 2  # several results pages per Bulk scan
        p.sync()
        yield p


def drift_the_org(org: Org) -> tuple[str, str]:
    """One Hot lead purged, one turned Cold: what only reconciliation sees."""
    purged, cooled = hot_leads(org)[:2]
    org.purge("Lead", [purged])
    org.update("Lead", cooled, {"Rating": "Cold"})
    later(org, minutes=30)
    return purged, cooled


def id_scan_jobs(org: Org) -> list[tuple[str, str]]:
    return [(job.operation, job.query) for job in org.bulk.jobs(org) if job.query.startswith("SELECT Id FROM")]


def flags(result: dict[str, Any]) -> dict[str, tuple[int, int, int]]:
    return {name: (o["purged"], o["out_of_scope"], o["in_scope_ids"]) for name, o in result["objects"].items()}


def test_reconcile_with_api_bulk_scans_ids_over_bulk_and_flags_the_same_users_as_rest(
    org_sandbox: SandboxHandle, database_url: str, tmp_path: Path
) -> None:
    org = org_sandbox.org
    with (synced_with(org_sandbox, f"sqlite:///{tmp_path / 'rest.db'}", tmp_path / "rest", "rest") as rest,
          synced_with(org_sandbox, database_url, tmp_path / "bulk", "bulk") as bulk):
        purged, cooled = drift_the_org(org)
        over_rest = reconcile(rest)
        jobs_before = len(id_scan_jobs(org))
        over_bulk = reconcile(bulk)
        scans = id_scan_jobs(org)[jobs_before:]
        assert {n: o["scan"] for n, o in over_bulk["objects"].items()} == dict.fromkeys(
            ("Lead", "Contact", "CampaignMember"), "bulk")
        assert {o["scan_reason"] for o in over_bulk["objects"].values()} == {"api: bulk"}
        assert sorted(scans) == sorted([("query", "SELECT Id FROM Lead WHERE (Rating = 'Hot')"),
                                        ("query", "SELECT Id FROM Contact"),
                                        ("query", "SELECT Id FROM CampaignMember")])
        assert {o["scan"] for o in over_rest["objects"].values()} == {"rest"}
        assert flags(over_bulk) == flags(over_rest)
        assert flags(over_bulk)["Lead"] == (1, 1, len(hot_leads(org)))
        assert table(bulk) == table(rest)
        assert (user(bulk, "Lead", purged).deleted_reason, user(bulk, "Lead", cooled).in_scope) == ("purged", False)
        assert over_bulk["drift"] == {"Lead": 0, "Contact": 0, "CampaignMember": 0}
        with bulk.database.session() as session:
            assert session.scalars(select(BulkQueryJob)).all() == []  # every scan job was crossed off


def test_failed_bulk_id_scan_falls_back_to_rest_with_the_same_result(
    org_sandbox: SandboxHandle, database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    org = org_sandbox.org
    with (synced_with(org_sandbox, f"sqlite:///{tmp_path / 'rest.db'}", tmp_path / "rest", "rest") as rest,
          synced_with(org_sandbox, database_url, tmp_path / "bulk", "bulk") as bulk):
        drift_the_org(org)
        over_rest = reconcile(rest)
        caplog.set_level(logging.INFO)
        org.fail_next_bulk_job("Query timed out in the sandbox")
        over_bulk = reconcile(bulk)
        # Objects are scanned in the summary's order: the first one's job is the one that fails.
        first, *others = over_bulk["objects"]
        scans = {n: o["scan"] for n, o in over_bulk["objects"].items()}
        assert scans == {first: "rest", **dict.fromkeys(others, "bulk")}
        assert over_bulk["objects"][first]["scan_reason"] == (
            "fell back from Bulk API 2.0: Bulk API job "
            f"{org.bulk.jobs(org)[-3].id} ended Failed: Query timed out in the sandbox")
        logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("sf_pipeline"))
        assert f"{first}: Bulk API 2.0 Id scan failed (" in logged and "falling back to REST" in logged
        assert flags(over_bulk) == flags(over_rest)
        assert flags(over_bulk)["Lead"][:2] == (1, 1)
        assert table(bulk) == table(rest)
        with bulk.database.session() as session:
            assert session.scalars(select(BulkQueryJob)).all() == []


def test_reconcile_with_api_rest_scans_ids_over_rest_and_creates_no_bulk_job(
    org_sandbox: SandboxHandle, database_url: str, tmp_path: Path
) -> None:
    org = org_sandbox.org
    with synced_with(org_sandbox, database_url, tmp_path / "rest", "rest") as rest:
        rest.services.bulk_threshold = 0  # every count is above it: the option alone keeps REST
        drift_the_org(org)
        jobs_before = org.bulk.count()
        result = reconcile(rest)
        assert {n: (o["scan"], o["scan_reason"]) for n, o in result["objects"].items()} == dict.fromkeys(
            ("Lead", "Contact", "CampaignMember"), ("rest", "api: rest"))
        assert org.bulk.count() == jobs_before
        assert flags(result)["Lead"][:2] == (1, 1)


def test_reconcile_under_auto_scans_over_bulk_only_objects_counted_above_the_threshold(synced: Pipeline) -> None:
    org = synced.sandbox.org
    synced.services.bulk_threshold = 2  # Lead has 4 Hot records, Contact 2, CampaignMember 2
    result = reconcile(synced)
    assert {n: o["scan"] for n, o in result["objects"].items()} == {
        "Lead": "bulk", "Contact": "rest", "CampaignMember": "rest"}
    assert result["objects"]["Lead"]["scan_reason"] == "COUNT() 4 > 2 records"
    assert result["objects"]["Contact"]["scan_reason"] == "COUNT() 2 <= 2 records"
    assert id_scan_jobs(org) == [("query", "SELECT Id FROM Lead WHERE (Rating = 'Hot')")]
