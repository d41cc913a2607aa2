"""The service wires the stages to storage and Salesforce: only the extract talks to Salesforce,
and small chunks flow through every stage, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

from sf_pipeline.salesforce.client import SalesforceClient
from sf_pipeline.sandbox.testing import SandboxHandle
from sf_pipeline.sync import service
from sf_pipeline.sync.manifests import SyncSummary
from sf_pipeline_tests.harness import pipeline


def test_the_diff_and_upsert_never_ask_salesforce(small_sandbox: SandboxHandle, database_url: str,
                                                  tmp_path: Path) -> None:
    with pipeline(small_sandbox, database_url, tmp_path) as p:
        manifest = service.extract(p.services, p.name, "run-1")
        assert {o.object_name for o in manifest.objects} == {"Lead", "Contact"}
        calls = small_sandbox.org.counters.snapshot()

        def no_salesforce(name: str) -> SalesforceClient:
            raise AssertionError(f"the diff or upsert opened a Salesforce client for {name}")

        offline = dataclasses.replace(p.services, open_client=no_salesforce)
        summary = service.upsert(offline, service.diff(offline, manifest))
        assert isinstance(summary, SyncSummary)
        assert summary.created == len(p.users()) > 0
        assert small_sandbox.org.counters.snapshot() == calls  # not one request, describe included


def test_small_chunks_flow_through_every_stage(small_sandbox: SandboxHandle, database_url: str,
                                               tmp_path: Path) -> None:
    with pipeline(small_sandbox, database_url, tmp_path) as p:
        p.services.rows_per_chunk = 40
        manifest = service.extract(p.services, p.name, "run-1")
        assert all(len(o.chunk_paths) >= 3 for o in manifest.objects)
        changes = service.diff(p.services, manifest)
        assert all(len(o.chunk_paths) >= 3 for o in changes.objects)
        first = service.upsert(p.services, changes)
        assert first.created == len(p.users()) == sum(o.fetched for o in manifest.objects) - first.skipped
        again = service.run_sync(p.services, p.name, f"run-{uuid.uuid4().hex}")
        assert (again.created, again.updated) == (0, 0)
