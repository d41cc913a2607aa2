"""The production instance file's storages keep one PostgreSQL connection open between calls,
where ``dagster-postgres``'s own storage block opens a connection for every call.

Counted by PostgreSQL itself: ``pg_stat_database.sessions`` is the number of sessions ever
established to a database (read from another database, so the reads do not count)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from sf_pipeline_tests.dbs import fresh_postgres_url
from sf_pipeline_tests.deploy.stack import REPO, dagster_pg_env

pytestmark = pytest.mark.postgres

CALLS = 20


def sessions_opened(url: str) -> int:
    parsed = make_url(url)
    engine = create_engine(parsed.set(database="postgres"), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            value = conn.execute(text("SELECT sessions FROM pg_stat_database WHERE datname = :d"),
                                 {"d": parsed.database}).scalar_one()
    finally:
        engine.dispose()
    return int(value)


def settle(url: str, done: Callable[[int], bool]) -> int:
    """Sessions opened so far, once ``done`` holds or after 5 s (a session is counted by the
    statistics when its backend reports, at the latest when it exits)."""
    deadline = time.monotonic() + 5
    while True:
        count = sessions_opened(url)
        if done(count) or time.monotonic() > deadline:
            return count
        time.sleep(0.2)


def opened_by_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, storage: dict[str, Any]) -> int:
    """Sessions a fresh instance with ``storage`` opens for CALLS run-storage, event-log and
    schedule-storage calls, after it is built."""
    with fresh_postgres_url() as url:
        for key, value in dagster_pg_env(url).items():
            monkeypatch.setenv(key, value)
        home = tmp_path / str(len(list(tmp_path.iterdir())))
        home.mkdir()
        (home / "dagster.yaml").write_text(yaml.safe_dump(storage))
        instance = dg.DagsterInstance.from_config(str(home))
        try:
            instance.get_runs()  # tables created, the first connections made
            time.sleep(1)  # the sessions opened so far are counted
            before = sessions_opened(url)
            for _ in range(CALLS):
                instance.get_runs(filters=dg.RunsFilter(job_name="sync_integration"))
                instance.get_dynamic_partitions("integrations")
                instance.all_instigator_state()
            return settle(url, lambda count: count - before >= 3 * CALLS) - before
        finally:
            instance.dispose()


def test_the_production_storages_reuse_their_connection_across_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = yaml.safe_load((REPO / "dagster.postgres.yaml").read_text())
    production = {k: v for k, v in shipped.items() if k.endswith("_storage")}
    plain = {"storage": {"postgres": {"postgres_db": shipped["run_storage"]["config"]["postgres_db"]}}}

    pooled_opened = opened_by_calls(tmp_path, monkeypatch, production)
    plain_opened = opened_by_calls(tmp_path, monkeypatch, plain)

    # A connection per call without pooling; at most one per storage with it.
    assert plain_opened >= 3 * CALLS
    assert pooled_opened <= 3

