"""The production topology on one machine, as real processes on free ports.

- Dagster's storage on PostgreSQL, configured by the repo's production ``dagster.postgres.yaml``;
- the code location served by ``dagster api grpc`` and named in a ``grpc_server`` workspace,
  written from ``deploy/docker/workspace.yaml`` with this machine's host and port;
- one ``dagster-daemon`` (sensors and the run queue) and one ``dagster-webserver``.

Runs are launched by the default run launcher, which asks the gRPC code server to start each run
in a new process. The deploy tests and ``bench/deploy.py`` both use it.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import requests
import yaml
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[2]
PRODUCTION_INSTANCE = REPO / "dagster.postgres.yaml"
GRPC_WORKSPACE = REPO / "deploy" / "docker" / "workspace.yaml"
DOCKERFILE = REPO / "Dockerfile"
LOCATION = "sf_pipeline"
BIN = Path(sys.executable).parent
STARTUP_TIMEOUT_S = 240.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(condition: Any, *, timeout: float, what: str, interval: float = 0.5) -> Any:
    """Poll ``condition()`` until it returns something truthy (returned) or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def dagster_pg_env(url: str) -> dict[str, str]:
    """The ``DAGSTER_PG_*`` variables ``dagster.postgres.yaml`` reads, for one database URL."""
    parsed = make_url(url)
    if (parsed.port or 5432) != 5432:
        raise ValueError("dagster.postgres.yaml names port 5432")
    return {
        "DAGSTER_PG_USERNAME": parsed.username or "postgres",
        "DAGSTER_PG_PASSWORD": parsed.password or "",
        "DAGSTER_PG_HOST": parsed.host or "127.0.0.1",
        "DAGSTER_PG_DB": parsed.database or "",
    }


def instance_config(max_concurrent_runs: int) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(PRODUCTION_INSTANCE.read_text())
    config["concurrency"]["runs"]["max_concurrent_runs"] = max_concurrent_runs
    return config


def grpc_workspace(host: str, port: int) -> dict[str, Any]:
    workspace: dict[str, Any] = yaml.safe_load(GRPC_WORKSPACE.read_text())
    [entry] = workspace["load_from"]
    entry["grpc_server"].update(host=host, port=port)
    return workspace


def image_command() -> list[str]:
    """The code image's CMD (its exec form), as the Dockerfile declares it."""
    [line] = [ln for ln in DOCKERFILE.read_text().splitlines() if ln.startswith("CMD ")]
    command: list[str] = json.loads(line.removeprefix("CMD "))
    return command


def code_server_command(port: int) -> list[str]:
    """The image's command, run from this virtualenv and bound to loopback on ``port``."""
    command = image_command()
    command[0] = str(BIN / command[0])
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--port") + 1] = str(port)
    return command


@dataclass
class Stack:
    folder: Path
    dagster_home: Path
    grpc_port: int
    webserver_port: int
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def webserver_url(self) -> str:
        return f"http://127.0.0.1:{self.webserver_port}"

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = requests.post(f"{self.webserver_url}/graphql", json={"query": query, "variables": variables or {}},
                                 timeout=60)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        if body.get("errors"):
            raise AssertionError(f"GraphQL errors: {body['errors']}")
        data: dict[str, Any] = body["data"]
        return data

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise AssertionError(f"{name} exited with {process.returncode}:\n{self.log(name)[-4000:]}")


def _die_with_parent() -> None:
    """Linux's PR_SET_PDEATHSIG: the child gets SIGTERM if the test process dies without cleaning
    up (a killed pytest would otherwise leave a daemon, a webserver and a code server behind).
    Hand-written because no declared dependency offers it."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)


def _start(stack: Stack, name: str, args: Sequence[str], env: dict[str, str]) -> None:
    out = (stack.folder / f"{name}.log").open("wb")
    # A session of its own, so stopping it also stops the run processes it started.
    stack.processes[name] = subprocess.Popen(list(args), env=env, stdout=out, stderr=subprocess.STDOUT,
                                             cwd=stack.folder, start_new_session=True,
                                             preexec_fn=_die_with_parent)
    out.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    else:  # children may outlive a leader that already exited
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


WORKSPACE_QUERY = """
query { workspaceOrError { __typename ... on Workspace { locationEntries {
  name locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""

SENSOR_QUERY = """
query ($selector: SensorSelector!) { sensorOrError(sensorSelector: $selector) {
  __typename ... on Sensor { id sensorState { id status } } } }
"""

STOP_SENSOR = """
mutation ($id: String!) { stopSensor(id: $id) { __typename
  ... on StopSensorMutationResult { instigationState { status } } ... on PythonError { message } } }
"""


def _location_loaded(stack: Stack) -> bool:
    try:
        data = stack.graphql(WORKSPACE_QUERY)
    except requests.RequestException:
        return False
    entries = data["workspaceOrError"].get("locationEntries", [])
    return any(e["name"] == LOCATION and (e["locationOrLoadError"] or {}).get("__typename") == "RepositoryLocation"
               for e in entries)


def stop_sensor(stack: Stack, name: str) -> str:
    """Stop a sensor through the webserver's GraphQL API, as the UI's toggle does."""
    selector = {"repositoryLocationName": LOCATION, "repositoryName": "__repository__", "sensorName": name}
    sensor = stack.graphql(SENSOR_QUERY, {"selector": selector})["sensorOrError"]
    result = stack.graphql(STOP_SENSOR, {"id": sensor["sensorState"]["id"]})["stopSensor"]
    status: str = result["instigationState"]["status"]
    return status


@contextmanager
def production_stack(
    folder: Path,
    *,
    dagster_database_url: str,
    env: dict[str, str],
    max_concurrent_runs: int,
    stopped_sensors: Sequence[str] = (),
) -> Iterator[Stack]:
    """Start the gRPC code server, the webserver and (once ``stopped_sensors`` are stopped) the
    daemon; stop them all at the end. ``env`` is the code's environment (database, key, CA, ...).

    The ``DAGSTER_PG_*`` variables are also set in this process while the stack runs, so
    ``DagsterInstance.get()`` here reads the same storage."""
    dagster_home = folder / "dagster_home"
    dagster_home.mkdir(parents=True)
    stack = Stack(folder=folder, dagster_home=dagster_home, grpc_port=free_port(), webserver_port=free_port())
    pg_env = dagster_pg_env(dagster_database_url)
    (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(instance_config(max_concurrent_runs)))
    workspace = folder / "workspace.yaml"
    workspace.write_text(yaml.safe_dump(grpc_workspace("127.0.0.1", stack.grpc_port)))
    child_env = {**os.environ, **env, **pg_env, "DAGSTER_HOME": str(dagster_home)}
    saved = {key: os.environ.get(key) for key in [*pg_env, "DAGSTER_HOME"]}
    os.environ.update({**pg_env, "DAGSTER_HOME": str(dagster_home)})
    try:
        _start(stack, "grpc", code_server_command(stack.grpc_port), child_env)
        wait_for(lambda: stack.check_alive() or _port_open(stack.grpc_port), timeout=STARTUP_TIMEOUT_S,
                 what="the gRPC code server")
        _start(stack, "webserver", [str(BIN / "dagster-webserver"), "-w", str(workspace), "-h", "127.0.0.1",
                                    "-p", str(stack.webserver_port)], child_env)
        wait_for(lambda: stack.check_alive() or _location_loaded(stack), timeout=STARTUP_TIMEOUT_S,
                 what="the webserver to load the code location from the gRPC server")
        for name in stopped_sensors:
            stop_sensor(stack, name)
        _start(stack, "daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)], child_env)
        yield stack
    finally:
        for name in ("daemon", "webserver", "grpc"):
            if name in stack.processes:
                _stop(stack.processes[name])
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def sensor_ticks(instance: dg.DagsterInstance, sensor_name: str) -> list[Any]:
    """Every recorded tick of one sensor, oldest first, from the instance's tick history."""
    states = [s for s in instance.all_instigator_state() if s.instigator_name == sensor_name]
    ticks: list[Any] = []
    for state in states:
        ticks.extend(instance.get_ticks(state.instigator_origin_id, state.selector_id))
    return sorted(ticks, key=lambda t: t.timestamp)
