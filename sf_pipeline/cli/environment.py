"""``sf-pipeline env``: the home folder, database, Dagster home, key and CA bundle in effect, and
where each came from, so a second terminal can be checked against the first."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer
from rich.table import Table

from sf_pipeline.cli.output import console, print_json
from sf_pipeline.secrets import KEY_ENV
from sf_pipeline.settings import CONFIG_FILE, applied_settings


def without_password(url: str) -> str:
    """``url`` with any password replaced by ``***``. Split by hand rather than with SQLAlchemy's
    URL parser so that this command does not load SQLAlchemy."""
    scheme, separator, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not separator or not at or ":" not in credentials:
        return url
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"


def environment() -> dict[str, Any]:
    settings = applied_settings()
    database = without_password(settings.database_url)
    if os.environ.get(KEY_ENV) is not None:
        key = {"source": f"${KEY_ENV}", "present": bool(os.environ[KEY_ENV].strip())}
    else:
        key = {"source": str(settings.key_file), "present": settings.key_file.is_file()}
    return {
        "home": str(settings.home),
        "home_source": settings.source("home"),
        "config_file": str(settings.home / CONFIG_FILE),
        "database_url": database,
        "database_source": settings.source("database_url"),
        "dagster_home": str(settings.dagster_home),
        "dagster_home_source": settings.source("dagster_home"),
        "secret_key": key,
        "ca_bundle": str(settings.ca_bundle) if settings.ca_bundle else None,
        "ca_bundle_source": settings.source("ca_bundle") if settings.ca_bundle else None,
        "ca_bundle_exists": settings.ca_bundle.is_file() if settings.ca_bundle else None,
    }


def env_command(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object with stable keys.")] = False,
) -> None:
    """Show the home folder, database, Dagster home, secret key and CA bundle in effect."""
    values = environment()
    if as_json:
        print_json(values)
        return
    table = Table(show_header=True, title="sf-pipeline environment", title_justify="left")
    table.add_column("Setting", style="bold", no_wrap=True)
    table.add_column("Value", overflow="fold")
    table.add_column("From", overflow="fold")
    key = values["secret_key"]
    ca = values["ca_bundle"]
    table.add_row("Home", values["home"], values["home_source"])
    table.add_row("Database", values["database_url"], values["database_source"])
    table.add_row("Dagster home", values["dagster_home"], values["dagster_home_source"])
    table.add_row("Secret key", key["source"] + ("" if key["present"] else " (not created yet)"),
                  "environment" if key["source"].startswith("$") else "key file")
    table.add_row("CA bundle", (ca + ("" if values["ca_bundle_exists"] else " (missing)")) if ca
                  else "system and certifi CAs", values["ca_bundle_source"] or "default")
    console.print(table)
