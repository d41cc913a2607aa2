"""Connecting and reconnecting orgs end to end against the sandbox: the browser consent flow run
headless (a ``requests`` "browser" follows Salesforce's redirect to the loopback callback), the
refresh-token import, what gets stored, what is refused, and the CLI on top."""

from __future__ import annotations

import threading
import webbrowser
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
import requests
from sqlalchemy import select
from typer.testing import CliRunner

from sf_pipeline import connect as connecting
from sf_pipeline.cli.connect import app as connect_app
from sf_pipeline.connect import ConnectResult, connect, login_url_for, reconnect
from sf_pipeline.errors import ConfigError, ConflictError, ConnectError, NotFoundError
from sf_pipeline.salesforce.oauth import BrowserLogin, CallbackServer, ClientCredentials, RefreshTokenImport
from sf_pipeline.sandbox.ids import KEY_PREFIXES, make_id
from sf_pipeline.sandbox.state import Org
from sf_pipeline.sandbox.testing import SandboxHandle, serve_in_thread
from sf_pipeline.secrets import Cipher
from sf_pipeline.storage.database import Database
from sf_pipeline.storage.integrations import (
    StoredCredentials,
    create_integration,
    get_integration,
    load_credentials,
    mapping_specs,
    refresh_setup_status,
)
from sf_pipeline.storage.models import Integration, LogEvent, ObjectConfig, SyncState
from sf_pipeline_tests.dbs import migrated_database

TEST_KEY = "x1hqBG2mPmNn1zxuHzW5rkGt3pZ5nyhoa8bvk5Oqa0A="
DEFAULT_MAPPINGS = [
    ("Email", "email"),
    ("FirstName", "first_name"),
    ("LastName", "last_name"),
    ("Phone", "phone"),
]

Browser = Callable[[str], None]


# ------------------------------------------------------------------------------------- fixtures


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxHandle]:
    with serve_in_thread(seed=5) as handle:
        assert handle.ca_bundle
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", handle.ca_bundle)
        yield handle


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with migrated_database(request.param, tmp_path) as database:
        yield database


@pytest.fixture
def cipher() -> Cipher:
    return Cipher(TEST_KEY, source="the test key")


def headless(sandbox: SandboxHandle, rewrite: Callable[[str], str] = lambda url: url) -> Browser:
    """A "browser" that loads the consent page (the sandbox approves at once) and follows the
    redirect back to the loopback callback, optionally rewriting where that redirect points."""

    def open_browser(url: str) -> None:
        with sandbox.session() as browser:
            consent = browser.get(url, allow_redirects=False, timeout=10)
            assert consent.status_code in (302, 303), consent.text
            browser.get(rewrite(consent.headers["Location"]), timeout=10)

    return open_browser


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def client_of(sandbox: SandboxHandle) -> ClientCredentials:
    return ClientCredentials(sandbox.client_id, sandbox.client_secret)


def browser_login(sandbox: SandboxHandle, browser: Browser | None = None, *, timeout: float = 30.0) -> BrowserLogin:
    return BrowserLogin(
        sandbox.login_url, client_of(sandbox), open_browser=browser or headless(sandbox), timeout=timeout
    )


def stored(database: Database, cipher: Cipher, name: str = "acme") -> StoredCredentials:
    with database.session() as session:
        return load_credentials(session, name, cipher)


def integration_names(database: Database) -> list[str]:
    with database.session() as session:
        return list(session.scalars(select(Integration.name).order_by(Integration.name)))


def raw_bytes(database: Database) -> bytes:
    path = Path(str(database.url.database))
    return b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())


# ------------------------------------------------------------------------------------- login hosts


def test_environments_name_salesforce_login_hosts() -> None:
    assert login_url_for("production") == "https://login.salesforce.com"
    assert login_url_for("sandbox") == "https://test.salesforce.com"
    assert login_url_for("custom", "acme.my.salesforce.com") == "https://acme.my.salesforce.com"
    assert login_url_for("Custom", "https://Acme.my.salesforce.com/") == "https://acme.my.salesforce.com"
    assert login_url_for("custom", "127.0.0.1:8443") == "https://127.0.0.1:8443"
    assert login_url_for("custom", "localhost:8443") == "https://localhost:8443"


@pytest.mark.parametrize(
    "domain",
    [
        "acme",
        "acme.my.salesforce.com/path",
        "ac me.my.salesforce.com",
        "-acme.my.salesforce.com",
        "evil.example.com",
        "user@acme.my.salesforce.com",
        "acme..my.salesforce.com",
    ],
)
def test_malformed_or_foreign_hosts_are_refused_naming_them(domain: str) -> None:
    with pytest.raises(ConnectError) as raised:
        login_url_for("custom", domain)
    assert repr(domain) in str(raised.value)


def test_unknown_environment_is_refused_naming_it() -> None:
    with pytest.raises(ConnectError, match="'staging'"):
        login_url_for("staging")


def test_custom_environment_needs_a_domain() -> None:
    with pytest.raises(ConnectError, match="--domain"):
        login_url_for("custom")


# ------------------------------------------------------------------------------------- connect


def test_headless_connect_creates_an_incomplete_integration_with_default_mappings(
    database: Database, cipher: Cipher, sandbox: SandboxHandle
) -> None:
    result = connect(database, cipher, "acme", browser_login(sandbox), project_id=42)

    assert result == ConnectResult(
        integration="acme",
        org_id=sandbox.org.org_id,
        username=sandbox.username,
        status="incomplete",
        created=True,
    )
    with database.session() as session:
        integration = get_integration(session, "acme")
        assert integration.project_id == 42
        assert integration.org_id == sandbox.org.org_id
        assert integration.login_url == sandbox.login_url
        assert [(m.field, m.property) for m in mapping_specs(integration)] == DEFAULT_MAPPINGS
        assert not integration.objects_saved and not integration.mappings_saved
    creds = stored(database, cipher)
    assert creds.user_id == sandbox.org.auth.user.user_id
    assert creds.client_id == sandbox.client_id
    assert creds.instance_url == sandbox.instance_url


def test_stored_tokens_work_and_never_appear_in_the_database_file(
    database: Database, cipher: Cipher, sandbox: SandboxHandle
) -> None:
    connect(database, cipher, "acme", browser_login(sandbox), project_id=42)
    creds = stored(database, cipher)
    assert creds.access_token and creds.refresh_token
    response = requests.get(
        f"{creds.instance_url}/services/data/v59.0/limits",
        headers={"Authorization": f"Bearer {creds.access_token}"},
        timeout=10,
    )
    assert response.status_code == 200
    if database.dialect == "sqlite":
        raw = raw_bytes(database)
        assert raw  # the grep below would be vacuous on an empty read
        for secret in (creds.access_token, creds.refresh_token, creds.client_secret):
            assert secret.encode() not in raw


def test_the_authorize_request_uses_pkce_state_and_the_requested_scope(
    database: Database, cipher: Cipher, sandbox: SandboxHandle
) -> None:
    seen: list[str] = []
    follow = headless(sandbox)

    def browser(url: str) -> None:
        seen.append(url)
        follow(url)

    connect(database, cipher, "acme", browser_login(sandbox, browser), project_id=42)
    query = {k: v[0] for k, v in parse_qs(urlsplit(seen[0]).query).items()}
    assert urlsplit(seen[0]).path == "/services/oauth2/authorize"
    assert query["response_type"] == "code"
    assert query["client_id"] == sandbox.client_id
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 32
    assert query["scope"] == "api refresh_token"
    assert urlsplit(query["redirect_uri"]).hostname == "127.0.0.1"
    assert urlsplit(query["redirect_uri"]).path == "/callback"
    assert sandbox.client_secret not in seen[0]


def test_connecting_an_org_another_integration_holds_is_refused_naming_it(
    database: Database, cipher: Cipher, sandbox: SandboxHandle
) -> None:
    connect(database, cipher, "acme", browser_login(sandbox), project_id=42)
    before = stored(database, cipher)

    with pytest.raises(ConflictError, match="'acme'"):
        connect(database, cipher, "acme-two", browser_login(sandbox), project_id=7)

    assert integration_names(database) == ["acme"]
    assert stored(database, cipher).version == before.version


def test_import_of_a_refresh_token_connects_without_a_browser(
    database: Database, cipher: Cipher, sandbox: SandboxHandle
) -> None:
    token = sandbox.issue_refresh_token()
    result = connect(
        database,
        cipher,
        "acme",
        RefreshTokenImport(sandbox.login_url, client_of(sandbox), token),
        project_id=42,
    )
    assert (result.org_id, result.status, result.created) == (sandbox.org.org_id, "incomplete", True)
    creds = stored(database, cipher)
    assert creds.refresh_token == token
    assert creds.access_token


def test_import_keeps_a_refresh_token_rotated_by_the_validation(
    database: Database, cipher: Cipher, sandbox: SandboxHandle
) -> None:
    sandbox.org.set_options(refresh_token_rotation=True)
    token = sandbox.issue_refresh_token()
    connect(
        database,
        cipher,
        "acme",
        RefreshTokenImport(sandbox.login_url, client_of(sandbox), token),
        project_id=42,
    )
    assert stored(database, cipher).refresh_token != token


def test_connect_attaches_credentials_to_an_integration_created_from_a_file(
    database: Database, cipher: Cipher, sandbox: SandboxHandle
) -> None:
    with database.session() as session:
        integration = create_integration(session, name="acme", project_id=9, login_url=sandbox.login_url)
        integration.objects = [ObjectConfig(object_name="Lead", match="all", rules=[])]
        integration.objects_saved = True
        integration.mappings_saved = True

    result = connect(database, cipher, "acme", browser_login(sandbox))

    assert not result.created
    assert result.status == "active"  # its objects and mappings were already applied
    with database.session() as session:
        integration = get_integration(session, "acme")
        assert integration.project_id == 9
        assert integration.sync_requested_at is not None


def test_connect_of_a_new_integration_needs_a_project(
    database: Database, cipher: Cipher, sandbox: SandboxHandle
) -> None:
    opened: list[str] = []
    with pytest.raises(ConnectError, match="--project-id"):
        connect(database, cipher, "acme", browser_login(sandbox, opened.append))
    assert opened == []  # refused before sending the admin to Salesforce


def test_connect_refuses_a_bad_integration_name_before_authorising(
    database: Database, cipher: Cipher, sandbox: SandboxHandle
) -> None:
    opened: list[str] = []
    with pytest.raises(ConfigError, match="name"):
        connect(database, cipher, "Acme Corp", browser_login(sandbox, opened.append), project_id=1)
    assert opened == []


def test_connect_of_a_connected_integration_points_to_reconnect(
    database: Database, cipher: Cipher, sandbox: SandboxHandle
) -> None:
    connect(database, cipher, "acme", browser_login(sandbox), project_id=42)
    with pytest.raises(ConflictError, match="reconnect acme"):
        connect(database, cipher, "acme", browser_login(sandbox), project_id=42)


# ------------------------------------------------------------------------------------- failures


def _assert_nothing_stored(database: Database) -> None:
    assert integration_names(database) == []


def test_denied_consent_stores_nothing(database: Database, cipher: Cipher, sandbox: SandboxHandle) -> None:
    sandbox.org.set_options(deny_consent=True)
    with pytest.raises(ConnectError, match="consent denied"):
        connect(database, cipher, "acme", browser_login(sandbox), project_id=42)
    _assert_nothing_stored(database)


def test_a_callback_with_the_wrong_state_stores_nothing(
    database: Database, cipher: Cipher, sandbox: SandboxHandle
) -> None:
    forged = headless(sandbox, lambda url: with_query(url, state="forged-state"))
    with pytest.raises(ConnectError, match="state"):
        connect(database, cipher, "acme", browser_login(sandbox, forged), project_id=42)
    assert sandbox.org.counters.snapshot()["token"] == 0  # the code was never exchanged
    _assert_nothing_stored(database)


def test_a_reused_authorization_code_stores_nothing(database: Database, cipher: Cipher, sandbox: SandboxHandle) -> None:
    codes: list[str] = []

    def remember(url: str) -> str:
        codes.append(parse_qs(urlsplit(url).query)["code"][0])
        return url

    connect(database, cipher, "acme", browser_login(sandbox, headless(sandbox, remember)), project_id=42)
    before = stored(database, cipher)
    replay = headless(sandbox, lambda url: with_query(url, code=codes[0]))

    with pytest.raises(ConnectError, match="invalid_grant"):
        reconnect(database, cipher, "acme", browser_login(sandbox, replay))
    after = stored(database, cipher)
    assert (after.version, after.refresh_token) == (before.version, before.refresh_token)


def test_an_expired_authorization_code_stores_nothing(
    database: Database, cipher: Cipher, sandbox: SandboxHandle
) -> None:
    def slow_admin(url: str) -> str:
        sandbox.org.clock.advance(16 * 60)  # authorization codes live 15 minutes
        return url

    with pytest.raises(ConnectError, match="expired authorization code"):
        connect(database, cipher, "acme", browser_login(sandbox, headless(sandbox, slow_admin)), project_id=42)
    _assert_nothing_stored(database)


def test_a_network_failure_during_the_code_exchange_stores_nothing(
    database: Database, cipher: Cipher, sandbox: SandboxHandle
) -> None:
    sandbox.org.inject_fault("token", "drop")
    with pytest.raises(ConnectError, match="could not reach Salesforce"):
        connect(database, cipher, "acme", browser_login(sandbox), project_id=42)
    _assert_nothing_stored(database)


def test_an_unreachable_login_host_stores_nothing(database: Database, cipher: Cipher) -> None:
    with CallbackServer() as closed:  # a port nothing answers HTTPS on once this block ends
        port = urlsplit(closed.redirect_uri).port
    importer = RefreshTokenImport(f"https://127.0.0.1:{port}", ClientCredentials("id", "secret"), "5Aep861.token")
    with pytest.raises(ConnectError, match="could not reach Salesforce") as raised:
        connect(database, cipher, "acme", importer, project_id=42)
    assert "5Aep861.token" not in str(raised.value)
    _assert_nothing_stored(database)


def test_no_answer_from_the_browser_times_out_and_stores_nothing(
    database: Database, cipher: Cipher, sandbox: SandboxHandle
) -> None:
    with pytest.raises(ConnectError, match="timed out"):
        connect(database, cipher, "acme", browser_login(sandbox, lambda url: None, timeout=0.2), project_id=42)
    _assert_nothing_stored(database)


def test_importing_a_revoked_refresh_token_stores_nothing(
    database: Database, cipher: Cipher, sandbox: SandboxHandle
) -> None:
    token = sandbox.issue_refresh_token()
    sandbox.org.revoke_all_tokens()
    with pytest.raises(ConnectError, match="invalid_grant") as raised:
        connect(
            database,
            cipher,
            "acme",
            RefreshTokenImport(sandbox.login_url, client_of(sandbox), token),
            project_id=42,
        )
    assert token not in str(raised.value)
    assert sandbox.client_secret not in str(raised.value)
    _assert_nothing_stored(database)


def test_a_wrong_client_secret_stores_nothing_and_is_not_echoed(
    database: Database, cipher: Cipher, sandbox: SandboxHandle
) -> None:
    login = BrowserLogin(
        sandbox.login_url,
        ClientCredentials(sandbox.client_id, "wrong-secret-value"),
        open_browser=headless(sandbox),
    )
    with pytest.raises(ConnectError, match="invalid_client") as raised:
        connect(database, cipher, "acme", login, project_id=42)
    assert "wrong-secret-value" not in str(raised.value)
    _assert_nothing_stored(database)


def test_the_callback_server_answers_only_the_first_redirect() -> None:
    with CallbackServer() as server:
        base = server.redirect_uri
        assert requests.get(base.replace("/callback", "/favicon.ico"), timeout=5).status_code == 404
        first = requests.get(f"{base}?code=a&state=s", timeout=5)
        second = requests.get(f"{base}?code=b&state=s", timeout=5)
        assert (first.status_code, second.status_code) == (200, 409)
        assert server.wait(0) == {"code": "a", "state": "s"}


# ------------------------------------------------------------------------------------- reconnect


def _configure(database: Database, name: str = "acme") -> None:
    """What an admin does after connecting: objects, rules, mappings, and a few syncs."""
    with database.session() as session:
        integration = get_integration(session, name)
        integration.objects = [
            ObjectConfig(
                object_name="Lead",
                match="any",
                rules=[{"field": "Status", "operator": "equals", "value": "Hot"}],
            )
        ]
        integration.objects_saved = True
        integration.mappings_saved = True
        assert refresh_setup_status(integration, datetime.now(UTC))
        session.add(
            SyncState(
                integration_id=integration.id,
                object_name="Lead",
                watermark=datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
                config_fingerprint="abc123",
            )
        )
        session.add(LogEvent(integration_id=integration.id, type="sync_completed", counts={"created": 5}))


def _snapshot(database: Database, name: str = "acme") -> dict[str, object]:
    with database.session() as session:
        integration = get_integration(session, name)
        states = session.scalars(select(SyncState).where(SyncState.integration_id == integration.id))
        events = session.scalars(select(LogEvent).where(LogEvent.integration_id == integration.id))
        return {
            "status": integration.status,
            "project": integration.project_id,
            "objects": [(o.object_name, o.match, o.rules) for o in integration.objects],
            "mappings": [(m.field, m.property, m.object_name) for m in mapping_specs(integration)],
            "watermarks": [(s.object_name, s.watermark, s.config_fingerprint) for s in states],
            "events": [(e.type, e.counts) for e in events],
        }


def test_reconnect_replaces_only_the_credentials(database: Database, cipher: Cipher, sandbox: SandboxHandle) -> None:
    connect(database, cipher, "acme", browser_login(sandbox), project_id=42)
    _configure(database)
    before, old = _snapshot(database), stored(database, cipher)

    result = reconnect(database, cipher, "acme", browser_login(sandbox))

    new = stored(database, cipher)
    assert (result.org_id, result.created) == (sandbox.org.org_id, False)
    assert new.refresh_token != old.refresh_token
    assert new.access_token != old.access_token
    assert new.version > old.version
    assert _snapshot(database) == before


def test_reconnect_with_an_imported_token(database: Database, cipher: Cipher, sandbox: SandboxHandle) -> None:
    connect(database, cipher, "acme", browser_login(sandbox), project_id=42)
    sandbox.org.revoke_all_tokens()  # the admin revoked the app; a new token is issued
    token = sandbox.issue_refresh_token()
    reconnect(database, cipher, "acme", RefreshTokenImport(sandbox.login_url, client_of(sandbox), token))
    assert stored(database, cipher).refresh_token == token


def test_reconnect_of_an_unknown_integration_is_not_found(
    database: Database, cipher: Cipher, sandbox: SandboxHandle
) -> None:
    opened: list[str] = []
    with pytest.raises(NotFoundError):
        reconnect(database, cipher, "ghost", browser_login(sandbox, opened.append))
    assert opened == []


def test_reconnect_to_a_different_org_is_refused(
    database: Database,
    cipher: Cipher,
    sandbox: SandboxHandle,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connect(database, cipher, "acme", browser_login(sandbox), project_id=42)
    _configure(database)
    before, old = _snapshot(database), stored(database, cipher)
    other = Org(seed=9)
    other.org_id = other.auth.org_id = make_id(KEY_PREFIXES["Organization"], 2)

    with serve_in_thread(other) as elsewhere:
        bundle = tmp_path / "both.pem"
        bundle.write_bytes(Path(str(sandbox.ca_bundle)).read_bytes() + Path(str(elsewhere.ca_bundle)).read_bytes())
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
        with pytest.raises(ConflictError, match=sandbox.org.org_id) as raised:
            reconnect(database, cipher, "acme", browser_login(elsewhere))

    assert other.org_id in str(raised.value)
    assert _snapshot(database) == before
    assert stored(database, cipher).version == old.version


# ------------------------------------------------------------------------------------- the CLI


@pytest.fixture
def cli_env(tmp_path: Path, sandbox: SandboxHandle, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.delenv("SF_PIPELINE_DATABASE_URL", raising=False)
    monkeypatch.delenv("SF_PIPELINE_CLIENT_ID", raising=False)
    monkeypatch.delenv("SF_PIPELINE_CLIENT_SECRET", raising=False)
    monkeypatch.delenv("SF_PIPELINE_REFRESH_TOKEN", raising=False)
    return {"SF_PIPELINE_HOME": str(tmp_path / "home"), "SF_PIPELINE_SECRET_KEY": TEST_KEY}


def _cli_credentials(home: Path) -> StoredCredentials:
    database = Database(f"sqlite:///{home / 'sf_pipeline.db'}")
    try:
        return stored(database, Cipher(TEST_KEY))
    finally:
        database.dispose()


def _no_secrets(output: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in output


def test_cli_connect_with_an_imported_token_reports_org_and_status_only(
    cli_env: dict[str, str], sandbox: SandboxHandle
) -> None:
    token = sandbox.issue_refresh_token()
    result = CliRunner().invoke(
        connect_app,
        [
            "connect",
            "acme",
            "--project-id",
            "42",
            "--login-url",
            sandbox.login_url,
            "--refresh-token",
            token,
            "--client-id",
            sandbox.client_id,
            "--client-secret",
            sandbox.client_secret,
        ],
        env=cli_env,
    )
    assert result.exit_code == 0, result.output
    assert sandbox.org.org_id in result.output
    assert "incomplete" in result.output
    creds = _cli_credentials(Path(cli_env["SF_PIPELINE_HOME"]))
    _no_secrets(result.output, token, sandbox.client_secret, creds.access_token or "")


def test_cli_connect_in_a_browser_takes_the_client_from_the_environment(
    cli_env: dict[str, str], sandbox: SandboxHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    follow = headless(sandbox)

    def fake_webbrowser_open(url: str) -> bool:
        threading.Thread(target=follow, args=(url,)).start()
        return True

    monkeypatch.setattr(webbrowser, "open", fake_webbrowser_open)
    env = {
        **cli_env,
        "SF_PIPELINE_CLIENT_ID": sandbox.client_id,
        "SF_PIPELINE_CLIENT_SECRET": sandbox.client_secret,
    }
    port = urlsplit(sandbox.login_url).port
    result = CliRunner().invoke(
        connect_app,
        ["connect", "acme", "--project-id", "3", "--env", "custom", "--domain", f"127.0.0.1:{port}"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert f"Connected integration 'acme' to Salesforce org {sandbox.org.org_id}" in result.output
    creds = _cli_credentials(Path(cli_env["SF_PIPELINE_HOME"]))
    _no_secrets(result.output, creds.refresh_token, creds.access_token or "", sandbox.client_secret)

    # Reconnect logs in where the integration was connected, without being told again.
    result = CliRunner().invoke(connect_app, ["reconnect", "acme"], env=env)
    assert result.exit_code == 0, result.output
    assert "Reconnected integration 'acme'" in result.output
    assert _cli_credentials(Path(cli_env["SF_PIPELINE_HOME"])).refresh_token != creds.refresh_token


def test_cli_prints_the_url_when_no_browser_can_be_opened(
    cli_env: dict[str, str], sandbox: SandboxHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webbrowser, "open", lambda url: False)
    result = CliRunner().invoke(
        connect_app,
        [
            "connect",
            "acme",
            "--project-id",
            "3",
            "--login-url",
            sandbox.login_url,
            "--timeout",
            "0.2",
            "--client-id",
            sandbox.client_id,
            "--client-secret",
            sandbox.client_secret,
        ],
        env=cli_env,
    )
    assert isinstance(result.exception, ConnectError)
    assert "/services/oauth2/authorize?" in result.output
    assert sandbox.client_secret not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "production", "--login-url", "https://login.salesforce.com"], "not both"),
        (["--env", "staging"], "unknown environment 'staging'"),
        (["--env", "custom", "--domain", "acme"], "malformed Salesforce host 'acme'"),
        (["--login-url", "http://login.salesforce.com"], "https"),
        ([], "--env"),
    ],
)
def test_cli_refuses_bad_login_options(cli_env: dict[str, str], args: list[str], message: str) -> None:
    result = CliRunner().invoke(
        connect_app,
        [
            "connect",
            "acme",
            "--project-id",
            "1",
            *args,
            "--client-id",
            "id",
            "--client-secret",
            "s3cret-value",
        ],
        env=cli_env,
    )
    assert isinstance(result.exception, ConnectError)
    assert message in str(result.exception)
    assert "s3cret-value" not in str(result.exception)


def test_cli_needs_the_client_credentials(cli_env: dict[str, str]) -> None:
    result = CliRunner().invoke(
        connect_app, ["connect", "acme", "--project-id", "1", "--env", "production"], env=cli_env
    )
    assert isinstance(result.exception, ConnectError)
    assert "SF_PIPELINE_CLIENT_ID" in str(result.exception)


def test_connect_module_exposes_stored_login_url(database: Database, cipher: Cipher, sandbox: SandboxHandle) -> None:
    connect(database, cipher, "acme", browser_login(sandbox), project_id=42)
    assert connecting.stored_login_url(database, "acme") == sandbox.login_url
