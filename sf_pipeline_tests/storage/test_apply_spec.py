"""Applying an integration file: create or update in one transaction, nothing half-saved, setup
status, and sync state left alone; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from sf_pipeline.errors import ConflictError
from sf_pipeline.integration_spec import ApplyResult, SpecError, apply_spec, parse_spec
from sf_pipeline.mapping import MappingSpec
from sf_pipeline.secrets import Cipher
from sf_pipeline.storage.database import Database
from sf_pipeline.storage.integrations import (
    StoredCredentials,
    get_integration,
    mapping_specs,
    save_credentials,
)
from sf_pipeline.storage.models import FieldMapping, Integration, IntegrationStatus, ObjectConfig, SyncState
from sf_pipeline_tests.describes import counting_describe, describe

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LATER = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

FILE = """\
name: acme
project_id: 42
login_url: https://login.salesforce.com
frequency_minutes: 30
objects:
  Lead:
    match: any
    rules:
      - {field: Rating, operator: equals, value: Hot}
      - {field: ConvertedDate, operator: less_than, value: 2024-01-01}
  Contact: {}
mappings:
  - {field: Email, property: email}
  - {field: Industry, property: industry}
  - {field: HasOptedOutOfEmail, property: unsubscribed, type: boolean}
  - {field: Lead.Email, property: email, object: CampaignMember}
"""

WITHOUT_MAPPINGS = FILE.split("mappings:")[0]


def _apply(database: Database, text: str, *, with_describe: bool = False, now: datetime = NOW) -> ApplyResult:
    with database.session() as session:
        return apply_spec(session, parse_spec(text), describe=describe if with_describe else None, now=now)


def _connect(database: Database, cipher: Cipher) -> None:
    creds = StoredCredentials(
        client_id="id", client_secret="secret", refresh_token="refresh", org_id="00D000000000001EAA"
    )
    with database.session() as session:
        save_credentials(session, get_integration(session, "acme"), creds, cipher, now=NOW)


def test_applying_a_new_file_creates_an_incomplete_integration_with_its_setup(database: Database) -> None:
    result = _apply(database, FILE)
    assert (result.created, result.status_before, result.status_after, result.activated) == (
        True,
        None,
        "incomplete",
        False,
    )
    with database.session() as session:
        integration = get_integration(session, "acme")
        assert (integration.project_id, integration.frequency_minutes) == (42, 30)
        assert integration.objects_saved and integration.mappings_saved
        assert [(o.object_name, o.match, o.rules) for o in integration.objects] == [
            ("Contact", "all", []),
            (
                "Lead",
                "any",
                [
                    {"field": "Rating", "operator": "equals", "value": "Hot"},
                    {"field": "ConvertedDate", "operator": "less_than", "value": "2024-01-01"},
                ],
            ),
        ]
        assert mapping_specs(integration) == [
            MappingSpec("Email", "email"),
            MappingSpec("Industry", "industry"),
            MappingSpec("HasOptedOutOfEmail", "unsubscribed", type="boolean"),
            MappingSpec("Lead.Email", "email", object_name="CampaignMember"),
        ]


def test_a_new_file_without_mappings_keeps_the_default_mappings_as_saved(database: Database) -> None:
    _apply(database, WITHOUT_MAPPINGS)
    with database.session() as session:
        integration = get_integration(session, "acme")
        assert [m.field for m in integration.mappings] == ["Email", "FirstName", "LastName", "Phone"]
        assert integration.mappings_saved


def test_reapplying_replaces_objects_rules_and_mappings(database: Database) -> None:
    _apply(database, FILE)
    changed = (
        FILE.replace("  Contact: {}\n", "")
        .replace("      - {field: ConvertedDate, operator: less_than, value: 2024-01-01}\n", "")
        .replace("  - {field: Industry, property: industry}\n", "")
    )
    result = _apply(database, changed.replace("match: any", "match: all").replace("frequency_minutes: 30", ""))
    assert (result.created, result.updated, result.status_before) == (False, True, "incomplete")
    with database.session() as session:
        integration = get_integration(session, "acme")
        assert integration.frequency_minutes == 60
        assert [(o.object_name, o.match, len(o.rules)) for o in integration.objects] == [("Lead", "all", 1)]
        assert [m.property for m in mapping_specs(integration)] == ["email", "unsubscribed", "email"]
        assert session.scalar(select(func.count()).select_from(ObjectConfig)) == 1
        assert session.scalar(select(func.count()).select_from(FieldMapping)) == 3


def test_reapplying_without_mappings_keeps_the_current_ones(database: Database) -> None:
    _apply(database, FILE)
    _apply(database, WITHOUT_MAPPINGS)
    with database.session() as session:
        assert [m.field for m in get_integration(session, "acme").mappings] == [
            "Email",
            "Industry",
            "HasOptedOutOfEmail",
            "Lead.Email",
        ]


def test_a_connected_integration_becomes_active_and_requests_its_initial_sync(
    database: Database, cipher: Cipher
) -> None:
    with database.session() as session:
        session.add(Integration(name="acme", project_id=42, login_url="https://login.salesforce.com"))
    _connect(database, cipher)
    result = _apply(database, FILE, with_describe=True)
    assert (result.status_before, result.status_after, result.activated) == ("incomplete", "active", True)
    with database.session() as session:
        integration = get_integration(session, "acme")
        assert (integration.activated_at, integration.sync_requested_at) == (NOW, NOW)


def test_reapplying_to_an_active_integration_does_not_request_another_sync(database: Database, cipher: Cipher) -> None:
    _apply(database, FILE)
    _connect(database, cipher)
    result = _apply(database, FILE.replace("value: Hot", "value: Warm"), with_describe=True, now=LATER)
    assert (result.status_before, result.status_after, result.activated) == ("active", "active", False)
    with database.session() as session:
        assert get_integration(session, "acme").sync_requested_at == NOW


@pytest.mark.parametrize("status", [IntegrationStatus.INACTIVE, IntegrationStatus.ERROR])
def test_applying_never_changes_a_paused_or_failing_integration(
    database: Database, cipher: Cipher, status: IntegrationStatus
) -> None:
    _apply(database, WITHOUT_MAPPINGS)
    with database.session() as session:
        get_integration(session, "acme").status = status.value
    _connect(database, cipher)
    assert _apply(database, FILE, with_describe=True).status_after == status.value


def test_changing_rules_or_mappings_leaves_sync_watermarks_alone(database: Database) -> None:
    _apply(database, FILE)
    watermark = datetime(2026, 2, 1, tzinfo=UTC)
    with database.session() as session:
        integration = get_integration(session, "acme")
        session.add(
            SyncState(integration_id=integration.id, object_name="Lead", watermark=watermark, config_fingerprint="f")
        )
    _apply(database, FILE.replace("value: Hot", "value: Cold").replace("industry}", "sector}"))
    with database.session() as session:
        state = session.scalars(select(SyncState)).one()
        assert (state.watermark, state.config_fingerprint) == (watermark, "f")


def test_a_file_invalid_against_describe_saves_nothing(database: Database, cipher: Cipher) -> None:
    _apply(database, FILE)
    _connect(database, cipher)
    bad = (
        FILE.replace("value: Hot", "value: Hot}\n      - {field: Ratng, operator: is_set")
        .replace("{field: Industry, property: industry}", "{field: Nope__c, property: nope}")
        .replace("frequency_minutes: 30", "frequency_minutes: 15")
    )
    with pytest.raises(SpecError) as raised:
        _apply(database, bad, with_describe=True)
    assert [key for key, _ in raised.value.problems] == ["objects.Lead.rules[1].field", "mappings[1].field"]
    with database.session() as session:
        integration = get_integration(session, "acme")
        assert integration.frequency_minutes == 30
        assert [m.field for m in integration.mappings][1] == "Industry"
        assert len(next(o for o in integration.objects if o.object_name == "Lead").rules) == 2


def test_stored_mappings_a_file_keeps_are_checked_against_the_new_objects(database: Database, cipher: Cipher) -> None:
    _apply(database, FILE.replace("{field: Industry, property: industry}", "{field: Birthdate, property: birthday}"))
    _connect(database, cipher)
    lead_only = WITHOUT_MAPPINGS.replace("  Contact: {}\n", "")
    with pytest.raises(SpecError, match=r"stored mappings\[1\] \(Birthdate → birthday\)\.field"):
        _apply(database, lead_only, with_describe=True)


def test_without_describe_the_file_is_only_checked_structurally(database: Database) -> None:
    result = _apply(database, FILE.replace("{field: Industry, property: industry}", "{field: Nope__c, property: n}"))
    assert result.created


def test_describe_is_only_asked_for_the_selected_objects_and_their_parents(database: Database, cipher: Cipher) -> None:
    _apply(database, FILE)
    _connect(database, cipher)
    tracked, calls = counting_describe()
    with database.session() as session:
        apply_spec(session, parse_spec(FILE), describe=tracked, now=NOW)
    assert set(calls) == {"Lead", "Contact"}


def test_an_integration_cannot_move_to_another_project(database: Database) -> None:
    _apply(database, FILE)
    with pytest.raises(ConflictError, match="belongs to project 42"):
        _apply(database, FILE.replace("project_id: 42", "project_id: 43"))


def test_an_object_can_be_dropped_and_selected_again(database: Database) -> None:
    _apply(database, FILE)
    _apply(database, FILE.replace("  Contact: {}\n", ""))
    _apply(database, FILE.replace("  Contact: {}\n", "  Contact:\n    rules: [{field: Birthdate, operator: is_set}]\n"))
    with database.session() as session:
        contact = next(o for o in get_integration(session, "acme").objects if o.object_name == "Contact")
        assert contact.rules == [{"field": "Birthdate", "operator": "is_set"}]


def test_the_api_choice_is_stored_and_reapplying_changes_it(database: Database) -> None:
    _apply(database, FILE)
    with database.session() as session:
        assert get_integration(session, "acme").api == "auto"
    _apply(database, FILE.replace("frequency_minutes:", "api: rest\nfrequency_minutes:", 1))
    with database.session() as session:
        assert get_integration(session, "acme").api == "rest"
    _apply(database, FILE)
    with database.session() as session:
        assert get_integration(session, "acme").api == "auto"
