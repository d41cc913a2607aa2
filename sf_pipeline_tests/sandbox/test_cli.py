"""``sandbox serve`` as a separate process: one JSON line once ready, then serving until signalled."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from typer.testing import CliRunner

from sf_pipeline.cli.sandbox import app

KEYS = {
    "login_url",
    "instance_url",
    "ca_bundle",
    "client_id",
    "client_secret",
    "username",
    "password",
    "latency_profile",
}


@contextmanager
def serving(*args: str) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sf_pipeline.cli.sandbox", "serve", "--json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        yield proc, json.loads(line)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def _password_token(info: dict[str, Any]) -> requests.Response:
    return requests.post(
        info["login_url"] + "/services/oauth2/token",
        timeout=10,
        verify=info["ca_bundle"] or True,
        data={
            "grant_type": "password",
            "client_id": info["client_id"],
            "client_secret": info["client_secret"],
            "username": info["username"],
            "password": info["password"],
        },
    )


def test_serve_json_prints_one_line_then_serves_until_sigterm(tmp_path: Path) -> None:
    with serving("--records", "25", "--seed", "2", "--state", str(tmp_path)) as (proc, info):
        assert set(info) == KEYS
        assert info["login_url"] == info["instance_url"]
        assert info["login_url"].startswith("https://127.0.0.1:")
        assert info["ca_bundle"] == str(tmp_path / "bundle.pem")
        assert "BEGIN CERTIFICATE" in Path(info["ca_bundle"]).read_text()
        token = _password_token(info).json()["access_token"]
        count = requests.get(
            info["instance_url"] + "/services/data/v59.0/query",
            timeout=10,
            params={"q": "SELECT COUNT() FROM Lead"},
            verify=info["ca_bundle"],
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        assert count["totalSize"] == 25
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert proc.stdout is not None and proc.stdout.read() == ""


def test_state_dir_keeps_credentials_across_restarts(tmp_path: Path) -> None:
    with serving("--state", str(tmp_path)) as (proc, first):
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
    with serving("--state", str(tmp_path)) as (_, second):
        assert {k: second[k] for k in ("client_id", "client_secret", "username", "password")} == {
            k: first[k] for k in ("client_id", "client_secret", "username", "password")
        }
        assert _password_token(second).status_code == 200


def test_insecure_http_serves_plain_http_without_a_bundle() -> None:
    with serving("--insecure-http") as (_, info):
        assert info["login_url"].startswith("http://127.0.0.1:")
        assert info["ca_bundle"] is None
        assert _password_token(info).status_code == 200


def test_sf_pipeline_sandbox_serve_through_the_main_cli() -> None:
    command = [sys.executable, "-m", "sf_pipeline.cli.main", "sandbox", "serve", "--json", "--records", "3"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert set(info) == KEYS
        assert _password_token(info).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def test_serve_is_a_subcommand_of_the_sandbox_app() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--port", "--records", "--seed", "--state", "--insecure-http", "--json"):
        assert option in result.output


def _installed_cli() -> str:
    """The ``sf-pipeline`` console script installed next to this interpreter."""
    return str(Path(sys.executable).parent / "sf-pipeline")


def test_serve_with_the_salesforce_latency_profile_reports_it() -> None:
    command = [_installed_cli(), "sandbox", "serve", "--json", "--latency-profile", "salesforce"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert info["latency_profile"] == "salesforce"
        token = _password_token(info).json()["access_token"]
        started = time.perf_counter()
        answer = requests.get(
            info["instance_url"] + "/services/data/v59.0/query",
            timeout=10,
            params={"q": "SELECT Id FROM Lead"},
            verify=info["ca_bundle"],
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 200
        assert time.perf_counter() - started >= 0.15  # the profile's fixed time per REST page
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def test_unknown_latency_profile_exits_2_naming_it() -> None:
    result = subprocess.run(
        [_installed_cli(), "sandbox", "serve", "--latency-profile", "warp"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "warp" in result.stderr and "salesforce" in result.stderr
    assert "Traceback" not in result.stderr
