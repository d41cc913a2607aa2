from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sf_pipeline.sandbox.testing import SandboxHandle, serve_in_thread
from sf_pipeline_tests.dbs import empty_database_url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty application database, on SQLite and on PostgreSQL."""
    with empty_database_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def small_sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxHandle]:
    with serve_in_thread(records=300, seed=3) as sandbox:
        trust(monkeypatch, sandbox)
        yield sandbox


def trust(monkeypatch: pytest.MonkeyPatch, sandbox: SandboxHandle) -> None:
    assert sandbox.ca_bundle
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", sandbox.ca_bundle)
    monkeypatch.setenv("SSL_CERT_FILE", sandbox.ca_bundle)


@pytest.fixture
def dagster_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dagster's resource reads the secret key from the environment, as deployments do."""
    from sf_pipeline_tests.harness import TEST_KEY

    monkeypatch.setenv("SF_PIPELINE_SECRET_KEY", TEST_KEY)


@pytest.fixture
def dagster_instance() -> Iterator[object]:
    import dagster as dg

    with dg.instance_for_test() as instance:
        yield instance
