"""``sf-pipeline integration``: apply an integration file, change the frequency, pause, resume,
show and list. Errors are raised as ``UserError`` for the main entry point to print."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from sf_pipeline import lifecycle
from sf_pipeline.cli.output import badge, console, when
from sf_pipeline.errors import ConfigError, UserError
from sf_pipeline.integration_spec import (
    ApplyResult,
    Describe,
    apply_spec,
    load_spec_file,
    rule_text,
    stored_rules,
)
from sf_pipeline.mapping import TOP_LEVEL
from sf_pipeline.salesforce.describe import ObjectDescribe
from sf_pipeline.secrets import load_cipher
from sf_pipeline.settings import load_settings
from sf_pipeline.storage.database import Database
from sf_pipeline.storage.integrations import (
    check_frequency,
    find_integration,
    get_integration,
    list_integrations,
    mapping_specs,
    setup_complete,
)
from sf_pipeline.storage.models import Integration, IntegrationStatus, utcnow

app = typer.Typer(help="Create, configure, pause and resume integrations.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="The integration's name.", show_default=False)]


@contextmanager
def _database() -> Iterator[Database]:
    database = Database.from_settings()
    try:
        yield database
    finally:
        database.dispose()


def _org_describe(database: Database, name: str) -> Describe:
    """``describe`` for a connected integration, with Salesforce failures turned into clear errors."""
    try:
        from sf_pipeline.salesforce.session import describe_provider

        provider = describe_provider(database, load_cipher(), name)
    except UserError:
        raise
    except Exception as exc:
        raise UserError(
            f"cannot check the file against Salesforce: connecting integration {name!r} failed ({exc}). "
            f"Fix the connection (`sf-pipeline integration reconnect {name}`) and apply again."
        ) from exc

    def describe(object_name: str) -> ObjectDescribe:
        try:
            return provider(object_name)
        except UserError:
            raise
        except Exception as exc:
            raise UserError(
                f"cannot read the fields of {object_name} from Salesforce ({exc}); nothing was saved"
            ) from exc

    return describe


@app.command("apply")
def apply_command(
    file: Annotated[Path, typer.Argument(help="The integration file (YAML).", show_default=False)],
) -> None:
    """Create or update an integration from a file. When the integration is connected, its rules and
    mappings are checked against the org's fields first. Nothing is saved unless all of it is valid."""
    spec = load_spec_file(file)
    with _database() as database:
        with database.session() as session:
            existing = find_integration(session, spec.name)
            connected = existing is not None and existing.credential is not None
        describe: Describe | None = _org_describe(database, spec.name) if connected else None
        with database.session() as session:
            result = apply_spec(session, spec, describe=describe, now=utcnow())
    if result.created:
        from sf_pipeline.runs import register_partition

        register_partition(load_settings(), result.name)
    _report_apply(result, checked=describe is not None)


def _report_apply(result: ApplyResult, *, checked: bool) -> None:
    verb = "Created" if result.created else "Updated"
    console.print(
        f"{verb} integration [bold]{result.name}[/]: {', '.join(result.objects)}; "
        f"{result.mappings} field mapping{'s' if result.mappings != 1 else ''}. {badge(result.status_after)}",
        highlight=False,
    )
    if not checked:
        console.print("Fields were not checked against Salesforce: the integration is not connected yet.")
    if result.activated:
        console.print("Setup is complete: the initial full sync starts at the next scheduler tick.")
    elif result.status_after == IntegrationStatus.INCOMPLETE.value:
        console.print(
            f"Connect it to finish setup: [bold]sf-pipeline integration connect {result.name} ...[/]",
            highlight=False,
        )


def _parse_minutes(text: str) -> int:
    try:
        minutes = int(text.strip())
    except ValueError:
        raise ConfigError(f"must be a whole number of minutes, got {text!r}", key="frequency") from None
    try:
        return check_frequency(minutes)
    except ValueError as exc:
        raise ConfigError(str(exc), key="frequency") from None


@app.command("frequency")
def frequency_command(
    name: NameArg,
    minutes: Annotated[str, typer.Argument(help="Whole minutes between syncs (at least 5).", show_default=False)],
) -> None:
    """Set how often the integration syncs. It applies from the next scheduled sync."""
    value = _parse_minutes(minutes)
    with _database() as database, database.session() as session:
        integration = get_integration(session, name)
        integration.frequency_minutes = value
    console.print(f"[bold]{name}[/] now syncs every {value} minutes, from its next scheduled sync.", highlight=False)


@app.command("pause")
def pause_command(name: NameArg) -> None:
    """Stop scheduled syncs (status Inactive). Rules, mappings and credentials are kept."""
    with _database() as database, database.session() as session:
        integration = get_integration(session, name)
        if not lifecycle.pause(integration):
            console.print(f"[bold]{name}[/] is already paused.", highlight=False)
            return
    console.print(f"Paused [bold]{name}[/]. {badge(IntegrationStatus.INACTIVE.value)}", highlight=False)


@app.command("resume")
def resume_command(name: NameArg) -> None:
    """Re-activate a paused integration; its next scheduled sync runs (no immediate sync)."""
    with _database() as database, database.session() as session:
        integration = get_integration(session, name)
        complete = setup_complete(integration)
        if not lifecycle.resume(integration, now=datetime.now(UTC), setup_complete=complete):
            console.print(f"[bold]{name}[/] is not paused. {badge(integration.status)}", highlight=False)
            return
        status = integration.status
    note = "" if complete else " Finish its setup to start syncing."
    console.print(f"Resumed [bold]{name}[/]. {badge(status)}{note}", highlight=False)


@app.command("show")
def show_command(name: NameArg) -> None:
    """An integration's status, objects with their rules, and field mappings (never secrets)."""
    with _database() as database, database.session() as session:
        integration = get_integration(session, name)
        console.print(_overview(integration))
        console.print(_objects_table(integration))
        console.print(_mappings_table(integration))


def _overview(integration: Integration) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    credential = integration.credential
    connection = (
        Text(f"connected to org {credential.org_id or '?'} at {credential.instance_url or '?'}")
        if credential is not None
        else Text("not connected", style="dark_orange")
    )
    rows: list[tuple[str, Text | str]] = [
        ("Integration", Text(integration.name)),
        ("Status", Text.from_markup(badge(integration.status))),
        ("Project", str(integration.project_id)),
        ("Login URL", Text(integration.login_url)),
        ("Salesforce", connection),
        ("Frequency", f"every {integration.frequency_minutes} minutes"),
        ("Last synced", when(integration.last_synced_at)),
    ]
    if integration.last_error and integration.status == IntegrationStatus.ERROR.value:
        rows.append(("Last error", Text(integration.last_error, style="red")))
    missing = [
        step
        for step, done in (
            ("connect", credential is not None),
            ("save objects", integration.objects_saved),
            ("save mappings", integration.mappings_saved),
        )
        if not done
    ]
    if missing:
        rows.append(("Setup to do", ", ".join(missing)))
    for label, value in rows:
        table.add_row(label, value)
    return table


def _objects_table(integration: Integration) -> Table:
    table = Table(title="Objects and sync rules", title_justify="left")
    table.add_column("Object")
    table.add_column("Match")
    table.add_column("Rules", overflow="fold")
    for config in integration.objects:
        rules = stored_rules(config)
        joined = "\n".join(rule_text(rule) for rule in rules) if rules else "(every record)"
        match = {"all": "all (AND)", "any": "any (OR)"}.get(config.match, config.match)
        table.add_row(config.object_name, match, Text(joined))
    if not integration.objects:
        table.add_row("(none selected)", "", "")
    return table


def _mappings_table(integration: Integration) -> Table:
    table = Table(title="Field mappings", title_justify="left")
    table.add_column("Salesforce field", overflow="fold")
    table.add_column("Property", overflow="fold")
    table.add_column("Type")
    table.add_column("Objects")
    for spec in mapping_specs(integration):
        where = "top-level" if spec.property in TOP_LEVEL else "data"
        table.add_row(
            Text(spec.field),
            Text(f"{spec.property} ({where})"),
            spec.type or "from field",
            spec.object_name or "all with the field",
        )
    return table


@app.command("list")
def list_command() -> None:
    """Every integration with its status."""
    with _database() as database, database.session() as session:
        integrations = list_integrations(session)
        if not integrations:
            console.print("No integrations yet: create one with `sf-pipeline integration apply FILE.yaml`.")
            return
        table = Table()
        for column in ("Name", "Project", "Status", "Objects", "Every", "Last synced"):
            table.add_column(column)
        for integration in integrations:
            table.add_row(
                Text(integration.name),
                str(integration.project_id),
                Text.from_markup(badge(integration.status)),
                ", ".join(config.object_name for config in integration.objects) or "—",
                f"{integration.frequency_minutes} min",
                when(integration.last_synced_at),
            )
        console.print(table)
