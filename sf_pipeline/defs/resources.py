"""The one resource the assets, checks and sensors use: sf_pipeline's services for this process."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import lru_cache

import dagster as dg

from sf_pipeline.salesforce.client import SalesforceClient
from sf_pipeline.salesforce.session import open_client
from sf_pipeline.secrets import KEY_ENV, load_cipher
from sf_pipeline.settings import Settings, load_settings
from sf_pipeline.storage.database import Database
from sf_pipeline.sync.service import Services


@lru_cache(maxsize=8)
def _services(settings: Settings, secret_key: str | None, now: str | None) -> Services:
    """One database engine per process and configuration (the cache key is the resolved settings,
    so a changed environment never reuses another configuration's database)."""
    database = Database.from_settings(settings)
    cipher = load_cipher(settings, {KEY_ENV: secret_key} if secret_key else {})

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


class SfPipelineResource(dg.ConfigurableResource):  # type: ignore[misc,type-arg]
    """Settings come from the environment (see ``sf_pipeline.settings``); the fields override them.

    ``now`` pins the clock to an ISO-8601 time: how tests exercise time-dependent behaviour (the
    dispatcher's due times) without sleeping. It is resource configuration only, never read from
    the environment, so no stray variable can freeze a deployment's clock."""

    database_url: str | None = None
    home: str | None = None
    now: str | None = None

    def services(self) -> Services:
        env = dict(os.environ)
        if self.home:
            env["SF_PIPELINE_HOME"] = self.home
        if self.database_url:
            env["SF_PIPELINE_DATABASE_URL"] = self.database_url
        return _services(load_settings(env), env.get(KEY_ENV) or None, self.now)
