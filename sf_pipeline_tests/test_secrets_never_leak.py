"""After a full sync (and a failing one) with known token values, no token or client secret is in
the database (raw file bytes on SQLite, every row as text on both), log events, Dagster's event
log, run tags, materialization or check metadata, CLI output or exception messages."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import inspect, text

from sf_pipeline.sandbox.testing import SandboxHandle
from sf_pipeline.storage.integrations import load_credentials
from sf_pipeline_tests.harness import Pipeline, cli, pipeline

pytestmark = pytest.mark.usefixtures("dagster_env")


def every_row_as_text(p: Pipeline) -> str:
    chunks = []
    with p.database.engine.connect() as connection:
        for table in inspect(connection).get_table_names():
            for row in connection.execute(text(f'SELECT * FROM "{table}"')):
                chunks.append(repr(tuple(row)))
    return "\n".join(chunks)


def raw_database_bytes(p: Pipeline) -> bytes:
    if p.database.dialect != "sqlite":
        return b""
    path = Path(str(p.database.url.database))
    return b"".join(f.read_bytes() for f in path.parent.glob(path.name + "*"))  # the db, -wal and -shm


def dagster_text(p: Pipeline) -> str:
    instance = dg.DagsterInstance.from_config(str(p.services.settings.home / "dagster"))
    try:
        chunks = []
        for record in instance.get_run_records():
            run = record.dagster_run
            chunks.append(repr(run.tags))
            chunks.extend(repr(entry) for entry in instance.all_logs(run.run_id))
        return "\n".join(chunks)
    finally:
        instance.dispose()


def test_no_token_or_client_secret_reaches_any_log_or_store(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path
) -> None:
    with pipeline(small_sandbox, database_url, tmp_path) as p:
        outputs = [cli(p, "sync", "acme", "--json"), cli(p, "sync", "acme")]
        assert outputs[0].exit_code == 0, outputs[0].stdout
        with p.database.session() as session:
            creds = load_credentials(session, "acme", p.services.cipher)
        secrets = {"refresh token": creds.refresh_token, "client secret": creds.client_secret}
        assert creds.access_token
        secrets["access token"] = creds.access_token
        # A failing run too: its error message and logs must not carry the secrets either.
        small_sandbox.org.revoke_all_tokens()
        failed = cli(p, "sync", "acme", "--json")
        assert failed.exit_code == 1 and '"status": "failed"' in failed.stdout
        outputs += [failed, cli(p, "status", "--json"), cli(p, "logs", "acme", "--json"),
                    cli(p, "health", "acme", "--json"), cli(p, "integration", "show", "acme")]
        places = {
            "database rows": every_row_as_text(p),
            "Dagster event log and run tags": dagster_text(p),
            "CLI output": "\n".join(o.stdout + (o.stderr or "") + repr(o.exception) for o in outputs),
        }
        raw = raw_database_bytes(p)
        for label, secret in secrets.items():
            assert len(secret) >= 16
            for place, content in places.items():
                assert secret not in content, f"the {label} leaked into {place}"
            assert secret.encode() not in raw, f"the {label} is in the database file in plaintext"
