"""``sf-pipeline demo`` (``make demo``): everything on one machine, until Ctrl-C.

1. the sandbox org (``sf-pipeline sandbox serve --json``) as a child process, trusted through
   ``REQUESTS_CA_BUNDLE`` / ``SSL_CERT_FILE`` here and in every child;
2. the integration ``demo`` connected to it with an imported refresh token (no browser) and the demo
   integration file applied, so it turns Active and its initial sync is requested;
3. ``dagster dev`` (webserver, daemon, code server) as its own process group, on ``--port``;
4. an activity generator that edits a few sandbox records every ``--activity-interval`` seconds.

State lives in ``SF_PIPELINE_HOME`` (default ``.sf_pipeline``): the SQLite app database, Dagster's
instance (``<home>/dagster`` unless ``DAGSTER_HOME`` is set) and the logs of both children in
``<home>/logs``. Ctrl-C or SIGTERM stops everything the demo started and exits 0.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from sf_pipeline.demo.activity import ActivityGenerator
from sf_pipeline.demo.launcher import (
    DEMO_NAME,
    Child,
    DemoError,
    Interrupted,
    SandboxInfo,
    connect_demo,
    log_tail,
    port_free,
    prepare_dagster_home,
    start_dagster,
    start_sandbox,
    wait_for_webserver,
)
from sf_pipeline.errors import UserError
from sf_pipeline.sandbox.control import ControlClient
from sf_pipeline.secrets import KEY_ENV, Cipher, read_or_create_key_file
from sf_pipeline.settings import Settings, load_settings, update_config
from sf_pipeline.storage.database import Database

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def say(message: str = "") -> None:
    typer.echo(message)


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP set ``stop`` instead of interrupting whatever runs.

    Handling them (rather than ignoring them) also means every child starts with the default
    dispositions, so ``dagster dev`` and the sandbox stop when signalled."""

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if not stop.is_set():
            typer.echo(f"\n{signal.Signals(signum).name}: stopping the demo...", err=True)
        stop.set()

    previous = {signum: signal.signal(signum, on_signal) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def demo_command(
    port: Annotated[int, typer.Option("--port", help="Port of the Dagster UI on 127.0.0.1.")] = 3000,
    records: Annotated[
        int,
        typer.Option("--records", help="Leads and Contacts in the sandbox (and records/5 CampaignMembers)."),
    ] = 5000,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the sandbox's records and the activity.")] = 1,
    activity_interval: Annotated[
        float,
        typer.Option("--activity-interval", help="Seconds between rounds of sandbox changes (0: none)."),
    ] = 60.0,
    no_browser_hint: Annotated[
        bool, typer.Option("--no-browser-hint", help="Print only the UI address, not what to look at.")
    ] = False,
    startup_timeout: Annotated[
        float, typer.Option("--startup-timeout", help="Seconds to wait for the sandbox and the Dagster UI.")
    ] = 180.0,
) -> None:
    """Start the sandbox, connect a demo integration and run Dagster until Ctrl-C."""
    if not 0 < port < 65536:
        raise UserError(f"--port must be between 1 and 65535, not {port}")
    if records < 0:
        raise UserError("--records cannot be negative")
    if not port_free(port):
        raise DemoError(f"port {port} on 127.0.0.1 is in use (another Dagster?): choose another with --port")

    settings = load_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    dagster_home = prepare_dagster_home(settings)
    logs = settings.home / "logs"
    # Children find the same state whatever their working directory.
    os.environ["SF_PIPELINE_HOME"] = str(settings.home)
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    if not os.environ.get(KEY_ENV):
        os.environ[KEY_ENV] = read_or_create_key_file(settings.key_file).decode("ascii")
    cipher = Cipher(os.environ[KEY_ENV].strip(), source=f"${KEY_ENV}")

    stop = threading.Event()
    children: list[Child] = []
    activity: ActivityGenerator | None = None
    control: ControlClient | None = None
    failed = False
    with stop_on_signals(stop):
        try:
            say(f"Starting the sandbox org ({records} Leads and Contacts, seed {seed})...")
            sandbox, info = start_sandbox(settings.home, records=records, seed=seed, env=dict(os.environ),
                                          stop=stop, timeout=startup_timeout)
            children.append(sandbox)
            if info.ca_bundle:
                os.environ["REQUESTS_CA_BUNDLE"] = info.ca_bundle
                os.environ["SSL_CERT_FILE"] = info.ca_bundle
                update_config(settings.home, ca_bundle=str(Path(info.ca_bundle).resolve()))
            say(f"Sandbox org at {info.login_url} (log: {sandbox.log})")

            _connect(settings, cipher, info)
            if stop.is_set():
                raise Interrupted()

            say(f"Starting Dagster (DAGSTER_HOME={dagster_home})...")
            dagster = start_dagster(port=port, env=dict(os.environ), log=logs / "dagster.log")
            children.append(dagster)
            url = f"http://127.0.0.1:{port}"
            server = wait_for_webserver(dagster, f"{url}/server_info", timeout=startup_timeout, stop=stop)
            version = server.get("dagster_webserver_version", "?")
            say(f"Dagster UI: {url}  (webserver {version}, log: {dagster.log})")
            if not no_browser_hint:
                _hint(url, info, settings.home, dagster_home)

            if activity_interval > 0:
                control = info.control()
                activity = ActivityGenerator(control, interval=activity_interval, seed=seed, report=say).start()
                say(f"Activity: changing a few sandbox records every {activity_interval:g}s.")
            say("Press Ctrl+C to stop.")
            failed = _watch(children, stop)
        except Interrupted:
            pass
        except DemoError as exc:
            typer.echo(f"Error: {exc}", err=True)
            failed = True
        finally:
            if activity is not None:
                activity.stop()
            if control is not None:
                control.close()
            for child in reversed(children):
                say(f"Stopping {child.name} (process group {child.pid})...")
                child.stop()
            say("Demo stopped.")
    if failed:
        raise typer.Exit(1)


def _connect(settings: Settings, cipher: Cipher, info: SandboxInfo) -> None:
    database = Database.from_settings(settings)
    try:
        result = connect_demo(database, cipher, info)
    finally:
        database.dispose()
    verb = "Reconnected" if result.reconnected else "Connected"
    say(f"{verb} integration '{DEMO_NAME}' to org {result.connected.org_id}; "
        f"applied the demo integration file: {result.applied.status_after.capitalize()}, "
        f"objects {', '.join(result.applied.objects)}, {result.applied.mappings} mappings.")
    if result.applied.activated:
        say("Its initial full sync is requested: the dispatcher sensor launches it within 30 seconds.")
    elif result.resync_requested:
        say("The sandbox org was generated afresh, so a full sync is requested at the next sensor tick.")


def _watch(children: list[Child], stop: threading.Event) -> bool:
    """Wait for a stop signal; True if a child exited on its own first (a failure)."""
    while not stop.wait(1.0):
        for child in children:
            if not child.running():
                typer.echo(
                    f"Error: {child.name} exited with status {child.process.returncode} "
                    f"(log: {child.log}):\n{log_tail(child.log)}",
                    err=True,
                )
                return True
    return False


def _hint(url: str, info: SandboxInfo, home: Path, dagster_home: Path) -> None:
    say()
    say("What to look at:")
    say(f"  - the asset graph: {url}/asset-groups (salesforce_records -> user_changes -> spotzee_users)")
    say(f"  - the '{DEMO_NAME}' partition of 'integrations' on each asset, and the four health checks")
    say(f"    on spotzee_users: {url}/assets/spotzee_users")
    say(f"  - runs: {url}/runs; the sync_dispatcher and health_dispatcher sensors: {url}/automation")
    say("  - in another terminal, from this folder (or with --home; no exports needed):")
    say(f"      .venv/bin/sf-pipeline --home {home} status; .venv/bin/sf-pipeline logs {DEMO_NAME}")
    say("      .venv/bin/sf-pipeline env   # the home, database, Dagster home and CA bundle in effect")
    say()
