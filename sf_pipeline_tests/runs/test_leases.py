"""The integration lease: at most one holder, taken atomically even when many processes race for
it, kept by a heartbeat, and free again when its holder stops heartbeating."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from sf_pipeline import leases
from sf_pipeline.storage.database import Database
from sf_pipeline.storage.integrations import create_integration
from sf_pipeline_tests.dbs import migrated_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with migrated_database(request.param, tmp_path) as database:
        with database.session() as session:
            create_integration(session, name="acme", project_id=42, login_url="https://login.salesforce.com")
        yield database


def test_one_holder_at_a_time_and_free_again_once_released(database: Database) -> None:
    assert leases.try_acquire(database, "acme", "run-a")
    assert not leases.try_acquire(database, "acme", "run-b")
    assert leases.try_acquire(database, "acme", "run-a"), "the holder may take it again"
    holder = leases.holder(database, "acme")
    assert holder is not None and holder.run_id == "run-a" and holder.pid is not None and holder.host
    leases.release(database, "run-b")  # not the holder: nothing changes
    assert leases.holder(database, "acme") == holder
    leases.release(database, "run-a")
    assert leases.holder(database, "acme") is None
    assert leases.try_acquire(database, "acme", "run-b")


def test_a_holder_that_stops_heartbeating_loses_the_lease_after_its_time_to_live(database: Database) -> None:
    start = leases.wall_clock()
    assert leases.try_acquire(database, "acme", "run-a", now=start)
    assert not leases.try_acquire(database, "acme", "run-b", now=start + leases.ttl() - timedelta(seconds=1))
    assert leases.beat(database, "run-a", now=start + leases.ttl())
    assert not leases.try_acquire(database, "acme", "run-b", now=start + leases.ttl() * 2 - timedelta(seconds=1))
    assert leases.try_acquire(database, "acme", "run-b", now=start + leases.ttl() * 2 + timedelta(seconds=1))
    assert not leases.beat(database, "run-a"), "the old holder learns it lost the lease"
    assert leases.live_holders(database, now=start + leases.ttl() * 2 + timedelta(seconds=2)) == {"acme": "run-b"}


def test_many_racers_on_separate_connections_never_both_get_the_lease(database: Database) -> None:
    url = database.url.render_as_string(hide_password=False)
    racers = [Database(url) for _ in range(6)]
    try:
        for round_ in range(10):
            barrier = threading.Barrier(len(racers))
            winners: list[str] = []

            def race(i: int, db: Database, round_: int = round_, barrier: threading.Barrier = barrier,
                     winners: list[str] = winners) -> None:
                barrier.wait()
                if leases.try_acquire(db, "acme", f"run-{round_}-{i}"):
                    winners.append(f"run-{round_}-{i}")

            threads = [threading.Thread(target=race, args=(i, db)) for i, db in enumerate(racers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert len(winners) == 1, f"round {round_}: {winners}"
            holder = leases.holder(database, "acme")
            assert holder is not None and holder.run_id == winners[0]
            leases.release(database, winners[0])
    finally:
        for db in racers:
            db.dispose()


def test_the_heartbeat_keeps_the_lease_alive_until_stopped(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(leases.HEARTBEAT_ENV, "0.05")
    assert leases.try_acquire(database, "acme", "run-a")
    first = leases.holder(database, "acme")
    heartbeat = leases.Heartbeat.start(database, "run-a")
    again = leases.Heartbeat.start(database, "run-a")
    assert again is heartbeat, "one heartbeat per run in a process"
    try:
        deadline = leases.wall_clock() + timedelta(seconds=30)
        while True:
            now = leases.holder(database, "acme")
            assert now is not None and first is not None and first.heartbeat_at is not None
            if now.heartbeat_at is not None and now.heartbeat_at > first.heartbeat_at:
                break
            assert leases.wall_clock() < deadline, "no heartbeat was written"
            time.sleep(0.02)
    finally:
        again.stop()
        assert not heartbeat.lost.is_set()
        heartbeat.stop()
    leases.release(database, "run-a")
    assert not leases.beat(database, "run-a")


def test_waiting_for_the_lease_names_its_holder_when_it_times_out(database: Database) -> None:
    assert leases.try_acquire(database, "acme", "run-a")
    seen: list[str | None] = []
    with pytest.raises(TimeoutError, match="run-a"):
        leases.acquire(database, "acme", "run-b", timeout_s=0.3, poll_s=0.05,
                       on_wait=lambda h: seen.append(h.run_id if h else None))
    assert seen and set(seen) == {"run-a"}
