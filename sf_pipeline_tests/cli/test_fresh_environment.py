"""A new terminal is the same environment: with nothing exported, only ``--home`` (or the current
folder holding ``.sf_pipeline``), the CLI finds the database, Dagster's instance, the secret key and
the sandbox org's CA bundle. Then what goes wrong is reported as what it is: an untrusted
certificate or an unusable key is this machine's problem and leaves the status alone, with exit 1
and one line; a revoked token is the org's answer and turns the integration Error."""

from __future__ import annotations

import json
import shutil
from contextlib import closing
from pathlib import Path

from sf_pipeline.sandbox.control import ControlClient
from sf_pipeline_tests.cli.executable import fresh_env, one_line, run, served_sandbox
from sf_pipeline_tests.harness import DEFAULT_SPEC


def control_client(org: dict[str, str]) -> ControlClient:
    client = ControlClient(org["login_url"], secret=org["client_secret"], verify=org["ca_bundle"])
    client.session.trust_env = False  # requests lets an exported CA bundle override ``verify``
    return client


def test_sync_and_health_run_in_a_fresh_shell_and_failures_are_classified(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    home = project / ".sf_pipeline"
    env = fresh_env(tmp_path / "user")
    with served_sandbox(home, env) as org:
        secret_file = tmp_path / "client-secret"
        secret_file.write_text(org["client_secret"] + "\n")
        with closing(control_client(org)) as control:
            (tmp_path / "token").write_text(control.issue_refresh_token()["refresh_token"])
        spec = tmp_path / "acme.yaml"
        spec.write_text(DEFAULT_SPEC.format(name="acme", login_url=org["login_url"]))

        connected = run("--home", str(home), "integration", "connect", "acme", "--project-id", "42",
                        "--login-url", org["login_url"], "--client-id", org["client_id"],
                        "--client-secret-file", str(secret_file), "--refresh-token-file", str(tmp_path / "token"),
                        env=env)
        assert connected.exit_code == 0, connected
        assert run("--home", str(home), "integration", "apply", str(spec), env=env).exit_code == 0

        # --home from anywhere
        synced = run("--home", str(home), "sync", "acme", "--json", env=env, cwd=tmp_path)
        assert synced.exit_code == 0, synced
        summary = synced.json()
        assert summary["status"] == "succeeded" and summary["created"] > 0
        # Dagster found instance settings in the home (it warns on stderr when it finds none).
        assert "dagster.yaml" not in synced.stderr, synced
        assert (home / "dagster" / "dagster.yaml").is_file()
        # or nothing at all, from the project folder
        health = run("health", "acme", "--json", env=env, cwd=project)
        assert health.exit_code == 0, health
        assert [c["passed"] for c in health.json()] == [True] * 4
        found = run("env", "--json", env=env, cwd=project).json()
        assert found["home"] == str(home.resolve()) and found["home_source"] == "./.sf_pipeline"
        assert found["dagster_home"] == str(home.resolve() / "dagster")
        assert found["ca_bundle"] == org["ca_bundle"] and found["ca_bundle_source"].startswith("config")
        assert found["secret_key"] == {"source": str(home.resolve() / "secret.key"), "present": True}

        def status() -> str:
            return str(run("status", "--json", env=env, cwd=project).json()[0]["status"])

        def last_event() -> dict[str, object]:
            events = run("logs", "acme", "--json", "--type", "sync_failed", "--type", "sync_completed",
                         env=env, cwd=project).json()
            return dict(events[0])

        # An untrusted certificate: the org is fine, so the status stays; the message says trust.
        config = home / "config.json"
        saved = config.read_text()
        config.write_text(json.dumps({k: v for k, v in json.loads(saved).items() if k != "ca_bundle"}))
        untrusted = run("sync", "acme", env=env, cwd=project)
        config.write_text(saved)
        assert untrusted.exit_code == 1, untrusted
        assert "not trusted" in untrusted.stderr and "127.0.0.1" in untrusted.stderr
        assert "refused the credentials" not in untrusted.stderr + untrusted.stdout
        assert status() == "active"
        assert last_event()["type"] == "sync_failed"

        # A malformed key: one line naming the variable, exit 1, recorded as sync_failed.
        bad_key = run("sync", "acme", env={**env, "SF_PIPELINE_SECRET_KEY": "wrong"}, cwd=project)
        assert bad_key.exit_code == 1, bad_key
        assert "$SF_PIPELINE_SECRET_KEY" in one_line(bad_key.stderr)
        failed = last_event()
        assert failed["type"] == "sync_failed" and "SF_PIPELINE_SECRET_KEY" in str(failed["error"])
        assert status() == "active"

        # An empty key file is named in the error (any command that needs the key says it).
        empty = tmp_path / "empty.key"
        empty.write_text("")
        empty_key = run("integration", "preview", "acme", env={**env, "SF_PIPELINE_KEY_FILE": str(empty)},
                        cwd=project)
        assert empty_key.exit_code == 1 and str(empty) in one_line(empty_key.stderr), empty_key

        # A key file that vanished while credentials exist is not silently replaced.
        key_file = home / "secret.key"
        shutil.move(key_file, tmp_path / "key.backup")
        vanished = run("integration", "preview", "acme", env=env, cwd=project)
        assert vanished.exit_code == 1 and "is missing" in one_line(vanished.stderr), vanished
        assert not key_file.exists()
        shutil.move(tmp_path / "key.backup", key_file)

        # A revoked token is Salesforce refusing the credentials: Error.
        with closing(control_client(org)) as control:
            control.revoke_all_tokens()
        revoked = run("sync", "acme", env=env, cwd=project)
        assert revoked.exit_code == 1, revoked
        assert "reconnect" in revoked.stderr
        assert status() == "error"
        unhealthy = run("health", "acme", env=env, cwd=project)
        assert unhealthy.exit_code == 1
