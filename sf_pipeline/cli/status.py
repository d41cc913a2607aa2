"""``sf-pipeline status``: one row per integration with its badge, last and next sync, health."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.table import Table

from sf_pipeline.cli.output import badge, console, print_json, when_text

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from sf_pipeline.storage.database import Database
    from sf_pipeline.storage.models import Integration


def health_summary(session: Session, integration: Integration) -> dict[str, Any] | None:
    from sf_pipeline.health import latest_results

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


def last_run(session: Session, integration: Integration) -> dict[str, Any] | None:
    """The latest finished sync run: its outcome and wall duration (the one its events report)."""
    from sqlalchemy import select

    from sf_pipeline.storage.models import SyncRun

    run = session.scalars(
        select(SyncRun).where(SyncRun.integration_id == integration.id, SyncRun.finished_at.is_not(None))
        .order_by(SyncRun.finished_at.desc()).limit(1)
    ).first()
    if run is None or run.finished_at is None:
        return None
    counts = dict(run.counts or {})
    duration = counts.get("duration_s")
    if duration is None and run.started_at is not None:
        duration = round((run.finished_at - run.started_at).total_seconds(), 3)
    return {"run_id": run.run_id, "status": run.status, "finished_at": run.finished_at.isoformat(),
            "duration_s": duration}


def status_rows(database: Database) -> list[dict[str, Any]]:
    from sf_pipeline.scheduling import next_sync_at
    from sf_pipeline.storage.integrations import list_integrations

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
                "last_run": last_run(session, integration),
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
    from sf_pipeline.storage.database import Database

    database = Database.from_settings()
    rows = status_rows(database)
    database.dispose()
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("No integrations yet. Create one with `sf-pipeline integration apply FILE.yaml`.")
        return
    table = Table(title="Salesforce integrations", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("Integration", overflow="fold")
    table.add_column("Status", overflow="fold")
    table.add_column("Last synced", no_wrap=True)
    table.add_column("Next sync", no_wrap=True)
    table.add_column("Health", overflow="fold")
    for row in rows:
        health = row["health"]
        health_text = "—" if health is None else (
            "[green]4/4 passed[/]" if health["passed"] else f"[red]failing: {', '.join(health['failing'])}[/]")
        table.add_row(row["name"], badge(row["status"]), when_text(row["last_synced_at"]),
                      when_text(row["next_sync_at"]), health_text)
    console.print(table)
    for row in rows:
        last = row["last_run"]
        took = f", took {last['duration_s']:.1f} s" if last and last["duration_s"] is not None else ""
        outcome = f"; last run {last['status']}{took}" if last else ""
        console.print(f"[bold]{row['name']}[/]: every {row['frequency_minutes']} min{outcome}", highlight=False)
        if row["last_error"] and (row["status"] == "error" or (last and last["status"] == "failed")):
            console.print(f"  [red]{row['last_error']}[/]", highlight=False, soft_wrap=True)
