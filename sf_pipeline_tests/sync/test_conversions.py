"""Lead conversion links on their own: converted Leads read from extract chunks (written by the
real extract stage) are stored on their users, then linked to the Contact's user once it exists;
on SQLite and PostgreSQL, since the counts come from the drivers' row counts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from sf_pipeline.mapping import MappingSpec
from sf_pipeline.storage.database import Database
from sf_pipeline.storage.models import Integration, User
from sf_pipeline.sync import conversions
from sf_pipeline.sync.conversions import external_id, link_converted, record_conversions
from sf_pipeline.sync.fields import with_sync_fields
from sf_pipeline_tests.dbs import migrated_database
from sf_pipeline_tests.describes import LEAD
from sf_pipeline_tests.sync.stages import extracted, lead, lead_mapping, sf_id

NAME = "acme"
PROJECT = 42


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with migrated_database(request.param, tmp_path) as database:
        yield database


@pytest.fixture
def integration_id(database: Database) -> int:
    with database.session() as session:
        row = Integration(name=NAME, project_id=PROJECT, login_url="https://login.salesforce.com")
        session.add(row)
        session.flush()
        return row.id


def contact_id(i: int) -> str:
    return f"003{i:015d}"


def add_user(database: Database, integration_id: int, object_name: str, sf: str) -> None:
    with database.session() as session:
        session.add(User(project_id=PROJECT, external_id=external_id(NAME, object_name, sf),
                         integration_id=integration_id, source_object=object_name, source_id=sf))


def converted(i: int, contact: int | None, day: str | None = "2026-01-31") -> dict[str, Any]:
    return lead(i, IsConverted=contact is not None, ConvertedDate=day if contact is not None else None,
                ConvertedContactId=contact_id(contact) if contact is not None else None)


def chunks(folder: Path, records: list[dict[str, Any]], rows_per_chunk: int = 50_000) -> list[str]:
    mapping, _ = with_sync_fields("Lead", lead_mapping(), LEAD)
    return extracted(folder, records, mapping=mapping, rows_per_chunk=rows_per_chunk).chunk_paths


def link_of(database: Database, sf: str) -> tuple[Any, ...]:
    with database.session() as session:
        user = session.scalars(select(User).where(User.external_id == external_id(NAME, "Lead", sf))).one()
        at = user.converted_at.replace(tzinfo=UTC) if user.converted_at is not None else None
        return at, user.converted_contact_id, user.converted_to


def test_a_users_identity_is_the_integration_object_and_salesforce_id() -> None:
    assert external_id("acme", "Contact", "003000000000000001") == "sf_acme_Contact_003000000000000001"


def test_converted_leads_with_users_record_the_day_and_the_contact(
    database: Database, integration_id: int, tmp_path: Path
) -> None:
    for i in (1, 2, 3):
        add_user(database, integration_id, "Lead", sf_id(i))
    # Lead 4 converted but was never synced: it has no user, so nothing is touched or counted.
    paths = chunks(tmp_path, [converted(1, 10), converted(2, None), converted(3, 11, "2025-12-01"), converted(4, 12)],
                   rows_per_chunk=2)
    assert len(paths) == 2
    assert record_conversions(database.session, paths, integration=NAME, project_id=PROJECT) == 2
    assert link_of(database, sf_id(1)) == (datetime(2026, 1, 31, tzinfo=UTC), contact_id(10), None)
    assert link_of(database, sf_id(2)) == (None, None, None)
    assert link_of(database, sf_id(3)) == (datetime(2025, 12, 1, tzinfo=UTC), contact_id(11), None)


def test_recording_the_same_conversion_again_changes_nothing(
    database: Database, integration_id: int, tmp_path: Path
) -> None:
    add_user(database, integration_id, "Lead", sf_id(1))
    paths = chunks(tmp_path, [converted(1, 10)])
    assert record_conversions(database.session, paths, integration=NAME, project_id=PROJECT) == 1
    assert record_conversions(database.session, paths, integration=NAME, project_id=PROJECT) == 0


def test_a_lead_converted_to_another_contact_drops_its_old_link(
    database: Database, integration_id: int, tmp_path: Path
) -> None:
    add_user(database, integration_id, "Lead", sf_id(1))
    add_user(database, integration_id, "Contact", contact_id(10))
    record_conversions(database.session, chunks(tmp_path / "a", [converted(1, 10)]), integration=NAME,
                       project_id=PROJECT)
    assert link_converted(database.session, integration=NAME, integration_id=integration_id, project_id=PROJECT) == 1
    assert link_of(database, sf_id(1))[2] == external_id(NAME, "Contact", contact_id(10))
    assert record_conversions(database.session, chunks(tmp_path / "b", [converted(1, 20)]), integration=NAME,
                              project_id=PROJECT) == 1
    assert link_of(database, sf_id(1))[1:] == (contact_id(20), None)


def test_chunks_without_the_conversion_fields_record_nothing(
    database: Database, integration_id: int, tmp_path: Path
) -> None:
    add_user(database, integration_id, "Lead", sf_id(1))
    plain = extracted(tmp_path, [lead(1)], mapping=lead_mapping(MappingSpec("Email", "email"))).chunk_paths
    assert record_conversions(database.session, plain, integration=NAME, project_id=PROJECT) == 0
    assert record_conversions(database.session, [], integration=NAME, project_id=PROJECT) == 0
    assert link_of(database, sf_id(1)) == (None, None, None)


def test_conversions_beyond_one_batch_are_all_recorded_and_counted(
    database: Database, integration_id: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(conversions, "BATCH", 3)
    for i in range(1, 8):
        add_user(database, integration_id, "Lead", sf_id(i))
    paths = chunks(tmp_path, [converted(i, 100 + i) for i in range(1, 8)])
    assert record_conversions(database.session, paths, integration=NAME, project_id=PROJECT) == 7
    assert [link_of(database, sf_id(i))[1] for i in range(1, 8)] == [contact_id(100 + i) for i in range(1, 8)]


def test_links_are_made_only_once_the_contacts_user_exists(
    database: Database, integration_id: int, tmp_path: Path
) -> None:
    for i in (1, 2):
        add_user(database, integration_id, "Lead", sf_id(i))
    record_conversions(database.session, chunks(tmp_path, [converted(1, 10), converted(2, 11)]), integration=NAME,
                       project_id=PROJECT)
    add_user(database, integration_id, "Contact", contact_id(10))
    assert link_converted(database.session, integration=NAME, integration_id=integration_id, project_id=PROJECT) == 1
    assert link_of(database, sf_id(1))[2] == external_id(NAME, "Contact", contact_id(10))
    assert link_of(database, sf_id(2))[2] is None
    # Linked users are not revisited; the other links once its Contact is synced.
    assert link_converted(database.session, integration=NAME, integration_id=integration_id, project_id=PROJECT) == 0
    add_user(database, integration_id, "Contact", contact_id(11))
    assert link_converted(database.session, integration=NAME, integration_id=integration_id, project_id=PROJECT) == 1
    assert link_of(database, sf_id(2))[2] == external_id(NAME, "Contact", contact_id(11))


def test_another_integrations_converted_leads_are_not_linked(
    database: Database, integration_id: int, tmp_path: Path
) -> None:
    add_user(database, integration_id, "Lead", sf_id(1))
    add_user(database, integration_id, "Contact", contact_id(10))
    record_conversions(database.session, chunks(tmp_path, [converted(1, 10)]), integration=NAME, project_id=PROJECT)
    assert link_converted(database.session, integration=NAME, integration_id=integration_id + 1,
                          project_id=PROJECT) == 0
    assert link_of(database, sf_id(1))[2] is None
