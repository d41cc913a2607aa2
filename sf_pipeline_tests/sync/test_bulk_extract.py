"""The extract over Bulk API 2.0 on its own, against the sandbox org over HTTPS: a job's pages
become the object's chunks in the REST API's form, a job that fails or loses a page writes
nothing, the per-object choice and fallback, and the journal of jobs a run opens and closes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from sf_pipeline.mapping import MappingSpec, ResolvedMapping, resolve_object_mapping
from sf_pipeline.salesforce.bulk import BulkJobFailed, BulkQueryClient, PollSchedule, ResultPage
from sf_pipeline.salesforce.client import SalesforceClient
from sf_pipeline.sandbox.clock import parse_datetime
from sf_pipeline.sandbox.testing import SandboxHandle
from sf_pipeline.sync.bulk_extract import ExtractOptions, abort_leftover_jobs, extract_bulk, extract_objects
from sf_pipeline.sync.chunks import read_chunks
from sf_pipeline.sync.plan import ObjectPlan, plan_object
from sf_pipeline_tests.harness import pipeline

FAST = PollSchedule(first=0.05, longest=0.2)
REST_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")


class RecordingJournal:
    """The jobs a run wrote down and crossed off, in order."""

    def __init__(self) -> None:
        self.remembered: list[tuple[str, str]] = []
        self.forgotten: list[str] = []

    def remember(self, object_name: str, job_id: str) -> None:
        self.remembered.append((object_name, job_id))

    def forget(self, job_id: str) -> None:
        self.forgotten.append(job_id)


@dataclass
class Leftover:
    job_id: str
    run_id: str
    object_name: str


@pytest.fixture
def client(small_sandbox: SandboxHandle, tmp_path: Path) -> Iterator[SalesforceClient]:
    with pipeline(small_sandbox, f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path) as p, \
            p.services.open_client(p.name) as opened:
        yield opened


def full_plan(object_name: str, mapping: ResolvedMapping) -> ObjectPlan:
    return plan_object(object_name=object_name, fields=mapping.soql_fields, where=None, mappings=[],
                       stored_watermark=None, stored_fingerprint=None, force_full=True)


def email_mapping(client: SalesforceClient, object_name: str) -> ResolvedMapping:
    return resolve_object_mapping(object_name, [MappingSpec("Email", "email")], client.describe)


def rows(paths: list[str]) -> list[dict[str, Any]]:
    return [r for t in read_chunks(paths) for r in t.to_pylist()]


def test_a_jobs_pages_become_chunks_with_every_record_and_rest_style_datetimes(
    small_sandbox: SandboxHandle, client: SalesforceClient, tmp_path: Path
) -> None:
    org = small_sandbox.org
    org.delete("Lead", [org.records("Lead")[0]["Id"]])
    everything = {r["Id"]: r for r in org.records("Lead", include_deleted=True)}
    mapping = email_mapping(client, "Lead")
    plan = full_plan("Lead", mapping)
    bulk = BulkQueryClient(client, page_records=70, poll=FAST)
    job = bulk.create(plan.soql(ordered=False))
    pages: list[int] = []
    totals: list[int] = []
    result = extract_bulk(bulk, job.id, plan, mapping, out_dir=tmp_path / "out", rows_per_chunk=100,
                          on_page=pages.append, on_total=totals.append)
    got = rows(result.chunk_paths)
    assert sorted(r["Id"] for r in got) == sorted(everything)  # queryAll: the deleted one too
    assert totals == [len(everything)] and result.total == result.fetched == len(everything)
    assert len(pages) == -(-len(everything) // 70) and result.deleted_seen == 1
    assert len(result.chunk_paths) == -(-len(everything) // 100)
    for r in got:
        assert REST_TIME.match(r["LastModifiedDate"]), r["LastModifiedDate"]
        assert r["LastModifiedDate"] == everything[r["Id"]]["LastModifiedDate"]
        assert r["Email"] == everything[r["Id"]].get("Email")
    assert (result.api, result.soql) == ("bulk", plan.soql(ordered=False))
    assert "ORDER BY" not in result.soql.upper()


def test_a_job_with_no_records_is_an_empty_extract_over_bulk_without_a_fallback(
    small_sandbox: SandboxHandle, client: SalesforceClient, tmp_path: Path
) -> None:
    # Salesforce answers a job that matched nothing with a results body of the header line alone.
    mapping = email_mapping(client, "Lead")
    plan = plan_object(object_name="Lead", fields=mapping.soql_fields, where="Email = 'nobody@nowhere.test'",
                       mappings=[], stored_watermark=None, stored_fingerprint=None, force_full=True)
    journal = RecordingJournal()
    bulk = BulkQueryClient(client, poll=FAST)
    [result] = extract_objects(client, bulk, [(plan, mapping)], out_dir=tmp_path / "out", journal=journal,
                               options=ExtractOptions(api="bulk"))
    assert (result.api, result.api_reason) == ("bulk", "api: bulk")
    assert result.total == result.fetched == 0 and rows(result.chunk_paths) == []
    [(_, job_id)] = journal.remembered
    assert journal.forgotten == [job_id] and bulk.info(job_id).state == "JobComplete"
    assert bulk.info(job_id).records_processed == 0


def test_a_job_salesforce_fails_raises_and_leaves_no_chunks(
    small_sandbox: SandboxHandle, client: SalesforceClient, tmp_path: Path
) -> None:
    mapping = email_mapping(client, "Lead")
    plan = full_plan("Lead", mapping)
    small_sandbox.org.fail_next_bulk_job("Query timed out in the sandbox")
    bulk = BulkQueryClient(client, poll=FAST)
    job = bulk.create(plan.soql(ordered=False))
    with pytest.raises(BulkJobFailed, match="Query timed out in the sandbox"):
        extract_bulk(bulk, job.id, plan, mapping, out_dir=tmp_path / "out")
    assert not list((tmp_path / "out").glob("*.parquet"))


class LosesLastPage(BulkQueryClient):
    """The real client, with the job's last results page withheld (as a download cut short by a
    proxy that ends the response cleanly would)."""

    def pages(self, job_id: str, schema: pa.Schema, *, stop: Any = lambda: False) -> Iterator[ResultPage]:
        found = list(super().pages(job_id, schema, stop=stop))
        yield from found[:-1]


def test_pages_holding_fewer_records_than_the_job_processed_are_refused(
    client: SalesforceClient, tmp_path: Path
) -> None:
    mapping = email_mapping(client, "Lead")
    plan = full_plan("Lead", mapping)
    bulk = LosesLastPage(client, page_records=100, poll=FAST)
    job = bulk.create(plan.soql(ordered=False))
    with pytest.raises(BulkJobFailed, match=rf"Bulk API job {job.id} reported \d+ records but its pages held \d+"):
        extract_bulk(bulk, job.id, plan, mapping, out_dir=tmp_path / "out", rows_per_chunk=50)
    assert not list((tmp_path / "out").glob("*.parquet"))


def test_leftover_jobs_are_aborted_and_forgotten_even_when_salesforce_refuses_the_abort(
    small_sandbox: SandboxHandle, client: SalesforceClient
) -> None:
    org = small_sandbox.org
    org.set_bulk_processing_time(fixed_seconds=3600)  # still running when the next run starts
    bulk = BulkQueryClient(client, poll=FAST)
    running = bulk.create("SELECT Id FROM Lead")
    forgotten: list[str] = []
    abort_leftover_jobs(bulk, [Leftover(running.id, "killed-run", "Lead"),
                               Leftover("750000000000000AAA", "older-run", "Contact")], forgotten.append)
    assert forgotten == [running.id, "750000000000000AAA"]
    assert bulk.info(running.id).state == "Aborted"


def test_each_object_gets_its_api_and_a_failed_bulk_job_falls_back_to_rest_for_that_object_only(
    small_sandbox: SandboxHandle, client: SalesforceClient, tmp_path: Path
) -> None:
    org = small_sandbox.org
    mappings = [email_mapping(client, name) for name in ("Lead", "Contact")]
    plans = [(full_plan(m.object_name, m), m) for m in mappings]
    org.fail_next_bulk_job("Query timed out in the sandbox")  # the first job created: Lead's
    journal = RecordingJournal()
    bulk = BulkQueryClient(client, page_records=120, poll=FAST)
    lead, contact = extract_objects(client, bulk, plans, out_dir=tmp_path / "out", journal=journal,
                                    options=ExtractOptions(api="bulk", rows_per_chunk=100))
    assert [o for o, _ in journal.remembered] == ["Lead", "Contact"]
    assert sorted(journal.forgotten) == sorted(job for _, job in journal.remembered)  # nothing left open
    assert lead.api == "rest" and lead.api_reason is not None
    assert lead.api_reason.startswith(f"fell back from Bulk API 2.0: job {journal.remembered[0][1]}")
    assert (contact.api, contact.api_reason) == ("bulk", "api: bulk")
    for result, name in ((lead, "Lead"), (contact, "Contact")):
        ids = sorted(r["Id"] for r in rows(result.chunk_paths))
        assert ids == sorted(r["Id"] for r in org.records(name, include_deleted=True))
        assert all(Path(p).name.startswith(f"extract-{name}-") for p in result.chunk_paths)


def test_forced_rest_creates_no_job(small_sandbox: SandboxHandle, client: SalesforceClient, tmp_path: Path) -> None:
    mapping = email_mapping(client, "Lead")
    journal = RecordingJournal()
    [result] = extract_objects(client, BulkQueryClient(client, poll=FAST), [(full_plan("Lead", mapping), mapping)],
                               out_dir=tmp_path / "out", journal=journal, options=ExtractOptions(api="rest"))
    assert (result.api, result.api_reason) == ("rest", "api: rest")
    assert journal.remembered == [] and small_sandbox.org.bulk.jobs(small_sandbox.org) == []
    assert result.fetched == len(small_sandbox.org.records("Lead", include_deleted=True))


def test_a_small_incremental_run_under_auto_stays_on_rest_and_keeps_the_estimate_page(
    small_sandbox: SandboxHandle, client: SalesforceClient, tmp_path: Path
) -> None:
    org = small_sandbox.org
    newest = max(r["LastModifiedDate"] for r in org.records("Lead", include_deleted=True))
    since = parse_datetime(newest) + timedelta(days=1)
    fresh = org.create("Lead", [{"LastName": f"New{i}", "Company": "Acme", "Email": f"n{i}@acme.test"}
                                for i in range(5)], at=since + timedelta(minutes=5))
    mapping = email_mapping(client, "Lead")
    fingerprint = full_plan("Lead", mapping).fingerprint
    plan = plan_object(object_name="Lead", fields=mapping.soql_fields, where=None, mappings=[],
                       stored_watermark=since, stored_fingerprint=fingerprint, force_full=False,
                       lookback=timedelta(0))
    assert not plan.full
    journal = RecordingJournal()
    before = client.api_calls
    # The estimate comes with the first page of records: they are written, not asked for again.
    [result] = extract_objects(client, BulkQueryClient(client, poll=FAST), [(plan, mapping)],
                               out_dir=tmp_path / "out", journal=journal,
                               options=ExtractOptions(api="auto", bulk_threshold=100, page_size=200))
    assert result.api == "rest" and result.api_reason == "incremental estimate 5 <= 100 records"
    assert sorted(r["Id"] for r in rows(result.chunk_paths)) == sorted(fresh)
    assert journal.remembered == [] and client.api_calls - before == 1


def test_an_unknown_api_setting_is_refused_before_any_job(client: SalesforceClient, tmp_path: Path) -> None:
    mapping = email_mapping(client, "Lead")
    with pytest.raises(ValueError, match="unknown api setting 'soap'"):
        extract_objects(client, BulkQueryClient(client, poll=FAST), [(full_plan("Lead", mapping), mapping)],
                        out_dir=tmp_path / "out", journal=RecordingJournal(), options=ExtractOptions(api="soap"))
