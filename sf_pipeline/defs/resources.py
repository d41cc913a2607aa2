"""The one resource the assets, checks and sensors use: sf_pipeline's services for this process."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

import dagster as dg

from sf_pipeline.salesforce.client import SalesforceClient
from sf_pipeline.salesforce.session import open_client
from sf_pipeline.secrets import load_cipher
from sf_pipeline.settings import load_settings
from sf_pipeline.storage.database import Database
from sf_pipeline.sync.service import Services


@lru_cache(maxsize=8)
def _services(database_url: str | None, home: str | None, now: str | None) -> Services:
    env = {}
    if home:
        env["SF_PIPELINE_HOME"] = home
    if database_url:
        env["SF_PIPELINE_DATABASE_URL"] = database_url
    import os

    settings = load_settings({**os.environ, **env})
    database = Database.from_settings(settings)
    cipher = load_cipher(settings)

    def client_for(name: str) -> SalesforceClient:
        return open_client(database, cipher, name)

    fixed = datetime.fromisoformat(now).astimezone(UTC) if now else None
    return Services(
        settings=settings,
        database=database,
        cipher=cipher,
        open_client=client_for,
        clock=(lambda: fixed) if fixed else (lambda: datetime.now(UTC)),
    )


class SfPipelineResource(dg.ConfigurableResource):  # type: ignore[misc]
    """Settings come from the environment (see ``sf_pipeline.settings``); the fields override them.

    ``now`` pins the clock (ISO-8601), for tests of time-dependent behaviour such as staleness."""

    database_url: str | None = None
    home: str | None = None
    now: str | None = None

    def services(self) -> Services:
        return _services(self.database_url, self.home, self.now)
