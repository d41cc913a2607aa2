"""The upsert stage on its own, on SQLite and PostgreSQL: change chunks in, ``users`` rows out.

Chunks here are small (a few rows), so every multi-chunk path runs: on PostgreSQL independent
chunks go through concurrent writers, and a chunk sharing an external ID with one being written
waits for it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from sf_pipeline.storage.database import Database
from sf_pipeline.storage.models import Integration, User
from sf_pipeline.sync import upsert
from sf_pipeline.sync.chunks import ChunkWriter
from sf_pipeline.sync.diff import CHANGE_SCHEMA
from sf_pipeline.sync.upsert import ChunkApplier, apply_chunks
from sf_pipeline_tests.dbs import migrated_database

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 1, 6, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with migrated_database(request.param, tmp_path) as database:
        with database.session() as session:
            session.add(Integration(name="acme", project_id=42, login_url="https://login.salesforce.com"))
        yield database


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[Database]:
    with migrated_database("postgres", tmp_path) as database:
        with database.session() as session:
            session.add(Integration(name="acme", project_id=42, login_url="https://login.salesforce.com"))
        yield database


def integration_id(database: Database) -> int:
    with database.session() as session:
        return int(session.scalars(select(Integration.id)).one())


def change(i: int, *, at: datetime = T0, action: str = "create", deleted: bool = False, email: str | None = None,
           data: str | None = None) -> dict[str, Any]:
    sf_id = f"00Q{i:015d}"
    return {"action": action, "external_id": f"sf_acme_Lead_{sf_id}",
            "email": email if email is not None else f"lead{i}@example.com", "phone": None, "timezone": None,
            "locale": None, "data": data if data is not None else f'{{"n":{i}}}', "source_object": "Lead",
            "source_id": sf_id, "source_modified_at": at, "deleted": deleted, "content_hash": f"h{i}-{at:%M}"}


def chunks(folder: Path, rows: list[dict[str, Any]], per_chunk: int) -> list[str]:
    writer = ChunkWriter(folder, f"changes-{len(list(folder.glob('*')))}", CHANGE_SCHEMA, rows_per_chunk=per_chunk)
    for row in rows:
        writer.append(CHANGE_SCHEMA.empty_table().from_pylist([row], CHANGE_SCHEMA))
    return writer.close()


def shared_ids(paths: list[str]) -> set[str]:
    """External IDs found in more than one of these chunks."""
    seen: dict[str, int] = {}
    for i, path in enumerate(paths):
        for ext in set(pq.read_table(path, columns=["external_id"])["external_id"].to_pylist()):
            seen[ext] = -1 if ext in seen and seen[ext] != i else i
    return {ext for ext, where in seen.items() if where == -1}


def apply(database: Database, paths: list[str], *, now: datetime = NOW) -> int:
    return apply_chunks(database.session, paths, project_id=42, integration_id=integration_id(database), now=now)


def users(database: Database) -> dict[str, User]:
    with database.session() as session:
        found = {u.external_id: u for u in session.scalars(select(User))}
        session.expunge_all()
        return found


def test_every_change_lands_with_its_values_and_times(database: Database, tmp_path: Path) -> None:
    rows = [change(1), change(2, email="", data='{"n":null,"tags":["a","b"]}'), change(3)]
    rows[0]["phone"], rows[0]["timezone"], rows[0]["locale"] = "+1 555", "Europe/Paris", "fr_FR"
    assert apply(database, chunks(tmp_path, rows, 2)) == 3
    stored = users(database)
    one = stored["sf_acme_Lead_00Q000000000000001"]
    assert (one.email, one.phone, one.timezone, one.locale) == ("lead1@example.com", "+1 555", "Europe/Paris", "fr_FR")
    assert one.data == {"n": 1} and one.deleted is False and one.content_hash == "h1-00"
    assert (one.source_object, one.source_id, one.source_modified_at) == ("Lead", "00Q000000000000001", T0)
    assert (one.created_at, one.updated_at, one.project_id) == (NOW, NOW, 42)
    two = stored["sf_acme_Lead_00Q000000000000002"]
    assert two.email == "" and two.phone is None and two.data == {"n": None, "tags": ["a", "b"]}


def test_an_older_version_never_overwrites_a_newer_one(database: Database, tmp_path: Path) -> None:
    apply(database, chunks(tmp_path, [change(1, at=T0 + timedelta(minutes=5), email="new@example.com")], 10))
    apply(database, chunks(tmp_path, [change(1, at=T0, action="update", email="old@example.com")], 10),
          now=NOW + timedelta(hours=1))
    stored = users(database)["sf_acme_Lead_00Q000000000000001"]
    assert stored.email == "new@example.com" and stored.updated_at == NOW
    apply(database, chunks(tmp_path, [change(1, at=T0 + timedelta(minutes=5), action="update",
                                             email="same-time@example.com")], 10))
    assert users(database)["sf_acme_Lead_00Q000000000000001"].email == "same-time@example.com"  # as new: taken


def test_an_external_id_twice_in_one_chunk_keeps_the_newest_version(database: Database, tmp_path: Path) -> None:
    rows = [change(1, at=T0 + timedelta(minutes=2), email="newest@example.com"), change(2),
            change(1, at=T0 + timedelta(minutes=1), email="older@example.com"),
            change(3, at=T0, email="first@example.com"), change(3, at=T0, email="last@example.com")]
    assert apply(database, chunks(tmp_path, rows, 10)) == 5
    stored = users(database)
    assert len(stored) == 3
    assert stored["sf_acme_Lead_00Q000000000000001"].email == "newest@example.com"
    assert stored["sf_acme_Lead_00Q000000000000003"].email == "last@example.com"  # a tie: the later row


def test_an_external_id_in_several_chunks_keeps_the_newest_version(database: Database, tmp_path: Path) -> None:
    rows = [change(i) for i in range(1, 7)] + [change(2, at=T0 + timedelta(minutes=3), email="moved@example.com"),
                                              change(5, at=T0 - timedelta(minutes=3), email="stale@example.com")]
    paths = chunks(tmp_path, rows, 3)
    assert len(paths) == 3 and shared_ids(paths) == {change(2)["external_id"], change(5)["external_id"]}
    apply(database, paths)
    stored = users(database)
    assert len(stored) == 6
    assert stored["sf_acme_Lead_00Q000000000000002"].email == "moved@example.com"
    assert stored["sf_acme_Lead_00Q000000000000005"].email == "lead5@example.com"


def test_deleted_then_undeleted(database: Database, tmp_path: Path) -> None:
    apply(database, chunks(tmp_path, [change(1)], 10))
    apply(database, chunks(tmp_path, [change(1, at=T0 + timedelta(minutes=1), action="delete", deleted=True)], 10))
    assert users(database)["sf_acme_Lead_00Q000000000000001"].deleted is True
    apply(database, chunks(tmp_path, [change(1, at=T0 + timedelta(minutes=2), action="update")], 10))
    assert users(database)["sf_acme_Lead_00Q000000000000001"].deleted is False
    assert len(users(database)) == 1  # flagged and restored, never removed


@pytest.mark.postgres
def test_postgres_writes_three_or_more_independent_chunks_with_concurrent_writers(
    postgres: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [change(i) for i in range(1, 11)]
    paths = chunks(tmp_path, rows, 3)
    assert len(paths) == 4 and not shared_ids(paths)
    # The first two chunk writers meet at a barrier before writing: one writer alone would wait
    # there until the barrier breaks, and the test fail.
    meet = threading.Barrier(upsert.PG_WRITERS, timeout=120)
    real_write = upsert._copy_upsert
    met: list[bool] = []

    def write_together(session: Session, *args: Any) -> None:
        if len(met) < upsert.PG_WRITERS:
            met.append(True)
            meet.wait()
        real_write(session, *args)

    monkeypatch.setattr(upsert, "_copy_upsert", write_together)
    assert apply(postgres, paths) == 10
    stored = users(postgres)
    assert sorted(stored) == sorted(r["external_id"] for r in rows)
    # Ids follow chunk and row order, as a one-chunk-at-a-time run would give them.
    assert [u.id for u in sorted(stored.values(), key=lambda u: u.external_id)] == sorted(u.id for u in stored.values())


@pytest.mark.postgres
def test_postgres_a_chunk_sharing_an_external_id_with_one_being_written_waits_for_it(
    postgres: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Chunks of 3: [1, 2, 3] [4, 5, 1'] [6, 7, 8] [9]; 1' is the same user as 1, at the same time.
    rows = [change(i, at=T0 + timedelta(minutes=i)) for i in range(1, 6)] + [
        change(1, at=T0 + timedelta(minutes=1), email="tie-later@example.com")] + [
        change(i, at=T0 + timedelta(minutes=i)) for i in range(6, 10)]
    paths = chunks(tmp_path, rows, 3)
    assert len(paths) == 4 and shared_ids(paths) == {change(1)["external_id"]}
    spans: dict[str, tuple[float, float]] = {}
    threads: set[str] = set()
    real_write = upsert._copy_upsert

    def timed(session: Session, table: Any, *args: Any) -> None:
        first = table["external_id"][0].as_py()
        started = time.monotonic()
        time.sleep(0.3)  # long enough for a writer that did not wait to start meanwhile
        real_write(session, table, *args)
        session.flush()
        spans[first] = (started, time.monotonic())
        threads.add(threading.current_thread().name)

    monkeypatch.setattr(upsert, "_copy_upsert", timed)
    assert apply(postgres, paths) == 10
    one, two = spans[change(1)["external_id"]], spans[change(4)["external_id"]]
    assert two[0] >= one[1]  # the second chunk started only once the first was written
    assert len(threads) == upsert.PG_WRITERS  # the independent chunks still went side by side
    assert users(postgres)["sf_acme_Lead_00Q000000000000001"].email == "tie-later@example.com"


def test_chunks_handed_over_one_by_one_are_written_before_close_returns(database: Database, tmp_path: Path) -> None:
    applier = ChunkApplier(database.session, project_id=42, integration_id=integration_id(database), now=NOW)
    try:
        first = chunks(tmp_path, [change(1), change(2)], 10)
        applier.add(first[0])
        deadline = time.monotonic() + 30
        while applier.sent < 2 and time.monotonic() < deadline:  # written while the caller goes on
            time.sleep(0.01)
        assert sorted(users(database)) == [change(1)["external_id"], change(2)["external_id"]]
        applier.add(chunks(tmp_path, [change(3)], 10)[0])
        assert applier.close() == 3
    finally:
        applier.abort()
    assert len(users(database)) == 3


def test_a_failed_write_is_raised_by_the_next_handover_and_by_close(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "_copy_upsert" if database.dialect == "postgresql" else "_sqlite_upsert"
    real_write = getattr(upsert, name)

    def fail_on_two(session: Session, table: Any, *args: Any) -> None:
        if change(2)["external_id"] in table["external_id"].to_pylist():
            raise RuntimeError("disk full")
        real_write(session, table, *args)

    monkeypatch.setattr(upsert, name, fail_on_two)
    applier = ChunkApplier(database.session, project_id=42, integration_id=integration_id(database), now=NOW)
    try:
        applier.add(chunks(tmp_path, [change(1)], 10)[0])
        applier.add(chunks(tmp_path, [change(2)], 10)[0])
        with pytest.raises(RuntimeError, match="disk full"):
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                applier.add(chunks(tmp_path, [change(3)], 10)[0])
                time.sleep(0.05)
        with pytest.raises(RuntimeError, match="disk full"):
            applier.close()
    finally:
        applier.abort()
    stored = users(database)
    assert change(1)["external_id"] in stored and change(2)["external_id"] not in stored


def test_a_failed_chunk_fails_the_stage_and_leaves_earlier_chunks_committed(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = chunks(tmp_path, [change(i) for i in range(1, 8)], 3)
    real_factory = database.session
    calls: list[int] = []

    def failing_on_the_third_write() -> AbstractContextManager[Session]:
        calls.append(1)
        if len(calls) >= 4 and database.dialect == "sqlite":
            raise RuntimeError("disk full")
        return real_factory()

    if database.dialect == "postgresql":
        real_write = upsert._copy_upsert

        def fail_third(session: Session, table: Any, *args: Any) -> None:
            if "sf_acme_Lead_00Q000000000000007" in table["external_id"].to_pylist():
                raise RuntimeError("disk full")
            real_write(session, table, *args)

        monkeypatch.setattr(upsert, "_copy_upsert", fail_third)
        with pytest.raises(RuntimeError, match="disk full"):
            apply(database, paths)
    else:
        with pytest.raises(RuntimeError, match="disk full"):
            apply_chunks(failing_on_the_third_write, paths, project_id=42, integration_id=integration_id(database),
                         now=NOW)
    assert sorted(users(database)) == [f"sf_acme_Lead_00Q00000000000000{i}" for i in range(1, 7)]


def test_sqlite_values_read_back_through_the_model_as_written() -> None:
    moment = datetime(2024, 2, 3, 4, 5, 6, 789012)
    assert upsert.sqlite_datetime(moment) == "2024-02-03 04:05:06.789012"
    assert upsert.sqlite_datetime(datetime(1, 1, 1)) == "0001-01-01 00:00:00.000000"
