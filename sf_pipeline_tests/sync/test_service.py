"""The service wires the stages to storage and Salesforce: only the extract talks to Salesforce,
and small chunks flow through every stage, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from sf_pipeline.salesforce.client import SalesforceClient
from sf_pipeline.sandbox.testing import SandboxHandle
from sf_pipeline.storage.integrations import get_integration
from sf_pipeline.storage.models import User
from sf_pipeline.storage.users import StoredUsers
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


def _wait_for(condition: Callable[[], bool], seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_the_upsert_writes_change_chunks_while_the_diff_is_still_deciding(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pipeline(small_sandbox, database_url, tmp_path) as p:
        p.services.rows_per_chunk = 40
        manifest = service.extract(p.services, p.name, "run-1")
        last = sum(len(o.chunk_paths) for o in manifest.objects)
        applier = service.start_upsert(p.services, p.name)
        real_lookup = StoredUsers.lookup
        calls: list[int] = []
        written_before_last: list[bool] = []

        def lookup(self: StoredUsers, external_ids: Sequence[str]) -> Any:
            calls.append(1)
            if len(calls) == last:  # the diff's last extract chunk: earlier changes are being written
                written_before_last.append(_wait_for(lambda: applier.sent > 0))
            return real_lookup(self, external_ids)

        monkeypatch.setattr(StoredUsers, "lookup", lookup)
        try:
            changes = service.diff(p.services, manifest, applier=applier)
            summary = service.upsert(p.services, changes, applier=applier)
        finally:
            applier.abort()
        assert written_before_last == [True]
        assert summary.created == len(p.users()) == sum(o.fetched for o in manifest.objects) - summary.skipped


def test_a_diff_failing_after_some_chunks_were_written_moves_no_watermark_and_the_next_sync_converges(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pipeline(small_sandbox, database_url, tmp_path) as p:
        p.services.rows_per_chunk = 40
        real_lookup = StoredUsers.lookup
        calls: list[int] = []

        def some_users() -> bool:
            with p.database.session() as session:
                return bool(session.scalar(select(func.count()).select_from(User)))

        def lookup(self: StoredUsers, external_ids: Sequence[str]) -> Any:
            calls.append(1)
            if len(calls) == 3:
                assert _wait_for(some_users)  # the first chunks' users are written by now
                raise RuntimeError("the diff's host ran out of memory")
            return real_lookup(self, external_ids)

        monkeypatch.setattr(StoredUsers, "lookup", lookup)
        with pytest.raises(RuntimeError, match="ran out of memory"):
            p.sync()
        monkeypatch.setattr(StoredUsers, "lookup", real_lookup)
        partial = p.users()
        with p.database.session() as session:
            states = lifecycle.sync_states(session, get_integration(session, p.name))
        assert partial and all(state.watermark is None for state in states.values())
        summary = p.sync()
        converged = p.users()
        assert summary["created"] == len(converged) - len(partial)
        again = p.sync()
        assert (again["created"], again["updated"], again["deleted"]) == (0, 0, 0)
    # The same org synced in one go, on a database of its own, gives the same users.
    with pipeline(small_sandbox, f"sqlite:///{tmp_path / 'reference.db'}", tmp_path / "reference") as reference:
        reference.sync()
        expected = reference.users()
    moments = ("created_at", "updated_at")
    assert {k: {f: v for f, v in u.items() if f not in moments} for k, u in converged.items()} == {
        k: {f: v for f, v in u.items() if f not in moments} for k, u in expected.items()}
