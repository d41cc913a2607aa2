"""``sf-pipeline integration``: apply an integration file, change the frequency, pause, resume,
show, list, disconnect and delete. Errors are raised as ``UserError`` for the main entry point to
print. Modules beyond the database are imported inside the commands that need them, so ``list``
and ``show`` start fast."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from sf_pipeline.cli.output import badge, console, errors, print_json, when
from sf_pipeline.errors import ConfigError, UserError

if TYPE_CHECKING:
    from sf_pipeline.integration_spec import ApplyResult, Describe
    from sf_pipeline.storage.database import Database
    from sf_pipeline.storage.models import Integration

INCOMPLETE, INACTIVE, ERROR = "incomplete", "inactive", "error"

app = typer.Typer(help="Create, configure, pause and resume integrations.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="The integration's name.", show_default=False)]


@contextmanager
def _database() -> Iterator[Database]:
    from sf_pipeline.storage.database import Database

    database = Database.from_settings()
    try:
        yield database
    finally:
        database.dispose()


def _org_describe(database: Database, name: str) -> Describe:
    """``describe`` for a connected integration, with Salesforce failures turned into clear errors."""
    from sf_pipeline.salesforce.describe import ObjectDescribe
    from sf_pipeline.secrets import load_cipher

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
    from sf_pipeline.integration_spec import apply_spec, load_spec_file
    from sf_pipeline.settings import load_settings
    from sf_pipeline.storage.integrations import find_integration
    from sf_pipeline.storage.models import utcnow

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
    elif result.status_after == INCOMPLETE:
        console.print(
            f"Connect it to finish setup: [bold]sf-pipeline integration connect {result.name} ...[/]",
            highlight=False,
        )


def _parse_minutes(text: str) -> int:
    from sf_pipeline.storage.integrations import check_frequency

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
    from sf_pipeline.storage.integrations import get_integration

    value = _parse_minutes(minutes)
    with _database() as database, database.session() as session:
        integration = get_integration(session, name)
        integration.frequency_minutes = value
    console.print(f"[bold]{name}[/] now syncs every {value} minutes, from its next scheduled sync.", highlight=False)


@app.command("pause")
def pause_command(name: NameArg) -> None:
    """Stop scheduled syncs (status Inactive). Rules, mappings and credentials are kept."""
    from sf_pipeline.storage.integrations import get_integration

    with _database() as database, database.session() as session:
        integration = get_integration(session, name)
        from sf_pipeline import lifecycle

        if not lifecycle.pause(integration):
            console.print(f"[bold]{name}[/] is already paused.", highlight=False)
            return
    console.print(f"Paused [bold]{name}[/]. {badge(INACTIVE)}", highlight=False)


@app.command("resume")
def resume_command(name: NameArg) -> None:
    """Re-activate a paused integration; its next scheduled sync runs (no immediate sync)."""
    from sf_pipeline.storage.integrations import get_integration, setup_complete

    with _database() as database, database.session() as session:
        integration = get_integration(session, name)
        from sf_pipeline import lifecycle

        complete = setup_complete(integration)
        if not lifecycle.resume(integration, now=datetime.now(UTC), setup_complete=complete):
            console.print(f"[bold]{name}[/] is not paused. {badge(integration.status)}", highlight=False)
            return
        status = integration.status
    note = "" if complete else " Finish its setup to start syncing."
    console.print(f"Resumed [bold]{name}[/]. {badge(status)}{note}", highlight=False)


JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON document with stable keys (never secrets).")]


def integration_as_dict(integration: Integration) -> dict[str, Any]:
    """The configuration, mappings and rules of an integration: everything but its secrets."""
    credential = integration.credential
    return {
        "name": integration.name,
        "project_id": integration.project_id,
        "status": integration.status,
        "login_url": integration.login_url,
        "frequency_minutes": integration.frequency_minutes,
        "lookback_minutes": integration.lookback_minutes,
        "api": integration.api,
        "connected": credential is not None,
        "org_id": integration.org_id,
        "instance_url": credential.instance_url if credential is not None else None,
        "client_id": credential.client_id if credential is not None else None,
        "last_synced_at": integration.last_synced_at.isoformat() if integration.last_synced_at else None,
        "last_error": integration.last_error,
        "objects": {
            config.object_name: {"match": config.match, "rules": [dict(rule) for rule in config.rules or []]}
            for config in integration.objects
        },
        "mappings": [
            {"field": m.field, "property": m.property, "type": m.type, "object": m.object_name}
            for m in integration.mappings
        ],
    }


@app.command("show")
def show_command(name: NameArg, as_json: JsonOpt = False) -> None:
    """An integration's status, objects with their rules, and field mappings (never secrets)."""
    from sf_pipeline.storage.integrations import get_integration

    with _database() as database, database.session() as session:
        integration = get_integration(session, name)
        if as_json:
            print_json(integration_as_dict(integration))
            return
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
        ("Salesforce API", {"rest": "REST", "bulk": "Bulk API 2.0"}.get(
            integration.api, "auto (Bulk API 2.0 for large results, REST otherwise)")),
        ("Last synced", when(integration.last_synced_at)),
    ]
    if integration.last_error and integration.status == ERROR:
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
    from sf_pipeline.integration_spec import rule_text, stored_rules

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
    from sf_pipeline.mapping import TOP_LEVEL
    from sf_pipeline.storage.integrations import mapping_specs

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
def list_command(as_json: JsonOpt = False) -> None:
    """Every integration with its status, objects and mappings (never secrets)."""
    from sf_pipeline.storage.integrations import list_integrations

    with _database() as database, database.session() as session:
        integrations = list_integrations(session)
        if as_json:
            print_json([integration_as_dict(integration) for integration in integrations])
            return
        if not integrations:
            console.print("No integrations yet: create one with `sf-pipeline integration apply FILE.yaml`.")
            return
        table = Table()
        for column in ("Name", "Project", "Status", "Objects", "Every"):
            table.add_column(column, overflow="fold")
        table.add_column("Last synced", no_wrap=True)
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


SkipRevokeOpt = Annotated[
    bool,
    typer.Option("--skip-revoke", help="Do not ask Salesforce to revoke the refresh token (it cannot be reached); "
                 "revoke the app's access in Salesforce Setup instead."),
]


@app.command("disconnect")
def disconnect_command(name: NameArg, skip_revoke: SkipRevokeOpt = False) -> None:
    """Revoke the refresh token at Salesforce and forget the credentials. Rules, mappings and
    watermarks stay; the integration becomes Incomplete until it is connected again."""
    from sf_pipeline.offboarding import disconnect
    from sf_pipeline.secrets import load_cipher

    with _database() as database:
        revocation = disconnect(database, load_cipher(), name, skip_revoke=skip_revoke)
    if not revocation.had_credentials:
        console.print(f"[bold]{name}[/] had no credentials. {badge(INCOMPLETE)}", highlight=False)
        return
    console.print(f"Disconnected [bold]{name}[/]: {_revocation_text(revocation)}; the credentials are deleted, "
                  f"rules and mappings kept. {badge(INCOMPLETE)}", highlight=False)
    console.print(f"Connect it again with `sf-pipeline integration connect {name} ...`.", highlight=False)


@app.command("delete")
def delete_command(
    name: NameArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    keep_users: Annotated[
        bool, typer.Option("--keep-users/--delete-users", help="Keep the users it synced (default), or delete them.")
    ] = True,
    skip_revoke: SkipRevokeOpt = False,
) -> None:
    """Revoke the refresh token at Salesforce, then remove the integration: configuration,
    credentials, watermarks, history and its Dagster partition. Synced users are kept unless
    --delete-users."""
    from sf_pipeline.offboarding import delete_integration, user_count
    from sf_pipeline.secrets import load_cipher

    with _database() as database:
        users = user_count(database, name)
        if not yes:
            what = "keeping" if keep_users else "DELETING"
            if not errors.is_terminal:
                raise UserError(f"deleting integration {name!r} needs confirmation: add --yes")
            typer.confirm(f"Delete integration {name!r} ({what} its {users} synced users)?", abort=True,
                          err=True)
        deleted = delete_integration(database, load_cipher(), name, keep_users=keep_users, skip_revoke=skip_revoke)
    _forget_partition(name)
    users_text = (f"its {deleted.users_kept} synced users are kept (--delete-users removes them)" if keep_users
                  else f"its {deleted.users_deleted} synced users are deleted")
    console.print(f"Deleted integration [bold]{name}[/]: {_revocation_text(deleted.revocation)}; {users_text}.",
                  highlight=False)


def _revocation_text(revocation: Any) -> str:
    if not revocation.had_credentials:
        return "it had no credentials"
    if revocation.skipped:
        return "the refresh token was NOT revoked (--skip-revoke)"
    return "the refresh token is revoked" if revocation.revoked else "the refresh token was already invalid"


def _forget_partition(name: str) -> None:
    """Drop the integration's Dagster partition (its run history stays in Dagster's storage)."""
    from sf_pipeline.defs.partitions import PARTITIONS_NAME
    from sf_pipeline.runs import dagster_instance
    from sf_pipeline.settings import load_settings

    instance = dagster_instance(load_settings())
    try:
        if instance.has_dynamic_partition(PARTITIONS_NAME, name):
            instance.delete_dynamic_partition(PARTITIONS_NAME, name)
    finally:
        instance.dispose()
