"""The pieces of ``sf-pipeline demo``: the sandbox and ``dagster dev`` as child processes (each its
own process group, so either can be stopped whole), and the demo integration connected to the
sandbox without a browser.

Children are started while this process handles SIGINT and SIGTERM itself (see ``cli.demo``), so
they begin with the default dispositions: a child that inherited *ignored* SIGINT would, like
``dagster dev``, also ignore SIGTERM (it maps SIGTERM to SIGINT's handler).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import IO, Any

from sf_pipeline.connect import ConnectResult, connect, reconnect
from sf_pipeline.errors import UserError
from sf_pipeline.integration_spec import ApplyResult, apply_spec, parse_spec
from sf_pipeline.lifecycle import SCHEDULED
from sf_pipeline.salesforce.oauth import ClientCredentials, RefreshTokenImport
from sf_pipeline.salesforce.session import describe_provider
from sf_pipeline.sandbox.control import ControlClient
from sf_pipeline.secrets import Cipher
from sf_pipeline.settings import Settings
from sf_pipeline.storage.database import Database
from sf_pipeline.storage.integrations import find_integration

DEMO_NAME = "demo"
DEMO_PROJECT_ID = 1
SPEC_RESOURCE = "demo_integration.yaml"
ROOT = Path(__file__).resolve().parents[2]  # the repository, for workspace.yaml and dagster.yaml


class DemoError(UserError):
    """Something the demo needs failed to start; the message says what and where its log is."""

    exit_code = 1


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived while the demo was still starting."""


# --- files -------------------------------------------------------------------------------------------


def project_file(name: str) -> Path:
    """``workspace.yaml`` or ``dagster.yaml``: from the current folder, else from the repository."""
    for candidate in (Path.cwd() / name, ROOT / name):
        if candidate.is_file():
            return candidate.resolve()
    raise DemoError(f"cannot find {name}: run the demo from the sf_pipeline repository (with `make demo`)")


def prepare_dagster_home(settings: Settings) -> Path:
    """``DAGSTER_HOME`` (default ``<home>/dagster``), given the repository's ``dagster.yaml`` if it
    has none."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        shutil.copyfile(project_file("dagster.yaml"), config)
    return home


def demo_spec_text(login_url: str) -> str:
    template = resources.files("sf_pipeline.demo").joinpath(SPEC_RESOURCE).read_text(encoding="utf-8")
    return template.replace("{login_url}", login_url)


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


# --- child processes --------------------------------------------------------------------------------


@dataclass
class Child:
    """A child process that leads its own process group (``start_new_session``)."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def group_alive(self) -> bool:
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def stop(self, *, timeout: float = 30.0) -> None:
        """SIGTERM the whole group, wait for the leader and its group, then SIGKILL what is left."""
        self._signal_group(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        while self.group_alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        if self.process.poll() is None or self.group_alive():
            self._signal_group(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
            end = time.monotonic() + 10
            while self.group_alive() and time.monotonic() < end:
                time.sleep(0.1)

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)


def _spawn(name: str, argv: list[str], *, env: dict[str, str], log: Path, cwd: Path | None = None,
           stdout_pipe: bool = False) -> Child:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as log_file:
        process = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else log_file,
            stderr=log_file,
            start_new_session=True,
        )
    return Child(name, process, log)


def _read_line(child: Child, stream: IO[bytes], *, timeout: float, stop: threading.Event) -> str:
    """The first line ``child`` writes to ``stream``, without blocking past ``timeout`` or a stop."""
    buffer = b""
    deadline = time.monotonic() + timeout
    fd = stream.fileno()
    while b"\n" not in buffer:
        if stop.is_set():
            raise Interrupted()
        if time.monotonic() > deadline:
            raise DemoError(f"{child.name} did not start within {timeout:g}s (log: {child.log})")
        ready, _, _ = select.select([fd], [], [], 0.25)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            child.process.wait(timeout=5)
            raise DemoError(
                f"{child.name} exited with status {child.process.returncode} before it was ready "
                f"(log: {child.log}):\n{log_tail(child.log)}"
            )
        buffer += chunk
    return buffer.split(b"\n", 1)[0].decode("utf-8")


@dataclass(frozen=True)
class SandboxInfo:
    login_url: str
    instance_url: str
    ca_bundle: str | None
    client_id: str
    client_secret: str
    username: str
    password: str

    def control(self) -> ControlClient:
        return ControlClient(self.instance_url, secret=self.client_secret, verify=self.ca_bundle or True)


def start_sandbox(
    home: Path,
    *,
    records: int,
    seed: int,
    env: dict[str, str],
    stop: threading.Event,
    timeout: float = 180.0,
    latency_profile: str = "none",
) -> tuple[Child, SandboxInfo]:
    """``sf-pipeline sandbox serve --json`` as a child; returns once its JSON line is read.

    ``latency_profile="salesforce"`` makes the child answer with a production org's response times."""
    state = home / "sandbox"
    argv = [sys.executable, "-m", "sf_pipeline.cli.main", "sandbox", "serve", "--json",
            "--records", str(records), "--seed", str(seed), "--state", str(state),
            "--latency-profile", latency_profile]
    child = _spawn("the sandbox", argv, env=env, log=home / "logs" / "sandbox.log", stdout_pipe=True)
    try:
        assert child.process.stdout is not None
        line = _read_line(child, child.process.stdout, timeout=timeout, stop=stop)
        try:
            data: dict[str, Any] = json.loads(line)
            info = SandboxInfo(**{key: data[key] for key in SandboxInfo.__dataclass_fields__})
        except (ValueError, KeyError, TypeError) as exc:
            raise DemoError(f"the sandbox printed {line!r}, not its JSON description ({exc})") from None
    except BaseException:
        child.stop(timeout=10)
        raise
    return child, info


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def start_dagster(
    *, port: int, env: dict[str, str], log: Path, host: str = "127.0.0.1"
) -> Child:
    """``dagster dev -w workspace.yaml`` (webserver, daemon and code server) as a child group."""
    workspace = project_file("workspace.yaml")
    argv = [sys.executable, "-m", "dagster", "dev", "-w", str(workspace), "-h", host, "-p", str(port)]
    return _spawn("Dagster", argv, env=env, log=log, cwd=workspace.parent)


def wait_for_webserver(
    child: Child, url: str, *, timeout: float, stop: threading.Event
) -> dict[str, Any]:
    """Poll ``url`` (``/server_info``) until it answers; fail if ``child`` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        if stop.is_set():
            raise Interrupted()
        if not child.running():
            raise DemoError(
                f"`dagster dev` exited with status {child.process.returncode} (log: {child.log}):\n"
                f"{log_tail(child.log)}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    info: dict[str, Any] = json.loads(response.read() or b"{}")
                    return info
        except (urllib.error.URLError, OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise DemoError(f"the Dagster UI did not answer at {url} within {timeout:g}s (log: {child.log})")
        stop.wait(0.5)


# --- the demo integration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoIntegration:
    connected: ConnectResult
    reconnected: bool
    applied: ApplyResult
    resync_requested: bool


def connect_demo(database: Database, cipher: Cipher, sandbox: SandboxInfo) -> DemoIntegration:
    """Connect ``demo`` to the sandbox with an imported refresh token (``reconnect`` when an earlier
    demo left it connected: the sandbox's org id is the same every time), then apply the demo file."""
    control = sandbox.control()
    try:
        refresh_token = control.issue_refresh_token()["refresh_token"]
    finally:
        control.close()
    authorizer = RefreshTokenImport(
        login_url=sandbox.login_url,
        client=ClientCredentials(sandbox.client_id, sandbox.client_secret),
        refresh_token=refresh_token,
    )
    with database.session() as session:
        existing = find_integration(session, DEMO_NAME)
        connected_before = existing is not None and existing.credential is not None
    if connected_before:
        connected = reconnect(database, cipher, DEMO_NAME, authorizer)
    else:
        connected = connect(database, cipher, DEMO_NAME, authorizer, project_id=DEMO_PROJECT_ID)
    spec = parse_spec(demo_spec_text(sandbox.login_url), source=SPEC_RESOURCE)
    now = datetime.now(UTC)
    resync = False
    with database.session() as session:
        applied = apply_spec(session, spec, describe=describe_provider(database, cipher, DEMO_NAME), now=now)
        integration = find_integration(session, DEMO_NAME)
        if connected_before and not applied.activated and integration is not None \
                and integration.status in SCHEDULED:
            # The sandbox generates its org afresh at every start: sync it in full at the next tick.
            integration.sync_requested_at = now
            integration.full_sync_requested = True
            resync = True
    return DemoIntegration(connected=connected, reconnected=connected_before, applied=applied,
                           resync_requested=resync)
