"""``sf-pipeline integration preview NAME``: how many records match each object's rules (SOQL
``COUNT()``), before any sync; with ``--file`` it previews rules that are not saved yet."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from sf_pipeline.cli.output import console, print_json
from sf_pipeline.errors import ConfigError


def preview_command(
    name: Annotated[str, typer.Argument(help="The integration (its stored credentials are used).")],
    file: Annotated[
        Path | None, typer.Option("--file", help="Preview this file's rules instead of the saved ones.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON object: object name → count.")] = False,
) -> None:
    """Count the records that match each object's sync rules, without syncing."""
    from sf_pipeline.integration_spec import load_spec_file
    from sf_pipeline.rules import Rule, compile_where
    from sf_pipeline.salesforce.session import open_client
    from sf_pipeline.secrets import load_cipher
    from sf_pipeline.settings import load_settings
    from sf_pipeline.storage.database import Database
    from sf_pipeline.storage.integrations import get_integration

    settings = load_settings()
    database = Database.from_settings(settings)
    client = open_client(database, load_cipher(settings), name)
    if file is not None:
        spec = load_spec_file(file)
        if spec.name != name:
            raise ConfigError(f"the file describes '{spec.name}', not '{name}'", key="name")
        objects = [(obj_name, obj.match, [Rule(**r.model_dump()) for r in obj.rules])
                   for obj_name, obj in spec.objects.items()]
    else:
        with database.session() as session:
            integration = get_integration(session, name)
            objects = [(o.object_name, o.match, [Rule(**r) for r in o.rules or []]) for o in integration.objects]
    if not objects:
        raise ConfigError(f"integration '{name}' has no objects selected yet", key="objects")
    counts: dict[str, int] = {}
    clauses: dict[str, str | None] = {}
    for object_name, match, rules in objects:
        where = compile_where(rules, match, client.describe(object_name)) if rules else None  # type: ignore[arg-type]
        clauses[object_name] = where
        counts[object_name] = client.count(f"SELECT COUNT() FROM {object_name}" + (f" WHERE {where}" if where else ""))
    if as_json:
        print_json(counts)
        return
    table = Table(title=f"Preview count for {name}")
    table.add_column("Object")
    table.add_column("Matching records", justify="right")
    table.add_column("Rules (SOQL)", overflow="fold")
    for object_name, count in counts.items():
        table.add_row(object_name, f"{count:,}", clauses[object_name] or "(all records)")
    console.print(table)
