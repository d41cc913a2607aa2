from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sf_pipeline.salesforce.client import SalesforceClient
from sf_pipeline.salesforce.tokens import StaticRefreshTokenSource
from sf_pipeline.sandbox.testing import SandboxHandle, serve_in_thread
from sf_pipeline.secrets import Cipher
from sf_pipeline.storage.database import Database
from sf_pipeline_tests.dbs import migrated_database

LEADS = 1234
TEST_KEY = "x1hqBG2mPmNn1zxuHzW5rkGt3pZ5nyhoa8bvk5Oqa0A="


class FakeSleep:
    """Records the delays a client asked for, without waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxHandle]:
    """A sandbox org over HTTPS with LEADS Leads and Contacts, its CA trusted the way a
    deployment would trust a private CA: through REQUESTS_CA_BUNDLE."""
    with serve_in_thread(records=LEADS, seed=7) as handle:
        assert handle.ca_bundle
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", handle.ca_bundle)
        yield handle


@pytest.fixture
def tokens(sandbox: SandboxHandle) -> StaticRefreshTokenSource:
    return StaticRefreshTokenSource(
        sandbox.login_url, sandbox.client_id, sandbox.client_secret, sandbox.issue_refresh_token()
    )


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def make_client(tokens: StaticRefreshTokenSource, sleep: FakeSleep) -> Iterator[Callable[..., SalesforceClient]]:
    clients: list[SalesforceClient] = []

    def make(**options: object) -> SalesforceClient:
        options.setdefault("sleep", sleep)
        client = SalesforceClient(tokens, **options)  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., SalesforceClient]) -> SalesforceClient:
    return make_client()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with migrated_database(request.param, tmp_path) as database:
        yield database


@pytest.fixture
def cipher() -> Cipher:
    return Cipher(TEST_KEY, source="the test key")
