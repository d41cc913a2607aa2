"""``sf-pipeline health NAME``: run the four checks now, as a Dagster run of the health job.
Exit 0 when all four pass, 1 when any fails or the run itself fails."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from sf_pipeline.cli.output import console, errors, print_json, when


def health_command(
    name: Annotated[str, typer.Argument(help="The integration.")],
    as_json: Annotated[bool, typer.Option("--json", help="A JSON list: name, passed, metadata, at.")] = False,
) -> None:
    """Run the credentials, field mappings, API limits and sync staleness checks now."""
    from sqlalchemy import select

    from sf_pipeline import runs
    from sf_pipeline.cli.sync import run_config
    from sf_pipeline.defs.jobs import HEALTH_JOB
    from sf_pipeline.health import CheckName
    from sf_pipeline.settings import load_settings
    from sf_pipeline.storage.database import Database
    from sf_pipeline.storage.integrations import get_integration
    from sf_pipeline.storage.models import HealthResult

    settings = load_settings()
    database = Database.from_settings(settings)
    with database.session() as session:
        get_integration(session, name)
    instance = runs.dagster_instance(settings)
    runs.ensure_partition(instance, name)
    outcome = runs.execute(instance, HEALTH_JOB, name=name, tags={"sf_pipeline/trigger": "cli"}, partitioned=False,
                           run_config=run_config())
    with database.session() as session:
        rows = list(session.scalars(select(HealthResult).where(HealthResult.run_id == outcome.run_id)))
    database.dispose()
    order = {c.value: i for i, c in enumerate(CheckName)}
    rows.sort(key=lambda r: order.get(r.check_name, 99))
    results: list[dict[str, Any]] = [
        {"name": r.check_name, "passed": r.passed, "metadata": dict(r.details), "at": r.at.isoformat()} for r in rows
    ]
    if as_json:
        print_json(results)
    else:
        from rich.table import Table

        table = Table(title=f"Health of {name}" + (f" at {when(rows[0].at)}" if rows else ""))
        for column in ("Check", "Result", "Details"):
            table.add_column(column, overflow="fold")
        for r in results:
            details = dict(r["metadata"])
            description = str(details.pop("description", ""))
            details.pop("local", None)
            extra = ", ".join(f"{k}={v}" for k, v in details.items() if k not in ("error", "advice"))
            advice = details.get("advice")
            table.add_row(r["name"], "[green]passed[/]" if r["passed"] else "[red]failed[/]",
                          " ".join(part for part in (description, extra, str(advice or "")) if part))
        console.print(table)
    if not outcome.success or not results:
        from rich.markup import escape

        errors.print(f"[bold red]Error:[/] the health run failed: {escape(str(outcome.error))}", highlight=False,
                     soft_wrap=True)
        raise typer.Exit(1)
    if not all(r["passed"] for r in results):
        raise typer.Exit(1)
