"""``integration list/show/disconnect/delete`` through the installed executable, on SQLite and
PostgreSQL: no secret in any output, a disconnect keeps rules and mappings, a delete keeps the
synced users unless told otherwise, and after either the org refuses the revoked refresh token."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from sf_pipeline.salesforce.errors import CredentialsRevokedError
from sf_pipeline.salesforce.oauth import ClientCredentials, refresh_grant
from sf_pipeline.sandbox.testing import SandboxHandle
from sf_pipeline.storage.integrations import load_credentials
from sf_pipeline.storage.models import User
from sf_pipeline_tests.cli.executable import executable_env, one_line, run
from sf_pipeline_tests.harness import Pipeline, pipeline


def refused(p: Pipeline, refresh_token: str) -> bool:
    try:
        refresh_grant(p.sandbox.login_url, ClientCredentials(p.sandbox.client_id, p.sandbox.client_secret),
                      refresh_token, session=p.sandbox.session())
    except CredentialsRevokedError:
        return True
    return False


def users_of(p: Pipeline, name: str | None) -> int:
    with p.database.session() as session:
        query = select(func.count()).select_from(User)
        if name is None:
            query = query.where(User.integration_id.is_(None))
        else:
            query = query.where(User.external_id.like(f"sf\\_{name}\\_%", escape="\\"))
        return int(session.scalar(query) or 0)


def refresh_token_of(p: Pipeline, name: str) -> str:
    with p.database.session() as session:
        return load_credentials(session, name, p.services.cipher).refresh_token


def test_list_show_disconnect_and_delete_revoke_at_salesforce_and_keep_what_they_promise(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path
) -> None:
    with pipeline(small_sandbox, database_url, tmp_path) as p:
        p.sync()
        synced = users_of(p, "acme")
        assert synced > 0
        env = executable_env(p, tmp_path)
        secrets = (small_sandbox.client_secret, refresh_token_of(p, "acme"))

        listed = run("integration", "list", "--json", env=env)
        assert listed.exit_code == 0, listed
        [acme] = listed.json()
        assert acme["name"] == "acme" and acme["connected"] is True and acme["status"] == "active"
        assert set(acme["objects"]) == {"Lead", "Contact"}
        assert {"field": "Email", "operator": "is_set"}.items() <= acme["objects"]["Lead"]["rules"][0].items()
        assert {m["property"] for m in acme["mappings"]} >= {"email", "first_name", "industry"}
        shown = run("integration", "show", "acme", "--json", env=env)
        assert shown.exit_code == 0 and shown.json() == acme
        table = run("integration", "show", "acme", env=env)
        assert table.exit_code == 0 and "Lead" in table.stdout
        for result in (listed, shown, table, run("integration", "list", env=env)):
            assert not any(secret in result.stdout + result.stderr for secret in secrets)
        missing = run("integration", "show", "nobody", env=env)
        assert missing.exit_code == 2 and "nobody" in one_line(missing.stderr)

        # disconnect: revoked at Salesforce, credentials forgotten, configuration kept
        old_token = refresh_token_of(p, "acme")
        disconnected = run("integration", "disconnect", "acme", env=env)
        assert disconnected.exit_code == 0, disconnected
        assert "revoked" in disconnected.stdout
        assert refused(p, old_token)
        after = run("integration", "show", "acme", "--json", env=env).json()
        assert after["connected"] is False and after["status"] == "incomplete"
        assert after["objects"] == acme["objects"] and after["mappings"] == acme["mappings"]
        sync_now = run("sync", "acme", env=env)
        assert sync_now.exit_code == 2 and "Incomplete" in one_line(sync_now.stderr)

        # connect again, secrets from the environment (not the command line)
        reconnected = run("integration", "connect", "acme", "--login-url", small_sandbox.login_url,
                          env={**env, "SF_PIPELINE_CLIENT_ID": small_sandbox.client_id,
                               "SF_PIPELINE_CLIENT_SECRET": small_sandbox.client_secret,
                               "SF_PIPELINE_REFRESH_TOKEN": small_sandbox.issue_refresh_token()})
        assert reconnected.exit_code == 0, reconnected
        assert run("integration", "show", "acme", "--json", env=env).json()["status"] == "active"

        # delete: confirmation needed; then revoked, removed, users kept by default
        unconfirmed = run("integration", "delete", "acme", env=env)
        assert unconfirmed.exit_code == 2 and "--yes" in unconfirmed.stderr
        assert len(run("integration", "list", "--json", env=env).json()) == 1
        token = refresh_token_of(p, "acme")
        deleted = run("integration", "delete", "acme", "--yes", env=env)
        assert deleted.exit_code == 0, deleted
        assert f"{synced} synced users are kept" in " ".join(deleted.stdout.split())
        assert refused(p, token)
        assert run("integration", "list", "--json", env=env).json() == []
        assert users_of(p, None) == synced  # kept, no longer linked to an integration
        assert run("integration", "delete", "acme", "--yes", env=env).exit_code == 2

        # --delete-users removes them too
        beta = tmp_path / "beta.yaml"
        beta.write_text(f"name: beta\nproject_id: 43\nlogin_url: {small_sandbox.login_url}\n"
                        "objects:\n  Contact: {}\nmappings:\n  - {field: Email, property: email}\n")
        assert run("integration", "connect", "beta", "--project-id", "43", "--login-url", small_sandbox.login_url,
                   env={**env, "SF_PIPELINE_CLIENT_ID": small_sandbox.client_id,
                        "SF_PIPELINE_CLIENT_SECRET": small_sandbox.client_secret,
                        "SF_PIPELINE_REFRESH_TOKEN": small_sandbox.issue_refresh_token()}).exit_code == 0
        assert run("integration", "apply", str(beta), env=env).exit_code == 0
        from sf_pipeline.sync.service import run_sync

        run_sync(p.services, "beta", "test-beta-run")
        assert users_of(p, "beta") > 0
        gone = run("integration", "delete", "beta", "--yes", "--delete-users", env=env)
        assert gone.exit_code == 0 and "deleted" in gone.stdout
        assert users_of(p, "beta") == 0
