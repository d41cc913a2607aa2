"""``sf-pipeline reconcile NAME``: compare the org with the users by Id now, as a Dagster run of
the reconcile job (so it appears in the UI). Exit 0 when it completed, 1 when it failed, 2 for a
usage mistake (unknown or incomplete integration)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from sf_pipeline.cli.output import console, errors, print_json
from sf_pipeline.errors import UserError
from sf_pipeline.settings import load_settings

if TYPE_CHECKING:
    import dagster as dg

COUNT_KEYS = ("in_scope_ids", "refetched", "created", "purged", "deleted", "out_of_scope", "back_in_scope",
              "invalid_records")


def _summary(instance: dg.DagsterInstance, run_id: str) -> dict[str, Any]:
    import dagster as dg

    from sf_pipeline.defs.reconcile import SUMMARY_KEY

    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_OBSERVATION):
        observation = entry.asset_observation
        if observation is not None and SUMMARY_KEY in observation.metadata:
            value = observation.metadata[SUMMARY_KEY].value
            if isinstance(value, dict):
                return dict(value)
    return {}


def reconcile_command(
    name: Annotated[str, typer.Argument(help="The integration to reconcile.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print only the summary, as one JSON object.")] = False,
    wait_timeout: Annotated[float, typer.Option(help="Seconds to wait for a run already in progress.")] = 3600,
) -> None:
    """Find purged records, records that left the rules and records never synced, by Id."""
    # Dagster, the sync modules and the database layer load only when the command runs, so that
    # registering it keeps every other command's startup fast.
    from sf_pipeline import runs
    from sf_pipeline.defs.reconcile import RECONCILE_JOB
    from sf_pipeline.storage.database import Database
    from sf_pipeline.storage.integrations import get_integration
    from sf_pipeline.sync.lifecycle import SetupIncompleteError

    settings = load_settings()
    database = Database.from_settings(settings)
    with database.session() as session:
        integration = get_integration(session, name)
        if integration.status == "incomplete":
            raise SetupIncompleteError(
                f"integration '{name}' is Incomplete: connect it and apply its objects and field mappings first")
    instance = runs.dagster_instance(settings)
    runs.ensure_partition(instance, name)
    try:
        runs.wait_for_partition(
            instance, name, timeout_s=wait_timeout,
            on_wait=None if as_json else lambda run_id: errors.print(f"Waiting for run {run_id} of '{name}'…"))
    except TimeoutError as exc:
        raise UserError(str(exc)) from None
    outcome = runs.execute(instance, RECONCILE_JOB, name=name, tags={"sf_pipeline/trigger": "cli"},
                           partitioned=True)
    summary: dict[str, Any] = {"status": "completed" if outcome.success else "failed", "run_id": outcome.run_id}
    if outcome.success:
        found = _summary(instance, outcome.run_id)
        found.pop("status", None)
        summary.update(found)
    else:
        summary["error"] = outcome.error
    if as_json:
        print_json(summary)
    else:
        _print(name, summary)
    if not outcome.success:
        raise typer.Exit(1)


def _print(name: str, summary: dict[str, Any]) -> None:
    from rich.table import Table

    if summary["status"] != "completed":
        errors.print(f"[bold red]Reconciliation of '{name}' failed[/] (run {summary['run_id']}): {summary['error']}",
                     highlight=False)
        return
    console.print(f"[bold green]Reconciliation of '{name}' completed[/] (run {summary['run_id']}, "
                  f"{summary.get('api_calls', 0)} API calls, {summary.get('duration_s', 0)} s)")
    table = Table("object", *(k.replace("_", " ") for k in COUNT_KEYS), "drift")
    for object_name, counts in summary.get("objects", {}).items():
        table.add_row(object_name, *(str(counts.get(k, 0)) for k in COUNT_KEYS),
                      str(summary.get("drift", {}).get(object_name, "")))
    console.print(table)
    for object_name, reason in summary.get("drift_reasons", {}).items():
        console.print(f"[yellow]{object_name}[/]: drift {summary['drift'][object_name]}: {reason}")
