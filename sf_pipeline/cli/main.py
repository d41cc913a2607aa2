"""``sf-pipeline``: the admin's command line. User mistakes print a message and exit 2; a failed
sync exits 1; nothing prints a traceback for something the admin can fix."""

from __future__ import annotations

import sys

import typer

from sf_pipeline.cli.output import errors

app = typer.Typer(
    name="sf-pipeline",
    help="Keep Spotzee users in step with a Salesforce org.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _build() -> None:
    from sf_pipeline.cli import connect
    from sf_pipeline.cli.demo import demo_command
    from sf_pipeline.cli.health import health_command
    from sf_pipeline.cli.integration import app as integration_app
    from sf_pipeline.cli.logs import logs_command
    from sf_pipeline.cli.preview import preview_command
    from sf_pipeline.cli.reconcile import reconcile_command
    from sf_pipeline.cli.sandbox import app as sandbox_app
    from sf_pipeline.cli.status import status_command
    from sf_pipeline.cli.sync import sync_command

    connect.register(integration_app)
    integration_app.command("preview")(preview_command)
    app.add_typer(
        integration_app, name="integration", help="Create, connect, configure, pause and resume integrations."
    )
    app.add_typer(sandbox_app, name="sandbox", help="A local Salesforce org for tests, the demo and benchmarks.")
    app.command("sync")(sync_command)
    app.command("reconcile")(reconcile_command)
    app.command("status")(status_command)
    app.command("logs")(logs_command)
    app.command("health")(health_command)
    app.command("demo")(demo_command)


_build()


def main(argv: list[str] | None = None) -> None:
    from sf_pipeline.errors import UserError

    try:
        # Standalone mode: click itself shows usage errors (exit 2), handles Abort and Exit; the
        # exceptions it does not know (ours) come through.
        app(args=argv)
    except UserError as exc:
        errors.print(f"[bold red]Error:[/] {exc}", highlight=False)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
