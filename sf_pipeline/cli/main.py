"""``sf-pipeline``: the admin's command line.

Exit codes: 0 success; 1 the operation ran and failed (a failed sync, a failing health check, a
refused connect, an unreachable database, an unusable secret key); 2 a usage or validation error.
Nothing prints a traceback for something the admin can fix; ``--verbose`` shows it.

Startup stays fast: command modules import Dagster, pandas and pyarrow only inside the commands
that run a sync or a check.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

from sf_pipeline.cli.output import errors
from sf_pipeline.settings import HOME_ENV, apply_environment

VERBOSE_ENV = "SF_PIPELINE_VERBOSE"


@dataclass(frozen=True)
class _Lazy:
    module: str
    attribute: str
    help: str


# Commands whose modules import the sandbox or the demo's launcher: loaded only when run.
LAZY_COMMANDS = {
    "sandbox": _Lazy("sf_pipeline.cli.sandbox", "app", "A local Salesforce org for tests, the demo and benchmarks."),
    "demo": _Lazy("sf_pipeline.cli.demo", "demo_command",
                  "Start the sandbox, connect a demo integration and run Dagster until Ctrl-C."),
}


class _LazyGroup(TyperGroup):
    """Lists the lazy commands with a fixed help line, and imports one only to run it (Click
    resolves the command to run through ``resolve_command``; help listings call ``get_command``)."""

    _resolving = False

    def list_commands(self, ctx: Any) -> list[str]:
        names = list(super().list_commands(ctx))
        return names + [name for name in LAZY_COMMANDS if name not in names]

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        self._resolving = True
        try:
            return super().resolve_command(ctx, args)
        finally:
            self._resolving = False

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        lazy = LAZY_COMMANDS.get(cmd_name)
        if lazy is not None and cmd_name not in self.commands:
            if not self._resolving:
                return TyperCommand(cmd_name, help=lazy.help, short_help=lazy.help)
            target = getattr(importlib.import_module(lazy.module), lazy.attribute)
            if not isinstance(target, typer.Typer):
                single = typer.Typer()
                single.command(cmd_name, help=lazy.help)(target)
                target = single
            else:
                target.info.help = lazy.help
            self.add_command(typer.main.get_command(target), cmd_name)
        return super().get_command(ctx, cmd_name)


app = typer.Typer(
    name="sf-pipeline",
    help="Keep Spotzee users in step with a Salesforce org.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=_LazyGroup,
)


@app.callback()
def root(
    home: Annotated[
        Path | None,
        typer.Option("--home", help="The home folder (default: $SF_PIPELINE_HOME, else ./.sf_pipeline when "
                     "present, else a per-user folder).", show_default=False),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks and Dagster's run log.")] = False,
) -> None:
    """Keep Spotzee users in step with a Salesforce org."""
    if home is not None:
        os.environ[HOME_ENV] = str(home.expanduser().resolve())
    if verbose:
        os.environ[VERBOSE_ENV] = "1"
    elif os.environ.get(VERBOSE_ENV) != "1":
        # Library deprecation and preview warnings are for developers, not for an admin's terminal.
        warnings.filterwarnings("ignore")
    apply_environment()


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV) == "1"


def _build() -> None:
    from sf_pipeline.cli import connect
    from sf_pipeline.cli.environment import env_command
    from sf_pipeline.cli.health import health_command
    from sf_pipeline.cli.integration import app as integration_app
    from sf_pipeline.cli.logs import logs_command
    from sf_pipeline.cli.preview import preview_command
    from sf_pipeline.cli.reconcile import reconcile_command
    from sf_pipeline.cli.status import status_command
    from sf_pipeline.cli.sync import sync_command

    connect.register(integration_app)
    integration_app.command("preview")(preview_command)
    app.add_typer(
        integration_app, name="integration",
        help="Create, connect, configure, pause, resume, disconnect and delete integrations.",
    )
    app.command("sync")(sync_command)
    app.command("reconcile")(reconcile_command)
    app.command("status")(status_command)
    app.command("logs")(logs_command)
    app.command("health")(health_command)
    app.command("env")(env_command)


_build()


def _fail(message: str, code: int) -> None:
    if verbose():
        traceback.print_exc()
    from rich.markup import escape

    errors.print(f"[bold red]Error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Run the app in Click's standalone mode, which turns usage errors into exit 2 and
    ``typer.Exit(code)`` into that exit code; the errors sf_pipeline raises are printed here."""
    from sf_pipeline.errors import UserError

    try:
        app(args=argv, prog_name="sf-pipeline", standalone_mode=True)
    except UserError as exc:
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        errors.print("Interrupted.")
        sys.exit(130)
    except Exception as exc:  # anything else: one line, exit 1; --verbose shows where it came from
        _fail(_describe_unexpected(exc), 1)


def _describe_unexpected(exc: Exception) -> str:
    from sqlalchemy.exc import DBAPIError

    from sf_pipeline.salesforce.errors import SalesforceError

    if isinstance(exc, SalesforceError):
        return exc.message
    if isinstance(exc, DBAPIError):
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
        return f"database error: {reason}"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    hint = "" if verbose() else " (run with --verbose for the traceback)"
    return f"{type(exc).__name__}: {first}{hint}" if first else f"{type(exc).__name__}{hint}"


if __name__ == "__main__":
    main()
