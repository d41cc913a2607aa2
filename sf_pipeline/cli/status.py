"""``sf-pipeline status``: one row per integration with its badge, last and next sync, health."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from sf_pipeline.cli.output import badge, console, print_json
from sf_pipeline.health import latest_results
from sf_pipeline.scheduling import next_sync_at
from sf_pipeline.storage.database import Database
from sf_pipeline.storage.integrations import list_integrations
from sf_pipeline.storage.models import Integration


def health_summary(session: Session, integration: Integration) -> dict[str, Any] | None:
    latest = latest_results(session, integration)
    if not latest:
        return None
    failing = sorted(name for name, row in latest.items() if not row.passed)
    return {
        "passed": not failing,
        "failing": failing,
        "at": max(row.at for row in latest.values()).isoformat(),
        "checks": {name: row.passed for name, row in sorted(latest.items())},
    }


def status_rows(database: Database) -> list[dict[str, Any]]:
    with database.session() as session:
        rows = []
        for integration in list_integrations(session):
            due = next_sync_at(integration)
            rows.append({
                "name": integration.name,
                "status": integration.status,
                "frequency_minutes": integration.frequency_minutes,
                "last_synced_at": integration.last_synced_at.isoformat() if integration.last_synced_at else None,
                "next_sync_at": due.isoformat() if due else None,
                "health": health_summary(session, integration),
                "last_error": integration.last_error,
                # Org count under the rules minus in-scope, not-deleted users, per object.
                "drift": dict(integration.drift) if integration.drift is not None else None,
                "drift_at": integration.drift_at.isoformat() if integration.drift_at else None,
                "last_reconciled_at": (integration.last_reconciled_at.isoformat()
                                       if integration.last_reconciled_at else None),
            })
        return rows


def status_command(
    as_json: Annotated[bool, typer.Option("--json", help="A JSON list with stable keys.")] = False,
) -> None:
    """Every integration's status badge, last successful and next scheduled sync, and health."""
    rows = status_rows(Database.from_settings())
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("No integrations yet. Create one with `sf-pipeline integration apply FILE.yaml`.")
        return
    table = Table(title="Salesforce integrations")
    for column in ("Integration", "Status", "Last synced", "Next sync", "Frequency", "Health"):
        table.add_column(column)
    for row in rows:
        health = row["health"]
        health_text = "—" if health is None else (
            "[green]4/4 passed[/]" if health["passed"] else f"[red]failing: {', '.join(health['failing'])}[/]")
        table.add_row(
            row["name"], badge(row["status"]),
            row["last_synced_at"] or "never", row["next_sync_at"] or "—",
            f"every {row['frequency_minutes']} min", health_text,
        )
    console.print(table)
    for row in rows:
        if row["status"] == "error" and row["last_error"]:
            console.print(f"[red]{row['name']}[/]: {row['last_error']}")


