"""``sf-pipeline sandbox serve``: run the local Salesforce org until interrupted."""

from __future__ import annotations

import json
import secrets
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from sf_pipeline.sandbox.generator import populate
from sf_pipeline.sandbox.latency import PROFILES
from sf_pipeline.sandbox.server import SandboxServer
from sf_pipeline.sandbox.state import Org

app = typer.Typer(help="A local Salesforce org for tests, the demo and benchmarks.", no_args_is_help=True)


@app.callback()
def sandbox() -> None:
    """A local Salesforce org for tests, the demo and benchmarks."""


def _credentials(state: Path | None) -> dict[str, str]:
    """Connected-app and user credentials; kept in ``state/credentials.json`` so restarts reuse them."""
    path = state / "credentials.json" if state else None
    if path is not None and path.exists():
        stored: dict[str, str] = json.loads(path.read_text())
        return stored
    org = Org()
    creds = {
        "client_id": org.client_id,
        "client_secret": org.client_secret,
        "username": org.username,
        "password": secrets.token_urlsafe(12),
    }
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(json.dumps(creds, indent=2))
    return creds


@app.command()
def serve(
    port: int = typer.Option(0, help="Port on 127.0.0.1 (0 picks a free one)."),
    records: int = typer.Option(0, help="Generate this many Leads and Contacts (and records/5 CampaignMembers)."),
    seed: int = typer.Option(0, help="Seed for generated records."),
    state: Path | None = typer.Option(None, help="Directory for the CA bundle, certificates and credentials."),
    insecure_http: bool = typer.Option(False, "--insecure-http", help="Serve plain HTTP instead of HTTPS."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON line once ready, nothing else."),
    latency_profile: str = typer.Option(
        "none",
        "--latency-profile",
        help="Server-side time per answer: 'none' (as fast as possible) or 'salesforce' (a real org's order).",
    ),
) -> None:
    """Serve a Salesforce org on 127.0.0.1 until SIGINT or SIGTERM."""
    err = Console(stderr=True)
    if latency_profile not in PROFILES:
        # A usage error: exit 2 with the message, from this app or through the main CLI.
        raise typer.BadParameter(
            f"unknown profile {latency_profile!r}; expected one of {', '.join(PROFILES)}",
            param_hint="--latency-profile",
        )
    creds = _credentials(state)
    org = Org(
        client_id=creds["client_id"],
        client_secret=creds["client_secret"],
        username=creds["username"],
        password=creds["password"],
        seed=seed,
    )
    org.set_latency_profile(latency_profile)
    if records:
        if not json_output:
            err.print(f"Generating {records} leads and contacts (seed {seed})...")
        try:
            populate(org, records=records, seed=seed)
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
    server = SandboxServer(org, port=port, https=not insecure_http, state_dir=state).start()
    info: dict[str, Any] = {
        "login_url": server.url,
        "instance_url": server.url,
        "ca_bundle": str(server.ca_bundle) if server.ca_bundle else None,
        "client_id": org.client_id,
        "client_secret": org.client_secret,
        "username": org.username,
        "password": org.password,
        "latency_profile": org.latency.name,
    }
    if json_output:
        sys.stdout.write(json.dumps(info) + "\n")
        sys.stdout.flush()
    else:
        _print_block(info, records)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    while not stop.wait(0.5):
        pass
    server.stop()


def _print_block(info: dict[str, Any], records: int) -> None:
    out = Console()
    table = Table(title="Salesforce sandbox", show_header=False, title_justify="left")
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    labels = {
        "login_url": "Login URL",
        "instance_url": "Instance URL",
        "ca_bundle": "CA bundle",
        "client_id": "Client id",
        "client_secret": "Client secret",
        "username": "Username",
        "password": "Password",
    }
    for key, label in labels.items():
        table.add_row(label, str(info[key]) if info[key] is not None else "(plain HTTP)")
    table.add_row("Latency profile", str(info["latency_profile"]))
    table.add_row("Records", f"{records} Leads, {records} Contacts, {records // 5} CampaignMembers")
    out.print(table)
    if info["ca_bundle"]:
        out.print(f"Trust it with: export REQUESTS_CA_BUNDLE={info['ca_bundle']}")
    out.print(f"Control API: {info['instance_url']}/__sandbox__/state with header X-Sandbox-Secret: <client secret>")
    out.print("Press Ctrl+C to stop.")


if __name__ == "__main__":
    app()
