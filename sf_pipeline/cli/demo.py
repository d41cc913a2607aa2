"""``sf-pipeline demo``: a sandbox org, a demo integration and Dagster, until Ctrl-C."""

from __future__ import annotations

import typer


def demo_command(
    port: int = typer.Option(3000, help="Port for the Dagster UI on 127.0.0.1."),
) -> None:
    """Start the sandbox, connect a demo integration and run Dagster until Ctrl-C."""
    raise typer.Exit(1)
