"""A sync killed at any point (SIGKILL, even mid-write) and run again leaves exactly the users
table an uninterrupted sync would have, and its watermark never moves past unsynced records."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from sf_pipeline.sandbox.testing import SandboxHandle, serve_in_thread
from sf_pipeline.storage.models import SyncState, User
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


def watermarks(p: Pipeline) -> dict[str, object]:
    with p.database.session() as session:
        return {s.object_name: s.watermark for s in session.scalars(select(SyncState))}


def start_child(p: Pipeline) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SF_PIPELINE_HOME": str(p.services.settings.home),
        "SF_PIPELINE_DATABASE_URL": p.database.url.render_as_string(hide_password=False),
        "SF_PIPELINE_SECRET_KEY": TEST_KEY,
        "PAGE_SIZE": "200",
    }
    return subprocess.Popen([sys.executable, "-m", "sf_pipeline_tests.sync.sync_child", p.name], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def kill_mid_write(p: Pipeline, before: int, *, deadline_s: float = 120) -> bool:
    """Start a sync and SIGKILL it once it has written some users but not all. Returns whether
    the kill landed mid-write (False if the sync finished first)."""
    child = start_child(p)
    stop = time.monotonic() + deadline_s
    try:
        while time.monotonic() < stop and child.poll() is None:
            if user_count(p) > before:
                child.send_signal(signal.SIGKILL)
                child.wait()
                return True
            time.sleep(0.01)
        return False
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def kill_after(p: Pipeline, seconds: float) -> bool:
    """SIGKILL a sync after ``seconds``; returns False if it had already finished."""
    child = start_child(p)
    time.sleep(seconds)
    interrupted = child.poll() is None
    child.send_signal(signal.SIGKILL)
    child.wait()
    return interrupted


def test_a_sync_killed_anywhere_then_rerun_equals_an_uninterrupted_one(
    sandbox: SandboxHandle, database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "killed").mkdir()
    (tmp_path / "reference").mkdir()
    with pipeline(sandbox, database_url, tmp_path / "killed", page_size=200) as killed:
        # Initial full sync, killed early (extracting), then mid-write, then allowed to finish.
        assert kill_after(killed, 1.0)
        assert watermarks(killed) == {}
        assert kill_mid_write(killed, before=0)
        assert user_count(killed) > 0
        assert watermarks(killed) == {}, "a killed run must not move the watermark"
        killed.sync()
        with pipeline(sandbox, sqlite_url(tmp_path / "reference"), tmp_path / "reference",
                      name="acme") as reference:
            reference.sync()
            assert table(killed) == table(reference)

            # An incremental run with many changes, killed mid-write, then rerun.
            w = max(v for v in watermarks(killed).values() if v is not None)
            assert isinstance(w, object)
            for i, record in enumerate(sandbox.org.records("Contact")[:3000]):
                sandbox.org.update("Contact", record["Id"], {"FirstName": f"Changed{i}"},
                                   at=w + timedelta(seconds=1 + i // 50))  # type: ignore[operator]
            sandbox.org.delete("Contact", [r["Id"] for r in sandbox.org.records("Contact")[-5:]],
                               at=w + timedelta(seconds=500))  # type: ignore[operator]
            marks = watermarks(killed)
            interrupted = 0
            for delay in (1.0, 1.5, 2.0, 2.5, 3.0):  # start-up, extracting, diffing, writing
                if not kill_after(killed, delay):
                    break  # it finished before the kill: a completed run may move the watermark
                interrupted += 1
                assert watermarks(killed) == marks, "a killed run must not move the watermark"
            assert interrupted >= 2
            killed.sync()
            reference.sync()
            assert table(killed) == table(reference)
