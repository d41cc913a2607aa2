"""A sync killed at any point (SIGKILL, even mid-write) and run again leaves exactly the users
table an uninterrupted sync would have, and its watermark never moves past unsynced records.

Kills are triggered by what the child has visibly done (run started, pages fetched, a write to
``users`` executed but not committed), not by timers, so the test means the same on a loaded machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from sf_pipeline.sandbox.testing import SandboxHandle, serve_in_thread
from sf_pipeline.storage.models import SyncRun, SyncState, User
from sf_pipeline_tests.conftest import trust
from sf_pipeline_tests.dbs import sqlite_url
from sf_pipeline_tests.harness import TEST_KEY, Pipeline, pipeline


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxHandle]:
    with serve_in_thread(records=10_000, seed=5) as sandbox:
        trust(monkeypatch, sandbox)
        yield sandbox


def table(p: Pipeline) -> set[tuple[object, ...]]:
    with p.database.session() as session:
        return {
            (u.external_id, u.email, u.phone, u.timezone, u.locale, repr(sorted(u.data.items())), u.deleted,
             u.source_object, u.source_id, u.source_modified_at, u.content_hash)
            for u in session.scalars(select(User))
        }


def user_count(p: Pipeline) -> int:
    with p.database.session() as session:
        return int(session.scalar(select(func.count()).select_from(User)) or 0)


def watermarks(p: Pipeline) -> dict[str, datetime | None]:
    with p.database.session() as session:
        return {s.object_name: s.watermark for s in session.scalars(select(SyncState))}


def runs(p: Pipeline) -> list[SyncRun]:
    with p.database.session() as session:
        return list(session.scalars(select(SyncRun).order_by(SyncRun.started_at)))


ROWS_PER_CHUNK = 1000


def start_child(p: Pipeline, hold: dict[str, str]) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SF_PIPELINE_HOME": str(p.services.settings.home),
        "SF_PIPELINE_DATABASE_URL": p.database.url.render_as_string(hide_password=False),
        "SF_PIPELINE_SECRET_KEY": TEST_KEY,
        "PAGE_SIZE": "200",
        "ROWS_PER_CHUNK": str(ROWS_PER_CHUNK),
        **hold,
    }
    return subprocess.Popen([sys.executable, "-m", "sf_pipeline_tests.sync.sync_child", p.name], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def kill_when(p: Pipeline, condition: Callable[[], bool], *, deadline_s: float = 180,
              hold: dict[str, str] | None = None) -> bool:
    """Start a sync and SIGKILL it the moment ``condition`` holds. Returns True when the kill
    interrupted a run that had not completed (its run row still says ``started``)."""
    known = {r.run_id for r in runs(p)}
    marks = watermarks(p)
    child = start_child(p, hold or {})
    stop = time.monotonic() + deadline_s
    try:
        while time.monotonic() < stop and child.poll() is None:
            if condition():
                child.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
    mine = [r for r in runs(p) if r.run_id not in known]
    interrupted = bool(mine) and mine[-1].status == "started"
    if interrupted:
        assert watermarks(p) == marks, "a killed run must not move the watermark"
    return interrupted


def kill_mid_write(p: Pipeline, folder: Path, nth: int) -> bool:
    """Kill the sync while its ``nth`` write to ``users`` is executed and not yet committed."""
    marker = folder / f"holding-{uuid.uuid4().hex}"
    return kill_when(p, marker.exists, hold={"HOLD_AT_WRITE": str(nth), "HOLD_MARKER": str(marker)})


def started(p: Pipeline, known: int) -> Callable[[], bool]:
    return lambda: len(runs(p)) > known


def fetching(p: Pipeline, known: int) -> Callable[[], bool]:
    return lambda: len(runs(p)) > known and runs(p)[-1].fetched > 0


def test_a_sync_killed_anywhere_then_rerun_equals_an_uninterrupted_one(
    sandbox: SandboxHandle, database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "killed").mkdir()
    (tmp_path / "reference").mkdir()
    with pipeline(sandbox, database_url, tmp_path / "killed", page_size=200) as killed:
        # The initial full sync: killed as it starts, while fetching, and inside the transaction of
        # its third chunk write (chunks of 1,000 rows: some are committed, one is half done).
        assert kill_when(killed, started(killed, 0))
        assert kill_when(killed, fetching(killed, len(runs(killed))))
        assert kill_mid_write(killed, tmp_path, 3)
        assert user_count(killed) >= 2 * ROWS_PER_CHUNK, "the chunks before the held one are committed"
        assert watermarks(killed) == {}
        killed.sync()
        with pipeline(sandbox, sqlite_url(tmp_path / "reference"), tmp_path / "reference") as reference:
            reference.sync()
            assert table(killed) == table(reference)

            # An incremental run with thousands of changes and some deletions: killed as it
            # starts, while fetching and mid-write (each kill leaves the watermark), then rerun.
            w = max(v for v in watermarks(killed).values() if v is not None)
            for i, record in enumerate(sandbox.org.records("Contact")[:3000]):
                sandbox.org.update("Contact", record["Id"], {"FirstName": f"Changed{i}"},
                                   at=w + timedelta(seconds=1 + i // 50))
            sandbox.org.delete("Contact", [r["Id"] for r in sandbox.org.records("Contact")[-5:]],
                               at=w + timedelta(seconds=500))
            before = table(killed)
            marks = watermarks(killed)
            assert kill_when(killed, started(killed, len(runs(killed))))
            assert kill_when(killed, fetching(killed, len(runs(killed))))
            assert kill_mid_write(killed, tmp_path, 2)
            assert watermarks(killed) == marks
            killed.sync()
            reference.sync()
            after = table(killed)
            assert after != before
            assert after == table(reference)
