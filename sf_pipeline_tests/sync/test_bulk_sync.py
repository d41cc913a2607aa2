"""Syncs over Bulk API 2.0 against the sandbox org's query jobs: the same users as the REST path,
the same incremental boundary, and the ``api:`` setting deciding which API each object uses."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from sf_pipeline.sandbox.clock import parse_datetime
from sf_pipeline.sandbox.testing import SandboxHandle, serve_in_thread
from sf_pipeline.storage.models import BulkQueryJob, LogEvent, SyncState, User
from sf_pipeline_tests.conftest import trust
from sf_pipeline_tests.dbs import empty_database_url
from sf_pipeline_tests.harness import DEFAULT_SPEC, Pipeline, pipeline

RECORDS = 100_000  # Leads and as many Contacts: 200,000 records


def with_api(api: str, spec: str = DEFAULT_SPEC) -> str:
    return spec.replace("frequency_minutes: 60\n", f"frequency_minutes: 60\napi: {api}\n")


def user_rows(p: Pipeline) -> dict[str, tuple[object, ...]]:
    """Every user column except the two times that say when the row was written."""
    with p.database.session() as session:
        return {
            u.external_id: (u.project_id, u.email, u.phone, u.timezone, u.locale, repr(sorted(u.data.items())),
                            u.deleted, u.integration_id is not None, u.source_object, u.source_id,
                            u.source_modified_at, u.content_hash)
            for u in session.scalars(select(User))
        }


def bulk_jobs(sandbox: SandboxHandle) -> list[dict[str, object]]:
    return sandbox.control.bulk_jobs()


@pytest.fixture(scope="module")
def large_sandbox() -> Iterator[SandboxHandle]:
    with pytest.MonkeyPatch.context() as monkeypatch, serve_in_thread(records=RECORDS, seed=21) as sandbox:
        trust(monkeypatch, sandbox)
        yield sandbox


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxHandle]:
    with serve_in_thread(records=3000, seed=8) as sandbox:
        trust(monkeypatch, sandbox)
        yield sandbox


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_200000_record_full_sync_over_bulk_creates_exactly_the_users_rest_creates(
    large_sandbox: SandboxHandle, backend: str, tmp_path: Path
) -> None:
    (tmp_path / "bulk").mkdir()
    (tmp_path / "rest").mkdir()
    jobs_before = len(bulk_jobs(large_sandbox))
    with (
        empty_database_url(backend, tmp_path / "bulk") as bulk_url,
        empty_database_url(backend, tmp_path / "rest") as rest_url,
        pipeline(large_sandbox, bulk_url, tmp_path / "bulk") as over_bulk,
        pipeline(large_sandbox, rest_url, tmp_path / "rest", spec=with_api("rest")) as over_rest,
    ):
        bulk = over_bulk.sync()
        assert bulk["apis"] == {"Lead": "bulk", "Contact": "bulk"}
        jobs = bulk_jobs(large_sandbox)[jobs_before:]
        assert sorted(j["object"] for j in jobs) == ["Contact", "Lead"]
        assert all(j["operation"] == "queryAll" and j["state"] == "JobComplete" for j in jobs)
        # Per object: a job, its status polls, ceil(N / maxRecords) pages, describes.
        pages = sum(math.ceil(int(j["numberRecordsProcessed"]) / over_bulk.services.bulk_page_records)  # type: ignore[call-overload]
                    for j in jobs)
        assert bulk["api_calls"] <= pages + 2 * 10

        rest = over_rest.sync()
        assert rest["apis"] == {"Lead": "rest", "Contact": "rest"}
        assert len(bulk_jobs(large_sandbox)) == jobs_before + 2, "api: rest created no Bulk job"

        bulk_users, rest_users = user_rows(over_bulk), user_rows(over_rest)
        assert len(rest_users) > 150_000
        assert bulk_users.keys() == rest_users.keys()
        unequal = [k for k in rest_users if bulk_users[k] != rest_users[k]]
        assert unequal == [], f"{len(unequal)} users differ, e.g. {unequal[:3]}"
        for key in ("fetched", "created", "invalid_values", "deleted", "skipped"):
            assert bulk[key] == rest[key], key
        assert bulk["watermarks"] == rest["watermarks"]
        with over_bulk.database.session() as session:
            assert session.scalars(select(BulkQueryJob)).all() == [], "finished jobs are crossed off"


def test_incremental_runs_over_bulk_keep_ties_late_commits_and_deletions(
    sandbox: SandboxHandle, database_url: str, tmp_path: Path
) -> None:
    org = sandbox.org
    with pipeline(sandbox, database_url, tmp_path, spec=with_api("bulk")) as p:
        first = p.sync()
        assert first["apis"] == {"Lead": "bulk", "Contact": "bulk"}
        w = max(parse_datetime(r["LastModifiedDate"]) for r in org.records("Contact"))
        contacts = sorted(org.records("Contact"), key=lambda r: r["Id"])
        late = org.create("Contact", [{"LastName": f"Late{i}", "Email": f"late{i}@x.example"} for i in range(5)],
                          at=w - timedelta(seconds=30))
        tied = [c["Id"] for c in contacts[:40]]
        org.update_many("Contact", {rid: {"FirstName": "Tied"} for rid in tied}, at=w)  # ties the watermark
        doomed = [c["Id"] for c in contacts[-3:]]
        org.delete("Contact", doomed, at=w + timedelta(seconds=5))

        second = p.sync()
        assert second["apis"] == {"Lead": "bulk", "Contact": "bulk"}
        assert (second["created"], second["updated"], second["deleted"]) == (5, 40, 3)
        users = p.users()
        assert all(users[f"sf_acme_Contact_{r}"]["data"]["first_name"] == "Tied" for r in tied)
        assert all(f"sf_acme_Contact_{r}" in users for r in late)
        assert all(users[f"sf_acme_Contact_{r}"]["deleted"] for r in doomed)
        with p.database.session() as session:
            marks = {s.object_name: s.watermark for s in session.scalars(select(SyncState))}
        assert marks["Contact"] == w + timedelta(seconds=5)

        idle = p.sync()
        assert (idle["created"], idle["updated"], idle["deleted"]) == (0, 0, 0)


def test_api_rest_forces_rest_and_auto_picks_by_size(sandbox: SandboxHandle, tmp_path: Path) -> None:
    (tmp_path / "rest").mkdir()
    (tmp_path / "auto").mkdir()
    with pipeline(sandbox, f"sqlite:///{tmp_path / 'rest.db'}", tmp_path / "rest", spec=with_api("rest")) as forced:
        assert forced.sync(full=True)["apis"] == {"Lead": "rest", "Contact": "rest"}
        assert bulk_jobs(sandbox) == []

    with pipeline(sandbox, f"sqlite:///{tmp_path / 'auto.db'}", tmp_path / "auto", name="auto") as auto:
        assert auto.sync()["apis"] == {"Lead": "bulk", "Contact": "bulk"}  # a full sync
        assert len(bulk_jobs(sandbox)) == 2
        sandbox.org.touch_random("Contact", 30)
        small = auto.sync()  # an incremental whose estimate is small
        assert small["apis"] == {"Lead": "rest", "Contact": "rest"}
        assert len(bulk_jobs(sandbox)) == 2
        auto.services.bulk_threshold = 20
        sandbox.org.touch_random("Contact", 30)
        large = auto.sync()  # now above the threshold for Contact, not for Lead (nothing changed)
        assert large["apis"] == {"Lead": "rest", "Contact": "bulk"}
        assert large["fetched"] >= 30
        with auto.database.session() as session:
            completed = session.scalars(select(LogEvent).where(LogEvent.type == "sync_completed")
                                        .order_by(LogEvent.id)).all()
        assert [e.details["apis"] for e in completed][-1] == {"Lead": "rest", "Contact": "bulk"}
        assert completed[-1].counts["apis"] == {"Lead": "rest", "Contact": "bulk"}


def test_sync_json_and_the_run_metadata_report_each_objects_api(
    sandbox: SandboxHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dagster as dg

    from sf_pipeline.definitions import defs
    from sf_pipeline_tests.harness import TEST_KEY, dagster_resource

    with pipeline(sandbox, f"sqlite:///{tmp_path / 'app.db'}", tmp_path) as p:
        env = {**os.environ, "SF_PIPELINE_HOME": str(tmp_path),
               "SF_PIPELINE_DATABASE_URL": p.database.url.render_as_string(hide_password=False),
               "SF_PIPELINE_SECRET_KEY": TEST_KEY, "DAGSTER_HOME": str(tmp_path / "dagster")}
        (tmp_path / "dagster").mkdir()
        done = subprocess.run([str(Path(sys.executable).parent / "sf-pipeline"), "sync", "acme", "--json"],
                              env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        assert summary["apis"] == {"Lead": "bulk", "Contact": "bulk"}

        sandbox.org.touch_random("Lead", 5)
        monkeypatch.setenv("SF_PIPELINE_SECRET_KEY", TEST_KEY)
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions("integrations", ["acme"])
            result = defs.resolve_job_def("sync_integration").execute_in_process(
                partition_key="acme", instance=instance, resources={"sf_pipeline": dagster_resource(p)})
        assert result.success
        extracted = [e.materialization for e in result.get_asset_materialization_events()
                     if e.materialization.asset_key == dg.AssetKey("salesforce_records")]
        assert extracted[0].metadata["apis"].value == {"Lead": "rest", "Contact": "rest"}  # a small incremental
