"""A whole pipeline in a test: a sandbox org, a real database, a connected and configured
integration, and the sync's services, with no Dagster (the Dagster tests add it on top)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from sf_pipeline.connect import connect
from sf_pipeline.integration_spec import apply_spec, parse_spec
from sf_pipeline.salesforce.oauth import ClientCredentials, RefreshTokenImport
from sf_pipeline.salesforce.session import describe_provider, open_client
from sf_pipeline.sandbox.testing import SandboxHandle
from sf_pipeline.secrets import Cipher
from sf_pipeline.settings import load_settings
from sf_pipeline.storage.database import Database
from sf_pipeline.storage.models import User
from sf_pipeline.sync.service import Services, run_sync

TEST_KEY = "x1hqBG2mPmNn1zxuHzW5rkGt3pZ5nyhoa8bvk5Oqa0A="

DEFAULT_SPEC = """
name: {name}
project_id: 42
login_url: {login_url}
frequency_minutes: 60
objects:
  Lead:
    match: all
    rules:
      - {{field: Email, operator: is_set}}
      - {{field: Status, operator: not_equals, value: Closed - Not Converted}}
  Contact: {{}}
mappings:
  - {{field: Email, property: email}}
  - {{field: FirstName, property: first_name}}
  - {{field: LastName, property: last_name}}
  - {{field: Phone, property: phone}}
  - {{field: Industry, property: industry}}
  - {{field: HasOptedOutOfEmail, property: unsubscribed}}
"""


@dataclass
class Pipeline:
    sandbox: SandboxHandle
    services: Services
    name: str

    @property
    def database(self) -> Database:
        return self.services.database

    def sync(self, *, full: bool = False) -> dict[str, Any]:
        return run_sync(self.services, self.name, f"test-{uuid.uuid4().hex}", full=full).as_dict()

    def users(self) -> dict[str, dict[str, Any]]:
        """Every user row by external ID, as plain values."""
        with self.database.session() as session:
            rows = session.scalars(select(User))
            return {
                u.external_id: {
                    "email": u.email, "phone": u.phone, "data": dict(u.data), "deleted": u.deleted,
                    "updated_at": u.updated_at, "created_at": u.created_at, "source_id": u.source_id,
                    "source_object": u.source_object, "source_modified_at": u.source_modified_at,
                }
                for u in rows
            }


def apply(database: Database, cipher: Cipher, spec_text: str, name: str) -> None:
    with database.session() as session:
        apply_spec(session, parse_spec(spec_text), describe=describe_provider(database, cipher, name),
                   now=datetime.now(UTC))


@contextmanager
def pipeline(
    sandbox: SandboxHandle,
    database_url: str,
    home: Path,
    *,
    name: str = "acme",
    spec: str = DEFAULT_SPEC,
    clock: Callable[[], datetime] | None = None,
    page_size: int = 2000,
) -> Iterator[Pipeline]:
    """Connect ``name`` to the sandbox (importing a refresh token, as servers do) and apply ``spec``."""
    settings = load_settings({"SF_PIPELINE_HOME": str(home), "SF_PIPELINE_DATABASE_URL": database_url})
    database = Database.from_settings(settings)
    cipher = Cipher(TEST_KEY, source="the test key")
    try:
        authorizer = RefreshTokenImport(
            login_url=sandbox.login_url,
            client=ClientCredentials(sandbox.client_id, sandbox.client_secret),
            refresh_token=sandbox.issue_refresh_token(),
        )
        connect(database, cipher, name, authorizer, project_id=42)
        apply(database, cipher, spec.format(name=name, login_url=sandbox.login_url), name)
        services = Services(
            settings=settings,
            database=database,
            cipher=cipher,
            open_client=lambda n: open_client(database, cipher, n),
            page_size=page_size,
        )
        if clock is not None:
            services.clock = clock
        yield Pipeline(sandbox=sandbox, services=services, name=name)
    finally:
        database.dispose()


def dagster_resource(p: Pipeline, *, now: datetime | None = None) -> Any:
    """The Dagster resource pointing at this pipeline's database and home (the secret key comes
    from ``SF_PIPELINE_SECRET_KEY``, which the ``dagster_env`` fixture sets)."""
    from sf_pipeline.defs.resources import SfPipelineResource

    return SfPipelineResource(
        database_url=p.database.url.render_as_string(hide_password=False),
        home=str(p.services.settings.home),
        now=now.isoformat() if now else None,
    )


def cli(p: Pipeline, *args: str, env: dict[str, str] | None = None) -> Any:
    """Run ``sf-pipeline ARGS`` in process against this pipeline's home and database."""
    from typer.testing import CliRunner

    from sf_pipeline.cli.main import app

    env = {
        "SF_PIPELINE_HOME": str(p.services.settings.home),
        "SF_PIPELINE_DATABASE_URL": p.database.url.render_as_string(hide_password=False),
        "SF_PIPELINE_SECRET_KEY": TEST_KEY,
        "DAGSTER_HOME": str(p.services.settings.home / "dagster"),
        "COLUMNS": "200",
        **(env or {}),
    }
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=True)
