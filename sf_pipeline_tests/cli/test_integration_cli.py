"""``sf-pipeline integration`` apply / frequency / pause / resume / show / list, run through a root
app that handles ``UserError`` as the real entry point does (``Error: <message>`` on stderr, exit 2)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from cryptography.fernet import Fernet
from typer.core import TyperGroup
from typer.testing import CliRunner

import sf_pipeline.salesforce.session as salesforce_session
from sf_pipeline.cli.integration import app as integration_app
from sf_pipeline.errors import UserError
from sf_pipeline.salesforce.describe import ObjectDescribe
from sf_pipeline.secrets import load_cipher
from sf_pipeline.settings import load_settings
from sf_pipeline.storage.database import Database
from sf_pipeline.storage.integrations import (
    StoredCredentials,
    create_integration,
    get_integration,
    list_integrations,
    save_credentials,
)
from sf_pipeline.storage.models import IntegrationStatus
from sf_pipeline_tests.dbs import fresh_postgres_url
from sf_pipeline_tests.describes import describe

FILE = """\
name: acme
project_id: 42
login_url: https://login.salesforce.com
objects:
  Lead:
    match: all
    rules:
      - {field: Rating, operator: equals, value: Hot}
      - {field: Email, operator: is_set}
  Contact: {}
mappings:
  - {field: Email, property: email}
  - {field: FirstName, property: first_name}
  - {field: Industry, property: industry}
  - {field: HasOptedOutOfEmail, property: unsubscribed, type: boolean}
  - {field: Lead.Email, property: email, object: CampaignMember}
"""
SECRETS = ("client-secret-xyz", "refresh-token-xyz", "access-token-xyz")


class _HandlesUserErrors(TyperGroup):
    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as exc:
            typer.echo(f"Error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None


root = typer.Typer(cls=_HandlesUserErrors)
root.add_typer(integration_app, name="integration")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def home(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A project home with its own key, on SQLite or PostgreSQL."""
    monkeypatch.setenv("SF_PIPELINE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SF_PIPELINE_SECRET_KEY", Fernet.generate_key().decode())
    monkeypatch.delenv("SF_PIPELINE_DATABASE_URL", raising=False)
    if request.param == "sqlite":
        yield tmp_path
        return
    with fresh_postgres_url() as url:
        monkeypatch.setenv("SF_PIPELINE_DATABASE_URL", url)
        yield tmp_path


@pytest.fixture
def sqlite_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SF_PIPELINE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SF_PIPELINE_SECRET_KEY", Fernet.generate_key().decode())
    monkeypatch.delenv("SF_PIPELINE_DATABASE_URL", raising=False)
    return tmp_path


def run(*args: str) -> Any:
    return CliRunner().invoke(root, ["integration", *args], catch_exceptions=False)


def write(folder: Path, text: str = FILE) -> str:
    path = folder / "acme.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def with_database(action: Callable[[Any], Any]) -> Any:
    database = Database.from_settings(load_settings())
    try:
        with database.session() as session:
            return action(session)
    finally:
        database.dispose()


def connect() -> None:
    creds = StoredCredentials(
        client_id="3MVG9-id",
        client_secret=SECRETS[0],
        refresh_token=SECRETS[1],
        access_token=SECRETS[2],
        instance_url="https://acme.my.salesforce.com",
        org_id="00D000000000001EAA",
    )
    with_database(lambda s: save_credentials(s, get_integration(s, "acme"), creds, load_cipher()))


def integration_state() -> Any:
    def read(session: Any) -> dict[str, Any]:
        integration = get_integration(session, "acme")
        return {
            column: getattr(integration, column)
            for column in (
                "status",
                "frequency_minutes",
                "objects_saved",
                "mappings_saved",
                "sync_requested_at",
                "activated_at",
                "login_url",
                "project_id",
                "org_id",
            )
        }

    return with_database(read)


@pytest.fixture
def org_describe(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``describe_provider`` answering from the hand-built describes; returns the names asked for."""
    asked: list[str] = []

    def provider(database: Database, cipher: Any, name: str) -> Callable[[str], ObjectDescribe]:
        def lookup(object_name: str) -> ObjectDescribe:
            asked.append(object_name)
            return describe(object_name)

        return lookup

    monkeypatch.setattr(salesforce_session, "describe_provider", provider)
    return asked


# --- apply -------------------------------------------------------------------------------------------


def test_apply_creates_an_integration_and_reapplying_updates_it(home: Path) -> None:
    first = run("apply", write(home))
    assert first.exit_code == 0, first.output
    assert "Created integration acme: Lead, Contact; 5 field mappings." in first.stdout
    assert "Incomplete" in first.stdout and "not checked against Salesforce" in first.stdout
    second = run("apply", write(home, FILE.replace("value: Hot", "value: Warm")))
    assert second.exit_code == 0 and "Updated integration acme" in second.stdout
    assert integration_state()["status"] == "incomplete"


def test_apply_with_an_invalid_file_prints_the_key_and_reason_and_saves_nothing(sqlite_home: Path) -> None:
    result = run("apply", write(sqlite_home, FILE.replace("operator: is_set", "operator: gt")))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {sqlite_home / 'acme.yaml'}: objects.Lead.rules[1].operator: unknown")
    assert with_database(list_integrations) == []


def test_apply_reports_yaml_errors_with_their_line(sqlite_home: Path) -> None:
    result = run("apply", write(sqlite_home, "name: acme\nobjects:\n  Lead: {match: all\n  Contact: {}\n"))
    assert result.exit_code == 2 and "line 4" in result.stderr


def test_apply_to_a_connected_integration_checks_fields_and_activates_it(home: Path, org_describe: list[str]) -> None:
    # As `integration connect` leaves it: created Incomplete, with credentials, nothing saved yet.
    with_database(lambda s: create_integration(s, name="acme", project_id=42, login_url="https://login.salesforce.com"))
    connect()
    assert integration_state()["status"] == "incomplete"
    result = run("apply", write(home))
    assert result.exit_code == 0, result.output
    assert "Active" in result.stdout and "initial full sync" in result.stdout
    assert set(org_describe) == {"Lead", "Contact"}
    state = integration_state()
    assert state["status"] == "active" and state["sync_requested_at"] is not None


def test_apply_to_a_connected_integration_rejects_fields_the_org_lacks(
    sqlite_home: Path, org_describe: list[str]
) -> None:
    run("apply", write(sqlite_home))
    connect()
    result = run("apply", write(sqlite_home, FILE.replace("field: Rating", "field: Ratng")))
    assert result.exit_code == 2
    assert "objects.Lead.rules[0].field: field 'Ratng' does not exist on Lead" in result.stderr
    assert "Rating equals 'Hot'" in run("show", "acme").stdout


def test_apply_explains_when_salesforce_cannot_be_reached(sqlite_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run("apply", write(sqlite_home))
    connect()

    def unreachable(database: Database, cipher: Any, name: str) -> Callable[[str], ObjectDescribe]:
        raise ConnectionError("connection refused")

    monkeypatch.setattr(salesforce_session, "describe_provider", unreachable)
    result = run("apply", write(sqlite_home))
    assert result.exit_code == 2
    assert "cannot check the file against Salesforce" in result.stderr and "connection refused" in result.stderr


def test_apply_explains_when_describe_fails_midway(sqlite_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run("apply", write(sqlite_home))
    connect()

    def flaky(database: Database, cipher: Any, name: str) -> Callable[[str], ObjectDescribe]:
        def lookup(object_name: str) -> ObjectDescribe:
            raise TimeoutError("read timed out")

        return lookup

    monkeypatch.setattr(salesforce_session, "describe_provider", flaky)
    result = run("apply", write(sqlite_home, FILE.replace("value: Hot", "value: Warm")))
    assert result.exit_code == 2
    assert "cannot read the fields of Lead from Salesforce (read timed out); nothing was saved" in result.stderr


# --- frequency, pause, resume -----------------------------------------------------------------------


def test_frequency_changes_only_the_frequency(home: Path) -> None:
    run("apply", write(home))
    before = integration_state()
    result = run("frequency", "acme", "15")
    assert result.exit_code == 0 and "every 15 minutes" in result.stdout
    assert integration_state() == {**before, "frequency_minutes": 15}


@pytest.mark.parametrize(
    ("minutes", "reason"),
    [
        ("4", "between 5 and 10080 minutes, got 4"),
        ("7.5", "whole number of minutes, got '7.5'"),
        ("soon", "whole number of minutes, got 'soon'"),
        ("0", "got 0"),
    ],
)
def test_frequency_must_be_whole_minutes_of_at_least_five(sqlite_home: Path, minutes: str, reason: str) -> None:
    run("apply", write(sqlite_home))
    result = run("frequency", "acme", minutes)
    assert result.exit_code == 2 and "Error: frequency: must be" in result.stderr and reason in result.stderr
    assert integration_state()["frequency_minutes"] == 60


def test_commands_on_an_unknown_integration_name_it(sqlite_home: Path) -> None:
    for args in (("frequency", "ghost", "10"), ("pause", "ghost"), ("resume", "ghost"), ("show", "ghost")):
        result = run(*args)
        assert result.exit_code == 2 and "no integration named 'ghost'" in result.stderr


def test_pause_then_resume_returns_a_complete_integration_to_active_without_an_immediate_sync(
    home: Path, org_describe: list[str]
) -> None:
    run("apply", write(home))
    connect()
    requested = integration_state()["sync_requested_at"]
    with_database(lambda s: setattr(get_integration(s, "acme"), "sync_requested_at", None))
    paused = run("pause", "acme")
    assert paused.exit_code == 0 and "Inactive" in paused.stdout
    assert integration_state()["status"] == "inactive"
    assert "already paused" in run("pause", "acme").stdout
    resumed = run("resume", "acme")
    assert resumed.exit_code == 0 and "Active" in resumed.stdout
    state = integration_state()
    assert state["status"] == "active" and state["sync_requested_at"] is None and requested is not None


def test_resume_returns_an_unfinished_integration_to_incomplete(sqlite_home: Path) -> None:
    run("apply", write(sqlite_home))
    run("pause", "acme")
    result = run("resume", "acme")
    assert result.exit_code == 0 and "Finish its setup" in result.stdout
    assert integration_state()["status"] == "incomplete"


def test_resume_of_an_integration_that_is_not_paused_changes_nothing(sqlite_home: Path) -> None:
    run("apply", write(sqlite_home))
    result = run("resume", "acme")
    assert result.exit_code == 0 and "is not paused" in result.stdout
    assert integration_state()["status"] == IntegrationStatus.INCOMPLETE.value


def test_resume_clears_the_failure_backoff(sqlite_home: Path) -> None:
    run("apply", write(sqlite_home))

    def failing(session: Any) -> None:
        integration = get_integration(session, "acme")
        integration.status, integration.consecutive_failures = "inactive", 5

    with_database(failing)
    run("resume", "acme")
    assert with_database(lambda s: get_integration(s, "acme").consecutive_failures) == 0


# --- show and list -----------------------------------------------------------------------------------


def test_show_lists_objects_rules_mappings_and_status_but_never_secrets(home: Path, org_describe: list[str]) -> None:
    run("apply", write(home))
    connect()
    result = run("show", "acme")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for expected in (
        "acme",
        "Active",
        "https://login.salesforce.com",
        "every 60 minutes",
        "Lead",
        "Contact",
        "Rating equals 'Hot'",
        "Email is_set",
        "all (AND)",
        "(every record)",
        "HasOptedOutOfEmail",
        "unsubscribed (data)",
        "boolean",
        "email (top-level)",
        "CampaignMember",
        "connected to org 00D000000000001EAA",
    ):
        assert expected in out, expected
    for secret in (*SECRETS, "3MVG9-id"):
        assert secret not in out


def test_list_shows_every_integration(sqlite_home: Path) -> None:
    assert "No integrations yet" in run("list").stdout
    run("apply", write(sqlite_home))
    run("apply", write(sqlite_home, FILE.replace("name: acme", "name: beta")))
    run("pause", "beta")
    out = run("list").stdout
    assert "acme" in out and "beta" in out and "Incomplete" in out and "Inactive" in out
    assert out.index("acme") < out.index("beta")
