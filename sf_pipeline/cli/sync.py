"""``sf-pipeline sync NAME``: Sync now, from the terminal, as a Dagster run of the sync job.

Dagster is imported only when a sync runs. Its own console log (step events, stack traces) is
silenced unless ``--verbose``: the outcome is told once, by the summary, and the progress bar is not
broken up by log lines.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sf_pipeline.cli.output import console, errors, print_json
from sf_pipeline.errors import ConfigError, UserError

if TYPE_CHECKING:
    from sf_pipeline.runs import JobOutcome
    from sf_pipeline.storage.database import Database

SUMMARY_KEYS = ("fetched", "created", "updated", "unchanged", "deleted", "invalid_values", "warnings", "api_calls",
                "duration_s")
# Dagster's console logger prints every step event (a failure with its stack trace) on stderr.
QUIET_RUN_CONFIG: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def positive_seconds(value: float, option: str) -> float:
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"must be a positive number of seconds, got {value!r}", key=option)
    return value


def run_config() -> dict[str, Any] | None:
    from sf_pipeline.cli.main import verbose

    return None if verbose() else QUIET_RUN_CONFIG


def sync_command(
    name: Annotated[str, typer.Argument(help="The integration to sync.")],
    full: Annotated[bool, typer.Option("--full", help="Re-read every matching record, not just changes.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the summary, as one JSON object.")] = False,
    wait_timeout: Annotated[float, typer.Option(help="Seconds to wait for a run already in progress.")] = 3600,
) -> None:
    """Sync one integration now and print what changed. Exit 1 if the sync fails."""
    wait_timeout = positive_seconds(wait_timeout, "--wait-timeout")
    from sf_pipeline.storage.database import Database
    from sf_pipeline.storage.integrations import get_integration
    from sf_pipeline.sync.lifecycle import SetupIncompleteError

    database = Database.from_settings()
    with database.session() as session:
        integration = get_integration(session, name)
        if integration.status == "incomplete":
            raise SetupIncompleteError(
                f"integration '{name}' is Incomplete: connect it and apply its objects and field mappings first"
            )
    outcome = _run(database, name, full=full, as_json=as_json, wait_timeout=wait_timeout)
    summary = sync_summary(database, outcome)
    database.dispose()
    if as_json:
        print_json(summary)
    else:
        _print_summary(name, summary)
    if not outcome.success:
        raise typer.Exit(1)


def _run(database: Database, name: str, *, full: bool, as_json: bool, wait_timeout: float) -> JobOutcome:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from sf_pipeline import runs
    from sf_pipeline.defs.assets import FULL_SYNC_TAG
    from sf_pipeline.defs.jobs import SYNC_JOB
    from sf_pipeline.settings import load_settings

    instance = runs.dagster_instance(load_settings())
    runs.ensure_partition(instance, name)
    tags = {"sf_pipeline/trigger": "cli", FULL_SYNC_TAG: "true" if full else "false"}
    # The run holds the integration's lease; while another run holds it, this one waits.
    on_wait = None if as_json else lambda run_id: errors.print(f"Waiting for run {run_id} of '{name}'…")
    try:
        if as_json or not errors.is_terminal:
            return runs.execute(instance, SYNC_JOB, name=name, tags=tags, partitioned=True, database=database,
                                run_config=run_config(), wait_timeout_s=wait_timeout, on_wait=on_wait)
        # Until Salesforce reports the total (the first page's totalSize, or the Bulk job's record
        # count) the bar stays empty with a note, rather than pulsing at "0/?".
        with Progress(TextColumn(f"Syncing [bold]{name}[/]"), BarColumn(), TextColumn("{task.fields[note]}"),
                      TimeElapsedColumn(), console=errors, transient=True) as bar:
            task = bar.add_task("sync", total=1, completed=0, note="waiting for Salesforce's first answer")

            def show(fetched: int, total: int | None) -> None:
                if total:
                    bar.update(task, completed=min(fetched, total), total=total,
                               note=f"{fetched:,}/{total:,} records fetched")

            return runs.execute(instance, SYNC_JOB, name=name, tags=tags, partitioned=True, database=database,
                                on_progress=show, run_config=run_config(), wait_timeout_s=wait_timeout,
                                on_wait=on_wait)
    except TimeoutError as exc:
        raise UserError(str(exc)) from None


def sync_summary(database: Database, outcome: JobOutcome) -> dict[str, Any]:
    """The run's stored counts: the same numbers, and the same duration, as its log events."""
    from sf_pipeline.storage.models import SyncRun

    with database.session() as session:
        run = session.get(SyncRun, outcome.run_id)
        counts: dict[str, Any] = dict(run.counts) if run is not None and run.counts else {}
        fetched = run.fetched if run is not None else 0
        started, finished = (run.started_at, run.finished_at) if run is not None else (None, None)
    summary: dict[str, Any] = {
        "status": "succeeded" if outcome.success else "failed",
        "run_id": outcome.run_id,
        **{key: counts.get(key, 0) for key in SUMMARY_KEYS},
    }
    summary["apis"] = counts.get("apis", {})  # which API fetched each object: "rest" or "bulk"
    for key in ("drift", "drift_reasons", "reconcile"):
        if key in counts:
            summary[key] = counts[key]
    if not counts:
        summary["fetched"] = fetched
        summary["duration_s"] = (round((finished - started).total_seconds(), 3)
                                 if started is not None and finished is not None else None)
    if outcome.error:
        summary["error"] = outcome.error
    return summary


def _print_summary(name: str, summary: dict[str, Any]) -> None:
    ok = summary["status"] == "succeeded"
    colour = "green" if ok else "red"
    console.print(f"[bold {colour}]Sync of '{name}' {summary['status']}[/] (run {summary['run_id']})",
                  highlight=False)
    if not ok:
        from rich.markup import escape

        errors.print(f"[bold red]Error:[/] {escape(str(summary.get('error', '')))}", highlight=False,
                     soft_wrap=True)
    from rich.table import Table

    table = Table(show_header=False, box=None)
    for key in SUMMARY_KEYS:
        value = summary[key]
        table.add_row(key.replace("_", " "), "—" if value is None else str(value))
    if summary.get("apis"):
        table.add_row("apis", ", ".join(f"{obj}: {api}" for obj, api in summary["apis"].items()))
    if summary.get("drift"):
        table.add_row("drift", ", ".join(f"{k} {v}" for k, v in summary["drift"].items()))
    console.print(table)
    if summary.get("warnings"):
        console.print(f"{summary['warnings']} warnings: `sf-pipeline logs {name} --type sync_completed --json` "
                      "shows the first ones", highlight=False)
