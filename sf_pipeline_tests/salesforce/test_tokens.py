"""``StoredTokenSource`` over the database's credentials: tokens of a stored integration, refreshed
against the sandbox and written back with compare-and-swap, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import requests

from sf_pipeline.connect import connect
from sf_pipeline.errors import NotFoundError
from sf_pipeline.salesforce.client import SalesforceClient
from sf_pipeline.salesforce.errors import CredentialsRevokedError
from sf_pipeline.salesforce.oauth import ClientCredentials, RefreshTokenImport
from sf_pipeline.salesforce.session import database_token_source, describe_provider, open_client
from sf_pipeline.salesforce.tokens import AccessGrant, StaticRefreshTokenSource, StoredTokenSource
from sf_pipeline.sandbox.testing import SandboxHandle
from sf_pipeline.secrets import Cipher
from sf_pipeline.storage.database import Database
from sf_pipeline.storage.integrations import StoredCredentials, create_integration, load_credentials
from sf_pipeline_tests.salesforce.conftest import LEADS, FakeSleep

NAME = "acme"


def _connect(database: Database, cipher: Cipher, sandbox: SandboxHandle, name: str = NAME) -> None:
    authorizer = RefreshTokenImport(
        sandbox.login_url,
        ClientCredentials(sandbox.client_id, sandbox.client_secret),
        sandbox.issue_refresh_token(),
    )
    connect(database, cipher, name, authorizer, project_id=42)


def _stored(database: Database, cipher: Cipher, name: str = NAME) -> StoredCredentials:
    with database.session() as session:
        return load_credentials(session, name, cipher)


def _works(sandbox: SandboxHandle, grant: AccessGrant) -> bool:
    response = requests.get(
        f"{grant.instance_url}/services/data/v59.0/limits",
        headers={"Authorization": f"Bearer {grant.access_token}"},
        timeout=10,
    )
    return response.status_code == 200


def _token_requests(sandbox: SandboxHandle) -> int:
    return sandbox.org.counters.snapshot()["token"]


def _raw_database_bytes(database: Database) -> bytes:
    path = Path(str(database.url.database))
    return b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())


@pytest.fixture
def connected(database: Database, cipher: Cipher, sandbox: SandboxHandle) -> Database:
    _connect(database, cipher, sandbox)
    return database


def test_stored_access_token_is_used_without_refreshing(
    connected: Database, cipher: Cipher, sandbox: SandboxHandle
) -> None:
    before = _token_requests(sandbox)
    with open_client(connected, cipher, NAME) as client:
        assert client.count("SELECT COUNT() FROM Lead") == LEADS
        assert client.token_refreshes == 0
    assert _token_requests(sandbox) == before


def test_refreshed_access_token_is_stored_encrypted(
    connected: Database, cipher: Cipher, sandbox: SandboxHandle
) -> None:
    old = _stored(connected, cipher)
    sandbox.org.expire_sessions()
    with open_client(connected, cipher, NAME) as client:
        assert client.count("SELECT COUNT() FROM Lead") == LEADS
        assert client.token_refreshes == 1
    new = _stored(connected, cipher)

    assert new.access_token and new.access_token != old.access_token
    assert new.refresh_token == old.refresh_token  # no rotation: the refresh token stays
    assert new.version == old.version + 1
    if connected.dialect == "sqlite":
        raw = _raw_database_bytes(connected)
        assert new.access_token.encode() not in raw
        assert new.refresh_token.encode() not in raw


def test_rotated_refresh_token_is_persisted(connected: Database, cipher: Cipher, sandbox: SandboxHandle) -> None:
    sandbox.org.set_options(refresh_token_rotation=True)
    old = _stored(connected, cipher)
    sandbox.org.expire_sessions()
    with open_client(connected, cipher, NAME) as client:
        assert client.count("SELECT COUNT() FROM Lead") == LEADS
    new = _stored(connected, cipher)

    assert new.refresh_token != old.refresh_token
    # Salesforce retired the old refresh token; the stored one is the one that works.
    with pytest.raises(CredentialsRevokedError):
        StaticRefreshTokenSource(sandbox.login_url, new.client_id, new.client_secret, old.refresh_token).current()
    assert _works(
        sandbox,
        StaticRefreshTokenSource(sandbox.login_url, new.client_id, new.client_secret, new.refresh_token).current(),
    )


def test_a_source_adopts_tokens_another_process_already_refreshed(
    connected: Database, cipher: Cipher, sandbox: SandboxHandle
) -> None:
    first, second = (database_token_source(connected, cipher, NAME) for _ in range(2))
    stale = second.current()
    sandbox.org.expire_sessions()
    fresh = first.refresh(first.current())
    before = _token_requests(sandbox)

    assert second.refresh(stale) == fresh
    assert _token_requests(sandbox) == before


@pytest.mark.parametrize("rotation", [False, True], ids=["plain", "rotating"])
def test_two_runs_refreshing_at_once_never_corrupt_the_stored_credentials(
    connected: Database, cipher: Cipher, sandbox: SandboxHandle, rotation: bool
) -> None:
    sandbox.org.set_options(refresh_token_rotation=rotation)
    for _ in range(3):
        # Two processes' sources, both holding the stored token when the session dies. Real sleep:
        # the loser's re-checks must really wait for the winner's commit, however loaded the machine.
        sources = [database_token_source(connected, cipher, NAME) for _ in range(2)]
        stale = [s.current() for s in sources]
        sandbox.org.expire_sessions()
        # Hold both token requests in flight together so the refreshes really overlap.
        sandbox.org.inject_fault("token", "latency", count=2, latency_ms=200)
        before = _token_requests(sandbox)
        results = _refresh_concurrently(sources, stale)

        assert _token_requests(sandbox) == before + 2  # both really asked Salesforce
        stored = _stored(connected, cipher)
        # The loser adopted the winner's tokens instead of overwriting them.
        assert results[0] == results[1]
        assert results[0].access_token == stored.access_token
        assert _works(sandbox, results[0])
        refreshed = StaticRefreshTokenSource(
            sandbox.login_url, stored.client_id, stored.client_secret, stored.refresh_token
        )
        assert _works(sandbox, refreshed.current())
        if rotation:
            # The check above spent the stored refresh token; store what Salesforce rotated it to.
            _connect_again(connected, cipher, sandbox, refreshed.refresh_token)


def _refresh_concurrently(sources: list[StoredTokenSource], stale: list[AccessGrant]) -> list[AccessGrant]:
    barrier = threading.Barrier(len(sources))
    results: dict[int, AccessGrant] = {}
    failures: list[BaseException] = []

    def refresh(i: int) -> None:
        barrier.wait()
        try:
            results[i] = sources[i].refresh(stale[i])
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=refresh, args=(i,)) for i in range(len(sources))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    return [results[i] for i in range(len(sources))]


def _connect_again(database: Database, cipher: Cipher, sandbox: SandboxHandle, refresh_token: str) -> None:
    from sf_pipeline.connect import reconnect

    reconnect(
        database,
        cipher,
        NAME,
        RefreshTokenImport(
            sandbox.login_url, ClientCredentials(sandbox.client_id, sandbox.client_secret), refresh_token
        ),
    )


def test_revoked_credentials_raise_credentials_revoked_naming_the_integration(
    connected: Database, cipher: Cipher, sandbox: SandboxHandle
) -> None:
    sleep = FakeSleep()
    source = database_token_source(connected, cipher, NAME, sleep=sleep)
    stale = source.current()
    sandbox.org.revoke_all_tokens()
    stored = _stored(connected, cipher)

    with pytest.raises(CredentialsRevokedError) as raised:
        source.refresh(stale)

    message = str(raised.value)
    assert "sf-pipeline integration reconnect acme" in message
    for secret in (stored.refresh_token, stored.client_secret, stale.access_token):
        assert secret not in message
    assert _stored(connected, cipher).version == stored.version  # nothing overwritten
    assert sleep.delays  # it waited for a concurrent refresher before giving up


def test_open_client_of_an_unknown_integration_raises_not_found(database: Database, cipher: Cipher) -> None:
    with pytest.raises(NotFoundError, match="no integration named 'ghost'"):
        open_client(database, cipher, "ghost")


def test_open_client_of_an_unconnected_integration_says_to_connect(database: Database, cipher: Cipher) -> None:
    with database.session() as session:
        create_integration(session, name="later", project_id=1, login_url="https://login.salesforce.com")
    with pytest.raises(NotFoundError, match="connect it first"):
        open_client(database, cipher, "later")


def test_describe_provider_describes_the_integrations_org(
    connected: Database, cipher: Cipher, sandbox: SandboxHandle
) -> None:
    describe = describe_provider(connected, cipher, NAME)
    lead = describe("Lead")
    assert lead.field("Email") is not None
    assert describe("Lead") is lead


def test_clients_from_open_client_pass_options_through(connected: Database, cipher: Cipher) -> None:
    with open_client(connected, cipher, NAME, max_attempts=2, api_version="60.0") as client:
        assert isinstance(client, SalesforceClient)
        assert (client.max_attempts, client.api_version) == (2, "60.0")
        assert client.count("SELECT COUNT() FROM Contact") == LEADS
