"""The four health checks, as plain functions over a Salesforce client and the database.

| check          | passes when                                                           |
|----------------|-----------------------------------------------------------------------|
| credentials    | the stored OAuth tokens authorise a call (an expired access token is   |
|                | refreshed first; a revoked or expired refresh token fails)            |
| field_mappings | every mapped field (parent fields of CampaignMember too) still exists  |
|                | on its object and is readable                                         |
| api_limits     | remaining daily API requests are above 10% of the maximum             |
| sync_staleness | the last successful sync is within twice the configured frequency     |

Dagster's asset checks, the sync's preflight and ``sf-pipeline health`` all call ``evaluate``;
``store`` keeps the results with one ``health_check`` log event per check, and ``update_status``
moves the status (a failure sets Error; all four passing returns Error to Active).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from sf_pipeline.events import EventType, record_event
from sf_pipeline.salesforce.describe import ObjectDescribe
from sf_pipeline.salesforce.errors import SalesforceError, is_local
from sf_pipeline.storage.models import HealthResult, Integration, IntegrationStatus, SyncState

API_LIMIT_THRESHOLD = 0.10
BASE_FIELDS = ("Id", "LastModifiedDate", "IsDeleted")


class CheckName(enum.StrEnum):
    CREDENTIALS = "credentials"
    FIELD_MAPPINGS = "field_mappings"
    API_LIMITS = "api_limits"
    SYNC_STALENESS = "sync_staleness"


ALL_CHECKS = tuple(CheckName)
PREFLIGHT_CHECKS = (CheckName.CREDENTIALS, CheckName.FIELD_MAPPINGS)


@dataclass(frozen=True)
class CheckOutcome:
    name: CheckName
    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def local(self) -> bool:
        """Failed because this machine could not reach or trust Salesforce, not because of the org."""
        return bool(self.metadata.get("local"))


def unreachable(name: CheckName, exc: SalesforceError) -> CheckOutcome:
    return CheckOutcome(name, False, f"Could not reach Salesforce: {exc}", {"error": str(exc), "local": True})


class HealthClient(Protocol):
    def identity(self) -> Any: ...
    def describe(self, object_name: str) -> ObjectDescribe: ...
    def limits(self) -> Any: ...


def check_credentials(client: HealthClient, integration: Integration) -> CheckOutcome:
    try:
        client.identity()
    except SalesforceError as exc:
        if is_local(exc):
            return unreachable(CheckName.CREDENTIALS, exc)
        return CheckOutcome(
            CheckName.CREDENTIALS,
            False,
            f"Invalid OAuth token: {exc}",
            {"error": str(exc), "advice": f"Reconnect: sf-pipeline integration reconnect {integration.name}"},
        )
    return CheckOutcome(CheckName.CREDENTIALS, True, "The stored OAuth tokens authorise calls to Salesforce.")


def expected_fields(integration: Integration, states: dict[str, SyncState]) -> dict[str, list[str]]:
    """Which mapped fields each selected object must have.

    A mapping limited to one object is expected there. An unrestricted mapping is expected on
    every object whose last successful sync read it; before any sync, on every selected object
    (the check then reports it only where no selected object has it, as saving the file does)."""
    expected: dict[str, list[str]] = {obj.object_name: [] for obj in integration.objects}
    for mapping in integration.mappings:
        for object_name in expected:
            if mapping.object_name not in (None, object_name):
                continue
            state = states.get(object_name)
            synced = state.fields if state is not None and state.fields else None
            if mapping.object_name == object_name or synced is None or mapping.field in synced:
                expected[object_name].append(mapping.field)
    return expected


def _field_exists(describe: Callable[[str], ObjectDescribe], object_name: str, path: str) -> bool:
    obj = describe(object_name)
    *parents, leaf = path.split(".")
    for relationship in parents:
        ref = obj.relationship(relationship)
        if ref is None or not ref.reference_to:
            return False
        obj = describe(ref.reference_to[0])
    return obj.field(leaf) is not None


def check_field_mappings(
    client: HealthClient, integration: Integration, states: dict[str, SyncState]
) -> CheckOutcome:
    expected = expected_fields(integration, states)
    any_synced = any(s.fields for s in states.values())
    missing: list[str] = []
    try:
        found_anywhere: dict[str, bool] = {}
        for object_name, fields in expected.items():
            for path in (*BASE_FIELDS, *fields):
                exists = _field_exists(client.describe, object_name, path)
                found_anywhere[path] = found_anywhere.get(path, False) or exists
                mapping_restricted = any(
                    m.field == path and m.object_name == object_name for m in integration.mappings
                )
                if not exists and (any_synced or mapping_restricted or path in BASE_FIELDS):
                    missing.append(f"{object_name}.{path}")
        # A sync rule on a field that is gone breaks the object's query just as a mapping does.
        for obj in integration.objects:
            for rule in obj.rules or []:
                path = str(rule.get("field", ""))
                if path and not _field_exists(client.describe, obj.object_name, path):
                    missing.append(f"{obj.object_name}.{path}")
        if not any_synced:
            missing.extend(
                f"{path} (on none of {', '.join(expected)})"
                for path, found in found_anywhere.items()
                if not found and path not in BASE_FIELDS
                and not any(m.endswith(f".{path}") for m in missing)
            )
    except SalesforceError as exc:
        if is_local(exc):
            return unreachable(CheckName.FIELD_MAPPINGS, exc)
        return CheckOutcome(CheckName.FIELD_MAPPINGS, False, f"Could not describe objects: {exc}",
                            {"error": str(exc)})
    missing = sorted(set(missing))
    if missing:
        return CheckOutcome(
            CheckName.FIELD_MAPPINGS,
            False,
            "Field not found: " + ", ".join(missing),
            {"missing_fields": missing, "advice": "Map the renamed field or remove the mapping, then sync."},
        )
    return CheckOutcome(CheckName.FIELD_MAPPINGS, True, "Every mapped field exists and is readable.")


def check_api_limits(client: HealthClient) -> CheckOutcome:
    try:
        limits = client.limits()
    except SalesforceError as exc:
        if is_local(exc):
            return unreachable(CheckName.API_LIMITS, exc)
        return CheckOutcome(CheckName.API_LIMITS, False, f"Could not read API limits: {exc}", {"error": str(exc)})
    maximum = int(limits.max)
    remaining = int(limits.remaining)
    percent = round(100.0 * remaining / maximum, 2) if maximum else 0.0
    metadata = {"remaining": remaining, "maximum": maximum, "percent_remaining": percent}
    if maximum and remaining / maximum > API_LIMIT_THRESHOLD:
        return CheckOutcome(CheckName.API_LIMITS, True, f"{percent}% of daily API requests remain.", metadata)
    return CheckOutcome(
        CheckName.API_LIMITS, False,
        f"Only {remaining} of {maximum} daily API requests remain ({percent}%); check usage in Salesforce Setup.",
        metadata,
    )


def check_sync_staleness(integration: Integration, now: datetime) -> CheckOutcome:
    allowed = timedelta(minutes=2 * integration.frequency_minutes)
    since = integration.last_synced_at or integration.activated_at
    metadata: dict[str, Any] = {"allowed_age_minutes": allowed.total_seconds() / 60}
    if since is None:
        return CheckOutcome(CheckName.SYNC_STALENESS, True, "No sync is expected yet (setup not complete).",
                            metadata)
    age = now - since
    metadata["age_minutes"] = round(age.total_seconds() / 60, 2)
    metadata["last_synced_at"] = integration.last_synced_at.isoformat() if integration.last_synced_at else None
    if age <= allowed:
        return CheckOutcome(CheckName.SYNC_STALENESS, True, "The last successful sync is recent.", metadata)
    what = "last successful sync" if integration.last_synced_at else "activation, with no successful sync since,"
    return CheckOutcome(
        CheckName.SYNC_STALENESS, False,
        f"The {what} was {metadata['age_minutes']} minutes ago; allowed is {metadata['allowed_age_minutes']}.",
        metadata,
    )


def evaluate(
    client: HealthClient,
    integration: Integration,
    states: dict[str, SyncState],
    *,
    now: datetime,
    checks: Sequence[CheckName] = ALL_CHECKS,
) -> list[CheckOutcome]:
    outcomes: list[CheckOutcome] = []
    for name in checks:
        if name is CheckName.CREDENTIALS:
            outcomes.append(check_credentials(client, integration))
        elif name is CheckName.FIELD_MAPPINGS:
            credentials = next((o for o in outcomes if o.name is CheckName.CREDENTIALS and not o.passed), None)
            if credentials is None:
                outcomes.append(check_field_mappings(client, integration, states))
            elif credentials.local:
                outcomes.append(CheckOutcome(CheckName.FIELD_MAPPINGS, False,
                                             "Not checked: Salesforce could not be reached.",
                                             {"error": "credentials check failed", "local": True}))
            else:
                outcomes.append(CheckOutcome(CheckName.FIELD_MAPPINGS, False,
                                             "Not checked: Salesforce refused the credentials.",
                                             {"error": "credentials check failed"}))
        elif name is CheckName.API_LIMITS:
            outcomes.append(check_api_limits(client))
        else:
            outcomes.append(check_sync_staleness(integration, now))
    return outcomes


def store(
    session: Session, integration: Integration, outcomes: Iterable[CheckOutcome], *, now: datetime,
    run_id: str | None,
) -> None:
    """Keep each result and write its ``health_check`` log event."""
    for outcome in outcomes:
        session.add(HealthResult(integration_id=integration.id, check_name=outcome.name.value,
                                 passed=outcome.passed, at=now, run_id=run_id,
                                 details={"description": outcome.description, **outcome.metadata}))
        record_event(session, integration, EventType.HEALTH_CHECK, run_id=run_id, at=now,
                     counts={"passed": int(outcome.passed)},
                     error=None if outcome.passed else outcome.description,
                     details={"check": outcome.name.value, "passed": outcome.passed, **outcome.metadata})


def update_status(integration: Integration, outcomes: Sequence[CheckOutcome]) -> None:
    """A failure sets Error; all four checks passing returns Error to Active. Paused (Inactive)
    and Incomplete integrations keep their status, and so does a failure to reach Salesforce from
    this machine (DNS, TLS trust, refused connection): it says nothing about the org."""
    if integration.status not in (IntegrationStatus.ACTIVE.value, IntegrationStatus.ERROR.value):
        return
    failed = [o for o in outcomes if not o.passed and not o.local]
    if any(o.local for o in outcomes if not o.passed):
        return
    if failed:
        integration.status = IntegrationStatus.ERROR.value
        integration.last_error = "; ".join(o.description for o in failed)
    elif {o.name for o in outcomes} == set(ALL_CHECKS) and integration.status == IntegrationStatus.ERROR.value:
        integration.status = IntegrationStatus.ACTIVE.value
        integration.last_error = None


def latest_results(session: Session, integration: Integration) -> dict[str, HealthResult]:
    rows = session.scalars(
        select(HealthResult).where(HealthResult.integration_id == integration.id).order_by(
            HealthResult.at.desc(), HealthResult.id.desc()).limit(40)
    )
    latest: dict[str, HealthResult] = {}
    for row in rows:
        latest.setdefault(row.check_name, row)
    return latest
