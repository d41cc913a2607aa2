"""The integrations repository: lookups, credentials (encrypted, one org per integration, token
compare-and-swap) and the Incomplete → Active rule, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, text

from sf_pipeline.errors import ConfigError, ConflictError, NotFoundError
from sf_pipeline.mapping import MappingSpec
from sf_pipeline.secrets import Cipher, SecretKeyMismatchError
from sf_pipeline.storage import integrations
from sf_pipeline.storage.database import Database
from sf_pipeline.storage.integrations import (
    StoredCredentials,
    create_integration,
    get_integration,
    list_integrations,
    load_credentials,
    mapping_specs,
    refresh_setup_status,
    replace_mappings,
    save_credentials,
    set_default_mappings,
    update_tokens,
)
from sf_pipeline.storage.models import Credential, FieldMapping, Integration, IntegrationStatus, SyncState

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ORG = "00D000000000001EAA"


def _creds(org_id: str | None = ORG, refresh_token: str = "5Aep-refresh-1") -> StoredCredentials:
    return StoredCredentials(
        client_id="3MVG9-client",
        client_secret="client-secret-1",
        refresh_token=refresh_token,
        access_token="00D!access-1",
        instance_url="https://acme.my.salesforce.com",
        identity_url=f"https://login.salesforce.com/id/{org_id}/005000000000001AAA",
        org_id=org_id,
        user_id="005000000000001AAA",
    )


def _create(database: Database, name: str = "acme", *, complete: bool = False) -> None:
    with database.session() as session:
        integration = create_integration(session, name=name, project_id=42, login_url="https://login.salesforce.com")
        integration.objects_saved = complete
        integration.mappings_saved = complete


# --- lookups ---------------------------------------------------------------------------------------


def test_get_integration_names_the_missing_one(database: Database) -> None:
    with database.session() as session, pytest.raises(NotFoundError, match="'nope'"):
        get_integration(session, "nope")


def test_list_integrations_is_ordered_by_name(database: Database) -> None:
    for name in ("zeta", "alpha", "mid"):
        _create(database, name)
    with database.session() as session:
        assert [i.name for i in list_integrations(session)] == ["alpha", "mid", "zeta"]


def test_create_integration_starts_incomplete_with_the_default_mappings(database: Database) -> None:
    _create(database)
    with database.session() as session:
        integration = get_integration(session, "acme")
        assert integration.status == IntegrationStatus.INCOMPLETE.value
        assert integration.frequency_minutes == 60
        assert not integration.objects_saved and not integration.mappings_saved
        assert [(m.field, m.property) for m in mapping_specs(integration)] == [
            ("Email", "email"),
            ("FirstName", "first_name"),
            ("LastName", "last_name"),
            ("Phone", "phone"),
        ]


def test_create_integration_refuses_a_taken_name(database: Database) -> None:
    _create(database)
    with database.session() as session, pytest.raises(ConflictError, match="'acme' already exists"):
        create_integration(session, name="acme", project_id=1, login_url="https://login.salesforce.com")


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("name", {"name": "Acme"}),
        ("name", {"name": "1acme"}),
        ("name", {"name": "a" * 64}),
        ("login_url", {"login_url": "http://login.salesforce.com"}),
        ("login_url", {"login_url": "https://evil.example.com"}),
        ("frequency_minutes", {"frequency_minutes": 4}),
        ("project_id", {"project_id": 0}),
    ],
)
def test_create_integration_rejects_invalid_values_naming_the_key(
    sqlite_database: Database, field: str, kwargs: dict[str, object]
) -> None:
    values: dict[str, Any] = {"name": "acme", "project_id": 1, "login_url": "https://login.salesforce.com"}
    values.update(kwargs)
    with sqlite_database.session() as session, pytest.raises(ConfigError, match=f"^{field}: "):
        create_integration(session, **values)


def test_set_default_mappings_replaces_existing_mappings(database: Database) -> None:
    _create(database)
    with database.session() as session:
        integration = get_integration(session, "acme")
        replace_mappings(integration, [MappingSpec("Industry", "industry")])
    with database.session() as session:
        integration = get_integration(session, "acme")
        set_default_mappings(integration)
    with database.session() as session:
        assert [m.field for m in get_integration(session, "acme").mappings] == [
            "Email",
            "FirstName",
            "LastName",
            "Phone",
        ]
        assert session.scalar(select(FieldMapping).where(FieldMapping.field == "Industry")) is None


def test_mapping_types_and_objects_survive_storage(database: Database) -> None:
    specs = [
        MappingSpec("HasOptedOutOfEmail", "unsubscribed", type="boolean"),
        MappingSpec("Lead.Email", "email", object_name="CampaignMember"),
        MappingSpec("Industry", "industry"),
    ]
    _create(database)
    with database.session() as session:
        replace_mappings(get_integration(session, "acme"), specs)
    with database.session() as session:
        assert mapping_specs(get_integration(session, "acme")) == specs


# --- credentials -----------------------------------------------------------------------------------


def test_saved_credentials_load_back_decrypted(database: Database, cipher: Cipher) -> None:
    _create(database)
    with database.session() as session:
        save_credentials(session, get_integration(session, "acme"), _creds(), cipher, now=NOW)
    with database.session() as session:
        loaded = load_credentials(session, "acme", cipher)
    assert loaded == StoredCredentials(
        client_id="3MVG9-client",
        client_secret="client-secret-1",
        refresh_token="5Aep-refresh-1",
        access_token="00D!access-1",
        instance_url="https://acme.my.salesforce.com",
        identity_url=f"https://login.salesforce.com/id/{ORG}/005000000000001AAA",
        org_id=ORG,
        user_id="005000000000001AAA",
        login_url="https://login.salesforce.com",
        version=1,
    )
    assert "client-secret-1" not in repr(loaded) and "5Aep" not in repr(loaded)


def test_no_secret_is_stored_in_plaintext(database: Database, cipher: Cipher) -> None:
    _create(database)
    with database.session() as session:
        save_credentials(session, get_integration(session, "acme"), _creds(), cipher, now=NOW)
    with database.engine.connect() as connection:
        row = connection.execute(text("SELECT * FROM credentials")).mappings().one()
    stored = " ".join(str(v) for v in row.values())
    for secret in ("client-secret-1", "5Aep-refresh-1", "00D!access-1"):
        assert secret not in stored


def test_credentials_are_unreadable_with_another_key(database: Database, cipher: Cipher) -> None:
    _create(database)
    with database.session() as session:
        save_credentials(session, get_integration(session, "acme"), _creds(), cipher, now=NOW)
    other = Cipher(Fernet.generate_key())
    with database.session() as session, pytest.raises(SecretKeyMismatchError, match="another key"):
        load_credentials(session, "acme", other)


def test_loading_credentials_of_an_unconnected_integration_says_to_connect(database: Database, cipher: Cipher) -> None:
    _create(database)
    with database.session() as session, pytest.raises(NotFoundError, match="connect it first"):
        load_credentials(session, "acme", cipher)


def test_an_org_connected_to_one_integration_is_refused_for_another(database: Database, cipher: Cipher) -> None:
    _create(database, "first")
    _create(database, "second")
    with database.session() as session:
        save_credentials(session, get_integration(session, "first"), _creds(), cipher, now=NOW)
    with database.session() as session, pytest.raises(ConflictError, match="'first'"):
        save_credentials(session, get_integration(session, "second"), _creds(), cipher, now=NOW)
    with database.session() as session:
        assert get_integration(session, "second").credential is None


def test_reconnecting_the_same_org_replaces_credentials_and_bumps_the_version(
    database: Database, cipher: Cipher
) -> None:
    _create(database)
    with database.session() as session:
        save_credentials(session, get_integration(session, "acme"), _creds(), cipher, now=NOW)
    with database.session() as session:
        save_credentials(
            session, get_integration(session, "acme"), _creds(refresh_token="5Aep-refresh-2"), cipher, now=NOW
        )
    with database.session() as session:
        loaded = load_credentials(session, "acme", cipher)
        assert (loaded.refresh_token, loaded.version) == ("5Aep-refresh-2", 2)
        assert session.scalar(select(Integration.org_id)) == ORG


def test_reconnecting_to_a_different_org_is_refused(database: Database, cipher: Cipher) -> None:
    _create(database)
    with database.session() as session:
        save_credentials(session, get_integration(session, "acme"), _creds(), cipher, now=NOW)
    with database.session() as session, pytest.raises(ConflictError, match="connected to org"):
        save_credentials(
            session, get_integration(session, "acme"), _creds(org_id="00D000000000002EAA"), cipher, now=NOW
        )


def test_update_tokens_swaps_only_at_the_expected_version(database: Database, cipher: Cipher) -> None:
    _create(database)
    with database.session() as session:
        save_credentials(session, get_integration(session, "acme"), _creds(), cipher, now=NOW)
    with database.session() as session:
        assert update_tokens(session, "acme", cipher, access_token="access-2", expected_version=1)
    with database.session() as session:
        assert not update_tokens(session, "acme", cipher, access_token="stale", expected_version=1)
    with database.session() as session:
        loaded = load_credentials(session, "acme", cipher)
    assert (loaded.access_token, loaded.refresh_token, loaded.version) == ("access-2", "5Aep-refresh-1", 2)


def test_update_tokens_stores_a_rotated_refresh_token(database: Database, cipher: Cipher) -> None:
    _create(database)
    with database.session() as session:
        save_credentials(session, get_integration(session, "acme"), _creds(), cipher, now=NOW)
    with database.session() as session:
        update_tokens(session, "acme", cipher, access_token="a2", refresh_token="r2", expected_version=1)
    with database.session() as session:
        loaded = load_credentials(session, "acme", cipher)
    assert (loaded.access_token, loaded.refresh_token) == ("a2", "r2")


def test_update_tokens_for_unknown_or_unconnected_integrations_raises(database: Database, cipher: Cipher) -> None:
    _create(database)
    with database.session() as session, pytest.raises(NotFoundError, match="'ghost'"):
        update_tokens(session, "ghost", cipher, access_token="a", expected_version=1)
    with database.session() as session, pytest.raises(NotFoundError, match="no Salesforce credentials"):
        update_tokens(session, "acme", cipher, access_token="a", expected_version=1)


def test_concurrent_token_refreshes_store_exactly_one_winner(database: Database, cipher: Cipher) -> None:
    _create(database)
    with database.session() as session:
        save_credentials(session, get_integration(session, "acme"), _creds(), cipher, now=NOW)
    results: dict[str, bool] = {}
    start = threading.Barrier(6)

    def refresh(token: str) -> None:
        start.wait()
        with database.session() as session:
            results[token] = update_tokens(
                session, "acme", cipher, access_token=token, refresh_token=f"r-{token}", expected_version=1
            )

    threads = [threading.Thread(target=refresh, args=(f"a{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [token for token, won in results.items() if won]
    assert len(results) == 6 and len(winners) == 1
    with database.session() as session:
        loaded = load_credentials(session, "acme", cipher)
    assert (loaded.access_token, loaded.refresh_token, loaded.version) == (winners[0], f"r-{winners[0]}", 2)


def test_load_credentials_sees_tokens_another_session_stored(database: Database, cipher: Cipher) -> None:
    _create(database)
    with database.session() as session:
        save_credentials(session, get_integration(session, "acme"), _creds(), cipher, now=NOW)
    with database.session() as reader:
        assert load_credentials(reader, "acme", cipher).version == 1
        with database.session() as writer:
            update_tokens(writer, "acme", cipher, access_token="fresh", expected_version=1)
        reader.commit()  # a new transaction: PostgreSQL's snapshot moves on
        assert load_credentials(reader, "acme", cipher).access_token == "fresh"


# --- setup status ----------------------------------------------------------------------------------


def test_connecting_a_configured_integration_activates_it_and_requests_the_initial_sync(
    database: Database, cipher: Cipher
) -> None:
    _create(database, complete=True)
    with database.session() as session:
        save_credentials(session, get_integration(session, "acme"), _creds(), cipher, now=NOW)
    with database.session() as session:
        integration = get_integration(session, "acme")
        assert integration.status == IntegrationStatus.ACTIVE.value
        assert integration.activated_at == NOW
        assert integration.sync_requested_at == NOW


@pytest.mark.parametrize(
    ("connected", "objects_saved", "mappings_saved"),
    [(False, True, True), (True, False, True), (True, True, False)],
)
def test_an_unfinished_setup_stays_incomplete(
    database: Database, cipher: Cipher, connected: bool, objects_saved: bool, mappings_saved: bool
) -> None:
    _create(database)
    with database.session() as session:
        integration = get_integration(session, "acme")
        integration.objects_saved, integration.mappings_saved = objects_saved, mappings_saved
        if connected:
            integration.credential = Credential(
                client_id="c", client_secret_enc=cipher.encrypt("s"), refresh_token_enc=cipher.encrypt("r")
            )
        assert refresh_setup_status(integration, NOW) is False
        assert integration.status == IntegrationStatus.INCOMPLETE.value
        assert integration.sync_requested_at is None


@pytest.mark.parametrize("status", [IntegrationStatus.INACTIVE, IntegrationStatus.ERROR, IntegrationStatus.ACTIVE])
def test_setup_status_never_changes_inactive_error_or_active(
    database: Database, cipher: Cipher, status: IntegrationStatus
) -> None:
    _create(database, complete=True)
    with database.session() as session:
        integration = get_integration(session, "acme")
        integration.status = status.value
        save_credentials(session, integration, _creds(), cipher, now=NOW)
        assert integration.status == status.value
        assert integration.sync_requested_at is None and integration.activated_at is None


def test_saving_credentials_leaves_sync_state_alone(database: Database, cipher: Cipher) -> None:
    _create(database, complete=True)
    watermark = datetime(2025, 6, 1, tzinfo=UTC)
    with database.session() as session:
        integration = get_integration(session, "acme")
        session.add(SyncState(integration_id=integration.id, object_name="Lead", watermark=watermark))
        save_credentials(session, integration, _creds(), cipher, now=NOW)
    with database.session() as session:
        assert session.scalar(select(SyncState.watermark)) == watermark


def test_a_name_taken_by_a_concurrent_writer_is_a_conflict(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    _create(database)
    # As if another process created "acme" between this writer's check and its insert.
    monkeypatch.setattr(integrations, "find_integration", lambda session, name: None)
    with pytest.raises(ConflictError, match="'acme' already exists"), database.session() as session:
        create_integration(session, name="acme", project_id=42, login_url="https://login.salesforce.com")


def test_an_org_connected_by_a_concurrent_writer_is_a_conflict(
    database: Database, cipher: Cipher, monkeypatch: pytest.MonkeyPatch
) -> None:
    _create(database, "first")
    _create(database, "second")
    refresh = integrations.refresh_setup_status

    def connect_first_meanwhile(integration: Integration, now: datetime) -> bool:
        # Runs after save_credentials checked that nobody holds the org, before it writes.
        with database.session() as other:
            get_integration(other, "first").org_id = ORG
        return refresh(integration, now)

    monkeypatch.setattr(integrations, "refresh_setup_status", connect_first_meanwhile)
    with pytest.raises(ConflictError, match="just connected to another integration"), database.session() as session:
        save_credentials(session, get_integration(session, "second"), _creds(), cipher, now=NOW)
    with database.session() as session:
        assert get_integration(session, "second").credential is None
