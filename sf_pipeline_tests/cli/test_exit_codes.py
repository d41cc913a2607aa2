"""Every command's exit code through the installed executable: 0 on success, 1 when the operation
ran and failed, 2 for a usage or validation error; never a traceback. Commands that need a
sandbox org (sync, health, connect, preview, disconnect, delete) are also covered, with an org, by
``test_fresh_environment`` and ``test_integration_lifecycle``."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from sf_pipeline_tests.cli.executable import fresh_env, one_line, run

FILE = """\
name: acme
project_id: 42
login_url: https://login.salesforce.com
frequency_minutes: 30
objects:
  Lead:
    rules:
      - {field: Rating, operator: equals, value: Hot}
mappings:
  - {field: Email, property: email}
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return fresh_env(tmp_path / "user", SF_PIPELINE_HOME=str(tmp_path / "home"))


def test_commands_exit_0_on_success(env: dict[str, str], tmp_path: Path) -> None:
    spec = tmp_path / "acme.yaml"
    spec.write_text(FILE)
    for args in (
        ["--help"], ["integration", "--help"], ["sandbox", "serve", "--help"], ["demo", "--help"],
        ["env"], ["env", "--json"], ["status"], ["integration", "list"],
        ["integration", "apply", str(spec)], ["integration", "show", "acme"], ["integration", "list", "--json"],
        ["integration", "frequency", "acme", "15"], ["integration", "pause", "acme"],
        ["integration", "resume", "acme"], ["status", "--json"], ["logs", "acme"], ["logs", "acme", "--json"],
        ["integration", "disconnect", "acme"],  # not connected: nothing to revoke, still a success
    ):
        result = run(*args, env=env)
        assert result.exit_code == 0, result


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "Usage"),
        (["frobnicate"], "No such command"),
        (["status", "--bogus"], "No such option"),
        (["logs", "nobody"], "nobody"),
        (["logs", "acme", "--type", "sync_exploded"], "unknown event type 'sync_exploded'"),
        (["logs", "acme", "--since", "last tuesday"], "is not a date"),
        (["logs", "acme", "--limit", "0"], "--limit"),
        (["sync", "nobody"], "nobody"),
        (["sync", "acme", "--wait-timeout", "-1"], "--wait-timeout"),
        (["sync", "acme", "--wait-timeout", "nan"], "--wait-timeout"),
        (["health", "nobody"], "nobody"),
        (["integration", "show", "nobody"], "nobody"),
        (["integration", "apply", "missing.yaml"], "missing.yaml"),
        (["integration", "frequency", "acme", "3"], "frequency"),
        (["integration", "pause", "nobody"], "nobody"),
        (["integration", "resume", "nobody"], "nobody"),
        (["integration", "preview", "nobody"], "nobody"),
        (["integration", "disconnect", "nobody"], "nobody"),
        (["integration", "delete", "nobody", "--yes"], "nobody"),
        (["integration", "connect", "acme", "--project-id", "42"], "--login-url"),
        (["integration", "connect", "acme", "--project-id", "42", "--login-url", "https://login.salesforce.com",
          "--client-id", "x", "--refresh-token-file", "no-such-file"], "no-such-file"),
        (["integration", "connect", "acme", "--project-id", "42", "--env", "production", "--client-id", "x",
          "--client-secret", "s3cr3t-value", "--timeout", "-5"], "--timeout"),
        (["integration", "reconnect", "nobody", "--client-id", "x"], "nobody"),
        (["sandbox", "nonsense"], "No such command"),
        (["demo", "--port", "0"], "--port"),
    ],
)
def test_bad_input_exits_2_with_the_reason(env: dict[str, str], args: list[str], says: str) -> None:
    result = run(*args, env=env)
    assert result.exit_code == 2, result
    assert says in result.stderr + result.stdout


def test_a_login_host_that_does_not_answer_fails_before_the_browser_with_exit_1(env: dict[str, str]) -> None:
    # Port 1 on loopback is closed: the check fails at once instead of waiting --timeout for a redirect.
    result = run("integration", "connect", "acme", "--project-id", "42",
                 "--login-url", "https://127.0.0.1:1", "--client-id", "x", "--timeout", "300",
                 env={**env, "SF_PIPELINE_CLIENT_SECRET": "s3cr3t-value"}, timeout=120)
    assert result.exit_code == 1, result
    assert "127.0.0.1:1 refused the connection" in result.stderr
    assert run("integration", "list", "--json", env=env).json() == []  # nothing stored


def test_database_problems_are_one_line_errors(env: dict[str, str], tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent" / "dir"
    no_folder = run("status", env={**env, "SF_PIPELINE_DATABASE_URL": f"sqlite:///{missing}/x.db"})
    assert no_folder.exit_code == 2
    assert f"the folder {missing} of the SQLite database does not exist" in one_line(no_folder.stderr)
    assert not missing.exists()

    unreachable = run("integration", "list", env={
        **env, "SF_PIPELINE_DATABASE_URL": "postgresql+psycopg2://postgres:hunter2-password@127.0.0.1:1/sfp"})
    assert unreachable.exit_code == 1
    line = one_line(unreachable.stderr)
    assert "cannot reach the database postgresql+psycopg2://postgres:***@127.0.0.1:1/sfp" in line
    assert "hunter2" not in line
    shown = run("env", "--json", env={
        **env, "SF_PIPELINE_DATABASE_URL": "postgresql+psycopg2://postgres:hunter2-password@127.0.0.1:1/sfp"}).json()
    assert shown["database_url"] == "postgresql+psycopg2://postgres:***@127.0.0.1:1/sfp"
    assert shown["database_source"] == "$SF_PIPELINE_DATABASE_URL"

    driverless = run("status", env={**env, "SF_PIPELINE_DATABASE_URL": "postgresql://x@127.0.0.1/y"})
    assert driverless.exit_code == 2 and "psycopg2" in one_line(driverless.stderr)


def test_the_home_is_private_and_the_database_file_owner_only(env: dict[str, str], tmp_path: Path) -> None:
    assert run("status", env=env).exit_code == 0
    home = tmp_path / "home"
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for database_file in home.glob("sf_pipeline.db*"):
        assert stat.S_IMODE(database_file.stat().st_mode) == 0o600, database_file


def test_verbose_shows_the_traceback_that_is_otherwise_hidden(env: dict[str, str], tmp_path: Path) -> None:
    url = "postgresql+psycopg2://postgres@127.0.0.1:1/sfp"
    quiet = run("status", env={**env, "SF_PIPELINE_DATABASE_URL": url})
    loud = run("--verbose", "status", env={**env, "SF_PIPELINE_DATABASE_URL": url})
    assert quiet.exit_code == loud.exit_code == 1
    assert "Traceback" in loud.stderr
