"""Reconciliation as steps of a run, on its own: each object's target (rules, parents, sync
fields), the extract-side decision of what to reconcile and the COUNT() per object, and the
on-demand entry refusing an integration whose setup is incomplete. The sandbox org serves
Salesforce over HTTPS; storage is SQLite."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sf_pipeline.salesforce.bulk import BulkQueryClient
from sf_pipeline.sandbox.state import Org
from sf_pipeline.sandbox.testing import serve_in_thread
from sf_pipeline.storage.integrations import get_integration
from sf_pipeline.storage.models import IntegrationStatus
from sf_pipeline.sync.bulk_extract import ExtractOptions, extract_objects
from sf_pipeline.sync.fields import CONVERSION_FIELDS
from sf_pipeline.sync.lifecycle import SetupIncompleteError
from sf_pipeline.sync.manifests import ExtractedObject
from sf_pipeline.sync.reconcile_service import before_diff, object_targets, run_reconcile
from sf_pipeline.sync.service import build_plans
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
  - {{field: Status, property: member_status, object: CampaignMember}}
  - {{field: Lead.Email, property: lead_email, object: CampaignMember}}
"""
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOT = 3


@pytest.fixture
def p(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Pipeline]:
    org = Org(seed=7)
    org.clock.freeze(START)
    leads = org.create("Lead", [{"LastName": f"L{i}", "Company": "Acme", "Email": f"l{i}@acme.test",
                                 "Rating": "Hot" if i < HOT else "Cold"} for i in range(5)])
    contacts = org.create("Contact", [{"LastName": f"C{i}", "Email": f"c{i}@acme.test"} for i in range(2)])
    [campaign] = org.create("Campaign", [{"Name": "Spring"}])
    org.create("CampaignMember", [{"CampaignId": campaign, "LeadId": leads[0], "Status": "Sent"},
                                  {"CampaignId": campaign, "ContactId": contacts[0], "Status": "Sent"}])
    with serve_in_thread(org) as sandbox:
        trust(monkeypatch, sandbox)
        with pipeline(sandbox, f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path, spec=SPEC,
                      clock=org.clock.now) as p:
            yield p


def extract(p: Pipeline, out: Path, *, full: bool) -> list[ExtractedObject]:
    """Every object through the REST extract, as a sync's extract step runs it."""
    with p.services.open_client(p.name) as client, p.database.session() as session:
        plans = build_plans(client, session, get_integration(session, p.name), force_full=full)
        return extract_objects(client, BulkQueryClient(client), plans, out_dir=out, journal=NoJournal(),
                               options=ExtractOptions(api="rest"))


class NoJournal:
    def remember(self, object_name: str, job_id: str) -> None:
        raise AssertionError("a REST extract opens no Bulk job")

    def forget(self, job_id: str) -> None:
        raise AssertionError("a REST extract opens no Bulk job")


def later(p: Pipeline, **delta: float) -> datetime:
    org = p.sandbox.org
    return org.clock.freeze(org.clock.now() + timedelta(**delta))


def test_each_target_has_its_compiled_rules_its_parents_and_the_sync_fields(p: Pipeline) -> None:
    with p.services.open_client(p.name) as client, p.database.session() as session:
        targets = {t.object_name: t for t in object_targets(client, get_integration(session, p.name))}
    assert sorted(targets) == ["CampaignMember", "Contact", "Lead"]
    lead, contact, member = targets["Lead"], targets["Contact"], targets["CampaignMember"]
    assert lead.where is not None and "Rating" in lead.where and "'Hot'" in lead.where
    assert contact.where is None and member.where is None
    assert (lead.parents, contact.parents, member.parents) == ((), (), ("Lead", "Contact"))
    assert set(CONVERSION_FIELDS) <= set(lead.mapping.soql_fields)
    assert not set(CONVERSION_FIELDS) & set(contact.mapping.soql_fields)
    assert {"Lead.Email", "Lead.LastModifiedDate", "Contact.LastModifiedDate"} <= set(member.mapping.soql_fields)


def test_a_full_extract_reconciles_every_object_from_its_own_records_and_counts_the_org(
    p: Pipeline, tmp_path: Path
) -> None:
    objects = extract(p, tmp_path / "run", full=True)
    with p.services.open_client(p.name) as client:
        done, counts = before_diff(p.services, client, BulkQueryClient(client), NoJournal(), p.name, objects,
                                  work_dir=tmp_path / "run", now=later(p))
    assert counts == {"Lead": HOT, "Contact": 2, "CampaignMember": 2}
    assert done is not None and done.reasons == ["full sync"] and done.everything
    found = {r.object_name: r for r in done.objects}
    assert sorted(found) == ["CampaignMember", "Contact", "Lead"]
    # The full extract is the Id scan: no separate Id query, and its records are not fetched again.
    assert {r.scan for r in found.values()} == {"extract"}
    assert {name: r.in_scope_ids for name, r in found.items()} == counts
    assert all(r.refetched == 0 and r.refetch is None for r in found.values())


def test_an_incremental_extract_with_nothing_due_only_counts_the_org(p: Pipeline, tmp_path: Path) -> None:
    p.sync(full=True)
    later(p, minutes=30)
    objects = extract(p, tmp_path / "run", full=False)
    assert not any(o.full for o in objects)
    with p.services.open_client(p.name) as client:
        before = client.api_calls
        done, counts = before_diff(p.services, client, BulkQueryClient(client), NoJournal(), p.name, objects,
                                  work_dir=tmp_path / "run", now=later(p))
        spent = client.api_calls - before
    assert done is None
    assert counts == {"Lead": HOT, "Contact": 2, "CampaignMember": 2}
    assert spent == 3  # one COUNT() per object, nothing else


def test_only_the_objects_synced_in_full_are_reconciled_when_nothing_else_is_due(
    p: Pipeline, tmp_path: Path
) -> None:
    p.sync(full=True)
    later(p, minutes=30)
    objects = extract(p, tmp_path / "run", full=False)
    # Contact's configuration changed, so its extract is full; the others stay incremental.
    objects = [dataclasses.replace(o, full=True) if o.object_name == "Contact" else o for o in objects]
    with p.services.open_client(p.name) as client:
        done, counts = before_diff(p.services, client, BulkQueryClient(client), NoJournal(), p.name, objects,
                                  work_dir=tmp_path / "run", now=later(p))
    assert done is not None
    assert (done.reasons, done.everything) == (["full sync"], False)
    assert [r.object_name for r in done.objects] == ["Contact"]
    assert set(counts) == {"Lead", "Contact", "CampaignMember"}


def test_an_overdue_schedule_reconciles_every_object_even_incremental_ones(p: Pipeline, tmp_path: Path) -> None:
    p.sync(full=True)
    later(p, days=8)
    objects = extract(p, tmp_path / "run", full=False)
    with p.services.open_client(p.name) as client:
        done, _ = before_diff(p.services, client, BulkQueryClient(client), NoJournal(), p.name, objects,
                                  work_dir=tmp_path / "run", now=later(p))
    assert done is not None and done.everything
    assert any(reason.startswith("scheduled (every ") for reason in done.reasons)
    assert {r.object_name: r.scan for r in done.objects} == {"Lead": "rest", "Contact": "rest",
                                                             "CampaignMember": "rest"}


def test_an_incomplete_integration_is_refused_before_salesforce_is_asked(p: Pipeline) -> None:
    with p.database.session() as session:
        get_integration(session, p.name).status = IntegrationStatus.INCOMPLETE.value
    opened: list[str] = []
    real_open = p.services.open_client
    p.services.open_client = lambda name: opened.append(name) or real_open(name)  # type: ignore[func-returns-value]
    with pytest.raises(SetupIncompleteError, match=f"integration '{p.name}' is Incomplete"):
        run_reconcile(p.services, p.name, "reconcile-now")
    assert opened == []
