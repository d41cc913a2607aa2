"""Running the installed ``sf-pipeline`` executable and Dagster's processes for the run tests, and
checking recorded intervals for overlap."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import dagster as dg
import requests
import yaml
from sqlalchemy import select

from sf_pipeline.storage.models import LogEvent, SyncRun
from sf_pipeline_tests.dbs import empty_database_url
from sf_pipeline_tests.harness import TEST_KEY, Pipeline

T = TypeVar("T")

BIN = Path(sys.executable).parent
SF_PIPELINE = str(BIN / "sf-pipeline")


def cli_env(p: Pipeline, **extra: str) -> dict[str, str]:
    """The environment of a deployment: the pipeline's home and database, the secret key, the
    sandbox's CA, and Dagster's home inside the pipeline's home."""
    home = p.services.settings.home
    return {
        **os.environ,
        "SF_PIPELINE_HOME": str(home),
        "SF_PIPELINE_DATABASE_URL": p.database.url.render_as_string(hide_password=False),
        "SF_PIPELINE_SECRET_KEY": TEST_KEY,
        "DAGSTER_HOME": str(home / "dagster"),
        **extra,
    }


def overlaps(intervals: Sequence[tuple[str, float | datetime, float | datetime]]) -> list[tuple[str, str]]:
    """Every pair of (id, start, end) intervals that overlap."""
    ordered = sorted(intervals, key=lambda i: i[1])  # type: ignore[arg-type,return-value]
    found = []
    for i, (a, _, a_end) in enumerate(ordered):
        for b, b_start, _ in ordered[i + 1:]:
            if b_start < a_end:  # type: ignore[operator]
                found.append((a, b))
    return found


def sync_runs(p: Pipeline) -> list[SyncRun]:
    with p.database.session() as session:
        return list(session.scalars(select(SyncRun).order_by(SyncRun.started_at)))


def events(p: Pipeline, event_type: str) -> list[LogEvent]:
    with p.database.session() as session:
        return list(session.scalars(select(LogEvent).where(LogEvent.type == event_type).order_by(LogEvent.id)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], T], *, timeout_s: float, what: str, poll_s: float = 0.25) -> T:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` after the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(poll_s)


@dataclass
class Deployment:
    instance: dg.DagsterInstance
    env: dict[str, str]
    home: Path
    graphql_port: int | None


# Short enough that a test sees a dead run reaped in seconds; the detection itself is the real one.
# The TTL leaves a live worker 15 missed heartbeats: on a machine loaded 15-30 deep, a 6 s TTL
# could let the watchdog take a slow but live run for a dead one (the production TTL is 45 s, 9 beats).
FAST_RUN_SETTINGS = {
    "SF_PIPELINE_LEASE_TTL_SECONDS": "15",
    "SF_PIPELINE_HEARTBEAT_SECONDS": "1",
    "SF_PIPELINE_WATCHDOG_SECONDS": "2",
    "SF_PIPELINE_DISPATCH_SECONDS": "2",
}


@contextmanager
def deployment(p: Pipeline, folder: Path, *, webserver: bool = False, max_concurrent_runs: int | None = None,
               **extra: str) -> Iterator[Deployment]:
    """Production shape on one machine: Dagster's storage in a fresh PostgreSQL database, the
    real ``dagster-daemon`` (with its own code server for the workspace) and, if asked, the
    webserver whose GraphQL endpoint the UI uses."""
    with empty_database_url("postgres", folder) as storage_url:
        home = folder / "dagster_home"
        home.mkdir()
        settings = yaml.safe_load(Path("dagster.yaml").read_text())
        settings["storage"] = {"postgres": {"postgres_url": storage_url}}
        if max_concurrent_runs is not None:
            settings["concurrency"]["runs"]["max_concurrent_runs"] = max_concurrent_runs
        (home / "dagster.yaml").write_text(yaml.safe_dump(settings))
        workspace = folder / "workspace.yaml"
        workspace.write_text(yaml.safe_dump({"load_from": [{"python_module": {
            "module_name": "sf_pipeline.definitions", "attribute": "defs", "location_name": "sf_pipeline"}}]}))
        env = cli_env(p, DAGSTER_HOME=str(home), **FAST_RUN_SETTINGS, **extra)
        children: list[subprocess.Popen[bytes]] = []
        logs = folder / "logs"
        logs.mkdir()
        instance = dg.DagsterInstance.from_config(str(home))
        try:
            children.append(_start([str(BIN / "dagster-daemon"), "run", "-w", str(workspace)], env,
                                   logs / "daemon.log"))
            port = None
            if webserver:
                port = free_port()
                children.append(_start([str(BIN / "dagster-webserver"), "-w", str(workspace), "-h", "127.0.0.1",
                                        "-p", str(port)], env, logs / "webserver.log"))
                wait_until(lambda: _answers(f"http://127.0.0.1:{port}/server_info"), timeout_s=300,
                           what="the webserver")
            yield Deployment(instance=instance, env=env, home=home, graphql_port=port)
        finally:
            for child in children:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGTERM)
            for child in children:
                try:
                    child.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(child.pid, signal.SIGKILL)
                    child.wait()
            instance.dispose()


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        # Its own process group, so stopping it stops the code server and run workers it started.
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False
