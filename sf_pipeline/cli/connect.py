"""``sf-pipeline integration connect`` and ``reconnect``.

Two ways to authorise: a browser consent (``--env production|sandbox|custom [--domain HOST]`` or
``--login-url URL``), or, for servers and CI, importing a refresh token obtained elsewhere
(``--login-url URL --refresh-token-file FILE``). Output names the org and the integration's status;
it never shows a token or the client secret.

Secrets are best given by environment variable or file: a value on the command line is visible to
every local user in ``ps`` while the command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sf_pipeline.errors import ConfigError, ConnectError

if TYPE_CHECKING:
    from sf_pipeline import connect as connecting

CLIENT_ID_ENV = "SF_PIPELINE_CLIENT_ID"
CLIENT_SECRET_ENV = "SF_PIPELINE_CLIENT_SECRET"
REFRESH_TOKEN_ENV = "SF_PIPELINE_REFRESH_TOKEN"

NameArg = Annotated[str, typer.Argument(help="The integration's name.", show_default=False)]
EnvOpt = Annotated[
    str | None,
    typer.Option("--env", help="Where to log in: production, sandbox or custom (with --domain).", show_default=False),
]
DomainOpt = Annotated[
    str | None,
    typer.Option(
        "--domain",
        help="Full My Domain host for --env custom, e.g. acme.my.salesforce.com.",
        show_default=False,
    ),
]
LoginUrlOpt = Annotated[
    str | None,
    typer.Option("--login-url", help="Login URL given whole, e.g. https://login.salesforce.com.", show_default=False),
]
RefreshTokenOpt = Annotated[
    str | None,
    typer.Option(
        "--refresh-token",
        envvar=REFRESH_TOKEN_ENV,
        help="Import this refresh token instead of opening a browser (servers, CI). Prefer the variable or "
        "--refresh-token-file.",
        show_default=False,
        show_envvar=True,
    ),
]
ClientIdOpt = Annotated[
    str | None,
    typer.Option("--client-id", envvar=CLIENT_ID_ENV, help="The connected app's consumer key.", show_default=False),
]
ClientSecretOpt = Annotated[
    str | None,
    typer.Option(
        "--client-secret",
        envvar=CLIENT_SECRET_ENV,
        help="The connected app's consumer secret. Prefer the variable or --client-secret-file: a value here "
        "is visible to other local users in `ps`.",
        show_default=False,
        show_envvar=True,
    ),
]
ClientSecretFileOpt = Annotated[
    Path | None,
    typer.Option("--client-secret-file", help="Read the consumer secret from this file.", show_default=False),
]
RefreshTokenFileOpt = Annotated[
    Path | None,
    typer.Option("--refresh-token-file", help="Read the refresh token to import from this file.", show_default=False),
]
CallbackPortOpt = Annotated[
    int,
    typer.Option(
        "--callback-port",
        help="Port of the local redirect (http://127.0.0.1:PORT/callback); 0 picks a free one. "
        "Real orgs need it to match the connected app's callback URL.",
    ),
]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds to wait for consent in the browser.")]


def connect_command(
    name: NameArg,
    project_id: Annotated[
        int | None,
        typer.Option("--project-id", help="Spotzee project of a new integration.", show_default=False),
    ] = None,
    env: EnvOpt = None,
    domain: DomainOpt = None,
    login_url: LoginUrlOpt = None,
    refresh_token: RefreshTokenOpt = None,
    refresh_token_file: RefreshTokenFileOpt = None,
    client_id: ClientIdOpt = None,
    client_secret: ClientSecretOpt = None,
    client_secret_file: ClientSecretFileOpt = None,
    callback_port: CallbackPortOpt = 0,
    timeout: TimeoutOpt = 300.0,
) -> None:
    """Connect a Salesforce org to an integration (creating it, Incomplete, when new)."""
    from sf_pipeline import connect as connecting
    from sf_pipeline.secrets import load_cipher
    from sf_pipeline.storage.database import Database

    url = _login_url(env, domain, login_url)
    if url is None:
        raise ConnectError("say where to log in: --env production|sandbox|custom, or --login-url URL")
    client_secret = _secret(client_secret, client_secret_file, "--client-secret")
    refresh_token = _secret(refresh_token, refresh_token_file, "--refresh-token")
    _check_timeout(timeout, callback_port)
    authorizer = _authorizer(url, client_id, client_secret, refresh_token, callback_port, timeout)
    database = Database.from_settings()
    try:
        result = connecting.connect(database, load_cipher(), name, authorizer, project_id=project_id)
    finally:
        database.dispose()
    if result.created:
        from sf_pipeline.runs import register_partition
        from sf_pipeline.settings import load_settings

        register_partition(load_settings(), name)
    _report("Connected", result)


def reconnect_command(
    name: NameArg,
    env: EnvOpt = None,
    domain: DomainOpt = None,
    login_url: LoginUrlOpt = None,
    refresh_token: RefreshTokenOpt = None,
    refresh_token_file: RefreshTokenFileOpt = None,
    client_id: ClientIdOpt = None,
    client_secret: ClientSecretOpt = None,
    client_secret_file: ClientSecretFileOpt = None,
    callback_port: CallbackPortOpt = 0,
    timeout: TimeoutOpt = 300.0,
) -> None:
    """Authorise an integration again, replacing only its credentials (same org).
    Without --env or --login-url it logs in where it was connected before."""
    from sf_pipeline import connect as connecting
    from sf_pipeline.secrets import load_cipher
    from sf_pipeline.storage.database import Database

    client_secret = _secret(client_secret, client_secret_file, "--client-secret")
    refresh_token = _secret(refresh_token, refresh_token_file, "--refresh-token")
    _check_timeout(timeout, callback_port)
    database = Database.from_settings()
    try:
        url = _login_url(env, domain, login_url) or connecting.stored_login_url(database, name)
        authorizer = _authorizer(url, client_id, client_secret, refresh_token, callback_port, timeout)
        result = connecting.reconnect(database, load_cipher(), name, authorizer)
    finally:
        database.dispose()
    _report("Reconnected", result)


def register(app: typer.Typer) -> None:
    app.command("connect")(connect_command)
    app.command("reconnect")(reconnect_command)


app = typer.Typer(help="Connect Salesforce orgs.", no_args_is_help=True)
register(app)


def _secret(value: str | None, file: Path | None, option: str) -> str | None:
    """A secret from its option or variable, or from ``file`` (surrounding whitespace removed)."""
    if file is None:
        return value
    if value is not None:
        raise ConfigError(f"give {option} or {option}-file, not both")
    try:
        text = file.expanduser().read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such file", key=f"{option}-file") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot be read ({type(exc).__name__})", key=f"{option}-file") from None
    if not text:
        raise ConfigError(f"{file} is empty", key=f"{option}-file")
    return text


def _check_timeout(timeout: float, callback_port: int) -> None:
    import math

    if not math.isfinite(timeout) or timeout <= 0:
        raise ConfigError(f"must be a positive number of seconds, got {timeout!r}", key="--timeout")
    if not 0 <= callback_port < 65536:
        raise ConfigError(f"must be a port number (0 picks a free one), got {callback_port}", key="--callback-port")


def _login_url(env: str | None, domain: str | None, login_url: str | None) -> str | None:
    from sf_pipeline import connect as connecting

    if env is not None and login_url is not None:
        raise ConnectError("give either --env or --login-url, not both")
    if login_url is not None:
        if domain is not None:
            raise ConnectError("--domain goes with --env custom, not with --login-url")
        return connecting.checked_login_url(login_url)
    if env is not None:
        return connecting.login_url_for(env, domain)
    if domain is not None:
        return connecting.login_url_for("custom", domain)
    return None


def _authorizer(
    login_url: str,
    client_id: str | None,
    client_secret: str | None,
    refresh_token: str | None,
    callback_port: int,
    timeout: float,
) -> connecting.Authorizer:
    from sf_pipeline.salesforce import oauth

    if not client_id:
        raise ConnectError(f"give the connected app's consumer key: --client-id or ${CLIENT_ID_ENV}")
    if not client_secret:
        raise ConnectError(
            f"give the connected app's consumer secret: ${CLIENT_SECRET_ENV} or --client-secret-file FILE"
        )
    client = oauth.ClientCredentials(client_id, client_secret)
    if refresh_token:
        return oauth.RefreshTokenImport(login_url, client, refresh_token)
    typer.echo(f"Opening Salesforce consent at {login_url} in your browser (waiting up to {timeout:g}s)...", err=True)
    return oauth.BrowserLogin(
        login_url, client, open_browser=oauth.open_in_browser, timeout=timeout, callback_port=callback_port
    )


def _report(verb: str, result: connecting.ConnectResult) -> None:
    who = f" as {result.username}" if result.username else ""
    typer.echo(
        f"{verb} integration {result.integration!r} to Salesforce org {result.org_id}{who}. Status: {result.status}."
    )
    if result.status == "incomplete":
        typer.echo("Next: choose its objects, sync rules and field mappings (`sf-pipeline integration apply`).")
