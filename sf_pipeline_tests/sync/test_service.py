"""The service wires the stages to storage and Salesforce: only the extract talks to Salesforce,
and small chunks flow through every stage, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta
from pathlib import Path

from sf_pipeline.salesforce.client import SalesforceClient
from sf_pipeline.sandbox.testing import SandboxHandle
from sf_pipeline.storage.integrations import get_integration
from sf_pipeline.sync import lifecycle, service
from sf_pipeline.sync.manifests import SyncSummary
from sf_pipeline_tests.harness import DEFAULT_SPEC, apply, pipeline


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


def test_each_integration_s_lookback_sets_how_late_a_commit_can_be_and_still_arrive(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path
) -> None:
    with pipeline(small_sandbox, database_url, tmp_path) as p:
        p.sync()
        with p.database.session() as session:
            watermark = lifecycle.sync_states(session, get_integration(session, p.name))["Contact"].watermark
        assert watermark is not None
        contact = small_sandbox.org.records("Contact")[0]
        ext_id = f"sf_acme_Contact_{contact['Id']}"
        # A commit that became visible late: stamped 20 minutes below the watermark.
        small_sandbox.org.update("Contact", contact["Id"], {"FirstName": "Late"}, at=watermark - timedelta(minutes=20))
        p.sync()
        assert p.users()[ext_id]["data"]["first_name"] != "Late"  # outside the default 10 minutes: missed
        apply(p.database, p.services.cipher, DEFAULT_SPEC.format(name=p.name, login_url=small_sandbox.login_url)
              + "lookback_minutes: 30\n", p.name)
        summary = p.sync()
        assert summary["watermarks"]["Contact"]["full"] is False  # the lookback is no fingerprint change
        assert p.users()[ext_id]["data"]["first_name"] == "Late"
