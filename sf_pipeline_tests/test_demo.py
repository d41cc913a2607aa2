"""``sf-pipeline demo`` end to end: the sandbox, the demo integration, ``dagster dev`` with its daemon
launching the initial sync, the activity generator, and a clean stop on SIGINT."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sf_pipeline.demo.activity import ActivityGenerator
from sf_pipeline.demo.launcher import DEMO_NAME, SandboxInfo, connect_demo, demo_spec_text
from sf_pipeline.integration_spec import parse_spec
from sf_pipeline.sandbox.testing import SandboxHandle
from sf_pipeline.secrets import Cipher
from sf_pipeline.settings import load_settings
from sf_pipeline.storage.database import Database
from sf_pipeline.storage.integrations import get_integration
from sf_pipeline_tests.harness import TEST_KEY

REPO = Path(__file__).resolve().parents[1]
CLEARED_ENV = ("DAGSTER_HOME", "SF_PIPELINE_DATABASE_URL", "SF_PIPELINE_SECRET_KEY", "SF_PIPELINE_KEY_FILE",
               "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def processes_with_env(name: str, path: Path) -> list[int]:
    """PIDs of live processes whose environment holds ``name=path`` (children inherit it)."""
    wanted = {f"{name}={value}".encode() for value in (path, path.resolve())}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and wanted & set(environ.split(b"\0")):
            found.append(int(entry.name))
    return found


class Output:
    """Collects a child's output lines in a thread, so waiting for a line never blocks."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def text(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_for(self, predicate: Callable[[str], bool], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    if predicate(line):
                        return line
                seen = len(self.lines)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no such line within {timeout:g}s; output so far:\n{self.text()}")
                self._changed.wait(min(remaining, 1.0))


def sandbox_info(sandbox: SandboxHandle) -> SandboxInfo:
    return SandboxInfo(
        login_url=sandbox.login_url, instance_url=sandbox.instance_url, ca_bundle=sandbox.ca_bundle,
        client_id=sandbox.client_id, client_secret=sandbox.client_secret, username=sandbox.username,
        password=sandbox.password,
    )


def test_demo_integration_file_is_valid() -> None:
    spec = parse_spec(demo_spec_text("https://127.0.0.1:8443"))
    assert spec.name == DEMO_NAME
    assert spec.project_id == 1
    assert set(spec.objects) == {"Lead", "Contact", "CampaignMember"}
    assert spec.objects["Lead"].rules
    mappings = {(m.field, m.property, m.object) for m in spec.mappings or []}
    assert ("HasOptedOutOfEmail", "unsubscribed", None) in mappings
    assert ("Lead.Email", "email", "CampaignMember") in mappings


def test_connect_demo_connects_then_reconnects(small_sandbox: SandboxHandle, tmp_path: Path) -> None:
    database = Database.from_settings(load_settings({"SF_PIPELINE_HOME": str(tmp_path)}))
    cipher = Cipher(TEST_KEY)
    info = sandbox_info(small_sandbox)
    try:
        first = connect_demo(database, cipher, info)
        assert not first.reconnected and first.connected.created
        assert first.applied.activated and first.applied.status_after == "active"
        assert first.applied.mappings == 10
        with database.session() as session:
            integration = get_integration(session, DEMO_NAME)
            assert integration.sync_requested_at is not None
            integration.sync_requested_at = None  # as if the initial sync ran
        # A later demo: a fresh sandbox process with the same org id and client; same integration.
        again = connect_demo(database, cipher, info)
        assert again.reconnected and not again.applied.activated
        assert again.connected.org_id == first.connected.org_id
        assert again.resync_requested
        with database.session() as session:
            integration = get_integration(session, DEMO_NAME)
            assert integration.status == "active"
            assert integration.sync_requested_at is not None and integration.full_sync_requested
    finally:
        database.dispose()


def test_activity_changes_mapped_fields_creates_and_deletes(small_sandbox: SandboxHandle) -> None:
    org = small_sandbox.org
    leads_before = {r["Id"]: r for r in org.records("Lead")}
    contacts_before = org.count("Contact")
    generator = ActivityGenerator(small_sandbox.control, seed=5, delete_chance=1.0)
    done = generator.step()
    assert 2 <= done.updated["Lead"] <= 4 and 1 <= done.updated["Contact"] <= 3
    assert done.created["Lead"] >= 1 and done.deleted["Lead"] == 1
    leads_after = {r["Id"]: r for r in org.records("Lead", include_deleted=True)}
    changed = [i for i in leads_before if leads_after[i]["FirstName"] != leads_before[i]["FirstName"]
               or leads_after[i]["Industry"] != leads_before[i]["Industry"]]
    assert changed, "no mapped Lead field changed"
    assert sum(1 for r in leads_after.values() if r["IsDeleted"]) == 1
    new = [r for i, r in leads_after.items() if i not in leads_before]
    assert len(new) == done.created["Lead"] and all(r["Email"].endswith("@demo.example") for r in new)
    assert org.count("Contact") == contacts_before + done.created["Contact"]
    assert "updated" in done.describe() and "deleted 1 Lead" in done.describe()


@pytest.fixture
def demo_home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    yield home
    # Whatever the test's outcome, nothing it started outlives it.
    for pid in processes_with_env("SF_PIPELINE_HOME", home):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def status_json(env: dict[str, str]) -> list[dict[str, object]]:
    out = subprocess.run(
        [sys.executable, "-m", "sf_pipeline.cli.main", "status", "--json"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    rows: list[dict[str, object]] = json.loads(out.strip().splitlines()[-1])
    return rows


def sync_runs(dagster_home: Path) -> list[tuple[str, dict[str, str]]]:
    """(status, tags) of every ``sync_integration`` run of partition ``demo``, oldest first."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        records = instance.get_run_records(
            dg.RunsFilter(job_name="sync_integration", tags={"dagster/partition": "demo"}), ascending=True
        )
        return [(r.dagster_run.status.value, dict(r.dagster_run.tags)) for r in records]


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_demo_starts_syncs_and_stops_cleanly(demo_home: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in CLEARED_ENV}
    env["SF_PIPELINE_HOME"] = str(demo_home)
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "sf_pipeline.cli.main", "demo", "--port", str(port), "--records", "300",
         "--seed", "7", "--activity-interval", "3", "--no-browser-hint"],
        env=env, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )
    output = Output(process)
    try:
        line = output.wait_for(lambda text: text.startswith("Dagster UI: "), timeout=240)
        url = line.split()[2]
        assert url == f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{url}/server_info", timeout=10) as response:
            assert json.loads(response.read())["dagster_webserver_version"] == "1.13.27"
        ui_ready = time.monotonic() - started

        # The daemon's dispatcher sensor launches the initial sync, which succeeds.
        dagster_home = demo_home / "dagster"
        assert (dagster_home / "dagster.yaml").is_file()
        deadline = time.monotonic() + 120
        runs = sync_runs(dagster_home)
        while not any(status == "SUCCESS" for status, _ in runs):
            failed = [tags for status, tags in runs if status in ("FAILURE", "CANCELED")]
            assert not failed, f"the initial sync failed: {failed}\n{output.text()}"
            assert time.monotonic() < deadline, f"no successful sync within 120s: {runs}\n{output.text()}"
            assert process.poll() is None, output.text()
            time.sleep(2)
            runs = sync_runs(dagster_home)
        tags = next(t for s, t in runs if s == "SUCCESS")
        assert tags.get("dagster/sensor_name") == "sync_dispatcher"
        assert tags.get("sf_pipeline/trigger") == "activation"
        synced = time.monotonic() - started

        env_for_cli = {**env, "DAGSTER_HOME": str(dagster_home)}
        [row] = status_json(env_for_cli)
        assert row["name"] == "demo"
        assert row["status"] == "active"
        assert row["last_synced_at"] is not None
        assert row["frequency_minutes"] == 5

        output.wait_for(lambda text: text.startswith("Activity: updated"), timeout=60)
        assert process.poll() is None, output.text()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
    text = output.text()
    assert code == 0, text
    assert "Demo stopped." in text
    assert "Traceback" not in text
    # Dagster's process group and the sandbox are gone, and the port is free again.
    deadline = time.monotonic() + 10
    while processes_with_env("SF_PIPELINE_HOME", demo_home) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_with_env("SF_PIPELINE_HOME", demo_home) == []
    with socket.socket() as sock:  # nothing listens there (closed connections may linger in TIME_WAIT)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()
    print(f"UI ready after {ui_ready:.1f}s, initial sync succeeded after {synced:.1f}s")
