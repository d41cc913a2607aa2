"""``sf-pipeline health NAME``: run the four checks now, as a Dagster run of the health job."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import select

from sf_pipeline import runs
from sf_pipeline.cli.output import console, errors, print_json
from sf_pipeline.defs.jobs import HEALTH_JOB
from sf_pipeline.health import CheckName
from sf_pipeline.settings import load_settings
from sf_pipeline.storage.database import Database
from sf_pipeline.storage.integrations import get_integration
from sf_pipeline.storage.models import HealthResult


def health_command(
    name: Annotated[str, typer.Argument(help="The integration.")],
    as_json: Annotated[bool, typer.Option("--json", help="A JSON list: name, passed, metadata, at.")] = False,
) -> None:
    """Run the credentials, field mappings, API limits and sync staleness checks now."""
    settings = load_settings()
    database = Database.from_settings(settings)
    with database.session() as session:
        get_integration(session, name)
    instance = runs.dagster_instance(settings)
    runs.ensure_partition(instance, name)
    outcome = runs.execute(instance, HEALTH_JOB, name=name, tags={"sf_pipeline/trigger": "cli"}, partitioned=False)
    with database.session() as session:
        rows = list(session.scalars(select(HealthResult).where(HealthResult.run_id == outcome.run_id)))
    order = {c.value: i for i, c in enumerate(CheckName)}
    rows.sort(key=lambda r: order.get(r.check_name, 99))
    results: list[dict[str, Any]] = [
        {"name": r.check_name, "passed": r.passed, "metadata": dict(r.details), "at": r.at.isoformat()} for r in rows
    ]
    if as_json:
        print_json(results)
    else:
        table = Table(title=f"Health of {name}")
        for column in ("Check", "Result", "Details"):
            table.add_column(column, overflow="fold")
        for r in results:
            details = dict(r["metadata"])
            description = str(details.pop("description", ""))
            extra = ", ".join(f"{k}={v}" for k, v in details.items())
            table.add_row(r["name"], "[green]passed[/]" if r["passed"] else "[red]failed[/]",
                          f"{description} {extra}".strip())
        console.print(table)
    if not outcome.success or not results:
        errors.print(f"[red]The health run failed: {outcome.error}[/]")
        raise typer.Exit(1)
    if not all(r["passed"] for r in results):
        raise typer.Exit(1)
