"""``sf-pipeline sync NAME``: Sync now, from the terminal, as a Dagster run of the sync job."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sf_pipeline import runs
from sf_pipeline.cli.output import console, errors, print_json
from sf_pipeline.defs.assets import FULL_SYNC_TAG
from sf_pipeline.defs.jobs import SYNC_JOB
from sf_pipeline.errors import UserError
from sf_pipeline.settings import load_settings
from sf_pipeline.storage.database import Database
from sf_pipeline.storage.integrations import get_integration
from sf_pipeline.storage.models import SyncRun
from sf_pipeline.sync.lifecycle import SetupIncompleteError

SUMMARY_KEYS = ("fetched", "created", "updated", "unchanged", "deleted", "invalid_values", "api_calls", "duration_s")


def sync_command(
    name: Annotated[str, typer.Argument(help="The integration to sync.")],
    full: Annotated[bool, typer.Option("--full", help="Re-read every matching record, not just changes.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the summary, as one JSON object.")] = False,
    wait_timeout: Annotated[float, typer.Option(help="Seconds to wait for a run already in progress.")] = 3600,
) -> None:
    """Sync one integration now and print what changed."""
    settings = load_settings()
    database = Database.from_settings(settings)
    with database.session() as session:
        integration = get_integration(session, name)
        if integration.status == "incomplete":
            raise SetupIncompleteError(
                f"integration '{name}' is Incomplete: connect it and apply its objects and field mappings first"
            )
    instance = runs.dagster_instance(settings)
    runs.ensure_partition(instance, name)
    tags = {"sf_pipeline/trigger": "cli", FULL_SYNC_TAG: "true" if full else "false"}
    started = time.perf_counter()
    # The run holds the integration's lease; while another run holds it, this one waits.
    on_wait = None if as_json else lambda run_id: errors.print(f"Waiting for run {run_id} of '{name}'…")
    try:
        if as_json:
            outcome = runs.execute(instance, SYNC_JOB, name=name, tags=tags, partitioned=True, database=database,
                                   wait_timeout_s=wait_timeout, on_wait=on_wait)
        else:
            outcome = _execute_with_progress(instance, name, tags, database, wait_timeout, on_wait)
    except TimeoutError as exc:
        raise UserError(str(exc)) from None
    with database.session() as session:
        run = session.get(SyncRun, outcome.run_id)
        counts: dict[str, Any] = dict(run.counts) if run is not None and run.counts else {}
        fetched = run.fetched if run is not None else 0
    summary: dict[str, Any] = {
        "status": "succeeded" if outcome.success else "failed",
        "run_id": outcome.run_id,
        **{key: counts.get(key, 0) for key in SUMMARY_KEYS},
    }
    if not counts:
        summary["fetched"] = fetched
        summary["duration_s"] = round(time.perf_counter() - started, 3)
    if outcome.error:
        summary["error"] = outcome.error
    if as_json:
        print_json(summary)
    else:
        _print_summary(name, summary)
    if not outcome.success:
        raise typer.Exit(1)


def _print_summary(name: str, summary: dict[str, Any]) -> None:
    ok = summary["status"] == "succeeded"
    colour = "green" if ok else "red"
    console.print(f"[bold {colour}]Sync of '{name}' {summary['status']}[/] (run {summary['run_id']})")
    if not ok:
        console.print(f"[red]{summary.get('error', '')}[/]")
    table = Table(show_header=False, box=None)
    for key in SUMMARY_KEYS:
        table.add_row(key.replace("_", " "), str(summary[key]))
    console.print(table)


def _execute_with_progress(instance: Any, name: str, tags: dict[str, str], database: Database, wait_timeout: float,
                           on_wait: Any) -> runs.JobOutcome:
    with Progress(TextColumn(f"Syncing [bold]{name}[/]"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("records"), TimeElapsedColumn(), console=errors, transient=True) as bar:
        task = bar.add_task("sync", total=None)

        def show(fetched: int, total: int | None) -> None:
            bar.update(task, completed=fetched, total=total or None)

        return runs.execute(instance, SYNC_JOB, name=name, tags=tags, partitioned=True, database=database,
                            on_progress=show, wait_timeout_s=wait_timeout, on_wait=on_wait)
