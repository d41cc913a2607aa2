"""One sync at a time per integration: a lease row in the application database.

Every run that works on an integration (a sync from the CLI, the dispatcher, the UI or a
backfill; a health run) first takes the integration's lease under its Dagster run id, and keeps
it alive with a heartbeat from its worker process. Taking it is a single conditional UPDATE
(free, or already ours, or its holder has stopped heartbeating), which both SQLite (one writer at
a time) and PostgreSQL (a concurrent UPDATE of the same row waits, then re-checks the condition
against the committed row) apply atomically: two runs can never both see it free.

Lease times come from the system clock of the process that writes them, never from the
services' clock (tests pin that one), so the clocks of the hosts writing leases must agree to
well within the lease's time to live.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from sf_pipeline.storage.database import Database
from sf_pipeline.storage.integrations import get_integration
from sf_pipeline.storage.models import Integration, IntegrationLease

TTL_ENV = "SF_PIPELINE_LEASE_TTL_SECONDS"
HEARTBEAT_ENV = "SF_PIPELINE_HEARTBEAT_SECONDS"
DEFAULT_TTL_SECONDS = 45.0
DEFAULT_HEARTBEAT_SECONDS = 5.0


def ttl() -> timedelta:
    """How long a holder may go without a heartbeat before its lease is free for the taking."""
    return timedelta(seconds=float(os.environ.get(TTL_ENV, DEFAULT_TTL_SECONDS)))


def heartbeat_interval() -> float:
    return float(os.environ.get(HEARTBEAT_ENV, DEFAULT_HEARTBEAT_SECONDS))


def wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Holder:
    run_id: str
    pid: int | None
    host: str | None
    acquired_at: datetime | None
    heartbeat_at: datetime | None

    def alive(self, now: datetime) -> bool:
        return self.heartbeat_at is not None and now - self.heartbeat_at <= ttl()

    def describe(self) -> str:
        beat = self.heartbeat_at.isoformat(timespec="seconds") if self.heartbeat_at else "never"
        return f"run {self.run_id} (pid {self.pid} on {self.host}, last heartbeat {beat})"


def _integration_id(database: Database, name: str) -> int:
    with database.session() as session:
        return get_integration(session, name).id


def _ensure_row(database: Database, integration_id: int) -> None:
    with database.session() as session:
        if session.get(IntegrationLease, integration_id) is not None:
            return
    try:
        with database.session() as session:
            session.add(IntegrationLease(integration_id=integration_id))
    except IntegrityError:
        pass  # another process created it first; either row is the same empty lease


def try_acquire(database: Database, name: str, run_id: str, *, now: datetime | None = None) -> bool:
    """Take the lease of ``name`` for ``run_id`` if it is free, ours, or its holder is dead."""
    now = now or wall_clock()
    integration_id = _integration_id(database, name)
    _ensure_row(database, integration_id)
    with database.session() as session:
        result = session.execute(
            update(IntegrationLease)
            .where(
                IntegrationLease.integration_id == integration_id,
                or_(
                    IntegrationLease.run_id.is_(None),
                    IntegrationLease.run_id == run_id,
                    IntegrationLease.heartbeat_at < now - ttl(),
                ),
            )
            .values(run_id=run_id, pid=os.getpid(), host=socket.gethostname(), acquired_at=now, heartbeat_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def holder(database: Database, name: str) -> Holder | None:
    with database.session() as session:
        integration_id = get_integration(session, name).id
        row = session.get(IntegrationLease, integration_id)
        if row is None or row.run_id is None:
            return None
        return Holder(row.run_id, row.pid, row.host, row.acquired_at, row.heartbeat_at)


def held_by(database: Database, run_id: str) -> tuple[str, Holder] | None:
    """The integration whose lease ``run_id`` holds, if any."""
    with database.session() as session:
        row = session.execute(
            select(Integration.name, IntegrationLease)
            .join(IntegrationLease, IntegrationLease.integration_id == Integration.id)
            .where(IntegrationLease.run_id == run_id)
        ).first()
        if row is None:
            return None
        name, lease = row
        return name, Holder(run_id, lease.pid, lease.host, lease.acquired_at, lease.heartbeat_at)


def live_holders(database: Database, *, now: datetime | None = None) -> dict[str, str]:
    """Integration name → run id, for every lease whose holder is heartbeating (one query)."""
    now = now or wall_clock()
    with database.session() as session:
        rows = session.execute(
            select(Integration.name, IntegrationLease.run_id)
            .join(IntegrationLease, IntegrationLease.integration_id == Integration.id)
            .where(IntegrationLease.run_id.is_not(None), IntegrationLease.heartbeat_at >= now - ttl())
        ).all()
    return {name: run_id for name, run_id in rows if run_id is not None}


def beat(database: Database, run_id: str, *, now: datetime | None = None) -> bool:
    """Refresh the heartbeat; False when ``run_id`` no longer holds any lease."""
    with database.session() as session:
        result = session.execute(
            update(IntegrationLease)
            .where(IntegrationLease.run_id == run_id)
            .values(heartbeat_at=now or wall_clock())
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def release(database: Database, run_id: str) -> None:
    """Give up whatever lease ``run_id`` holds (a no-op when it holds none)."""
    with database.session() as session:
        session.execute(
            update(IntegrationLease)
            .where(IntegrationLease.run_id == run_id)
            .values(run_id=None, pid=None, host=None, acquired_at=None, heartbeat_at=None)
            .execution_options(synchronize_session=False)
        )


def acquire(
    database: Database,
    name: str,
    run_id: str,
    *,
    timeout_s: float,
    poll_s: float = 0.5,
    may_take: Callable[[], bool] | None = None,
    on_wait: Callable[[Holder | None], None] | None = None,
) -> None:
    """Wait until the lease is ours. ``may_take`` is asked before each attempt (the CLI also waits
    for Dagster runs of the integration that are starting); ``on_wait`` is called on every poll
    while waiting. Raises ``TimeoutError`` naming the holder."""
    deadline = time.monotonic() + timeout_s
    while True:
        if (may_take is None or may_take()) and try_acquire(database, name, run_id):
            return
        current = holder(database, name)
        if time.monotonic() > deadline:
            who = current.describe() if current else "another run"
            raise TimeoutError(f"integration '{name}' is being synced by {who}")
        if on_wait is not None:
            on_wait(current)
        time.sleep(poll_s)


class Heartbeat:
    """Refreshes a run's lease from a background thread until stopped. One per run id per process
    (the CLI starts it before the run; the run's own resource then finds it running)."""

    _running: dict[str, Heartbeat] = {}
    _lock = threading.Lock()

    def __init__(self, database: Database, run_id: str) -> None:
        self.database = database
        self.run_id = run_id
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"lease-heartbeat-{run_id[:8]}", daemon=True)
        self._users = 0

    @classmethod
    def start(cls, database: Database, run_id: str) -> Heartbeat:
        with cls._lock:
            beat_ = cls._running.get(run_id)
            if beat_ is None:
                beat_ = cls._running[run_id] = Heartbeat(database, run_id)
                beat_._thread.start()
            beat_._users += 1
            return beat_

    def stop(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users > 0:
                return
            self._running.pop(self.run_id, None)
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(heartbeat_interval()):
            try:
                if not beat(self.database, self.run_id):
                    self.lost.set()
                    return
            except Exception:  # a database hiccup: the next beat retries, the TTL tolerates a few
                continue
