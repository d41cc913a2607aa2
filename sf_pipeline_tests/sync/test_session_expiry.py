"""An access token that expires mid-sync is refreshed and the sync goes on: same counts, same
users as an uninterrupted run, nothing lost or repeated."""

from __future__ import annotations

from pathlib import Path

from sf_pipeline.sandbox.testing import SandboxHandle
from sf_pipeline_tests.dbs import sqlite_url
from sf_pipeline_tests.harness import DEFAULT_SPEC, pipeline

# REST paging: the refresh must repeat the same nextRecordsUrl (Bulk jobs have their own test).
REST_SPEC = DEFAULT_SPEC.replace("frequency_minutes: 60\n", "frequency_minutes: 60\napi: rest\n")


def test_a_session_expired_mid_sync_is_refreshed_and_counts_match_an_uninterrupted_run(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "expiring").mkdir()
    (tmp_path / "steady").mkdir()
    with pipeline(small_sandbox, sqlite_url(tmp_path / "steady"), tmp_path / "steady", page_size=200) as steady:
        expected = steady.sync()
        expected_users = steady.users()
    with pipeline(small_sandbox, database_url, tmp_path / "expiring", page_size=200, spec=REST_SPEC) as p:
        small_sandbox.org.counters.reset()
        small_sandbox.org.expire_sessions(after_requests=4)  # a few pages into the first object
        summary = p.sync()
        served = small_sandbox.org.counters.snapshot()
        assert served["token"] >= 1  # the stored access token died mid-sync and was refreshed
        for key in ("fetched", "created", "updated", "unchanged", "deleted", "invalid_values"):
            assert summary[key] == expected[key], key
        strip = ("updated_at", "created_at")
        assert {k: {f: v for f, v in u.items() if f not in strip} for k, u in p.users().items()} == {
            k: {f: v for f, v in u.items() if f not in strip} for k, u in expected_users.items()
        }
