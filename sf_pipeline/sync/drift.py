"""Drift: how far the users table is from the org, per object, as one number.

``drift[object] = (records in the org under the rules, one COUNT() of live records) - (users of
that object that are in scope and not deleted)``. Zero when the table mirrors the org. Positive:
records the table lacks (or users flagged that should not be). Negative: users that still look
current for records that were purged or left the rules, which only reconciliation can see; so
after an incremental sync a negative drift is expected until the next reconciliation. Two
numbers read a moment apart, so edits in Salesforce while a sync runs can show as a small drift
that the next sync settles.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

from sqlalchemy.orm import Session

from sf_pipeline.sync.manifests import ObjectReconciliation
from sf_pipeline.sync.reconcile import ReconcileClient, users_in_scope

SessionFactory = Callable[[], AbstractContextManager[Session]]


@dataclass(frozen=True)
class ObjectDrift:
    object_name: str
    org_count: int
    users: int

    @property
    def drift(self) -> int:
        return self.org_count - self.users


def count_soql(object_name: str, where: str | None) -> str:
    return f"SELECT COUNT() FROM {object_name}" + (f" WHERE {where}" if where else "")


def org_counts(client: ReconcileClient, objects: Sequence[tuple[str, str | None]]) -> dict[str, int]:
    """One COUNT() per object (``query``: live records only)."""
    return {name: client.count(count_soql(name, where)) for name, where in objects}


def measure(session_factory: SessionFactory, integration_id: int, counts: Mapping[str, int]) -> list[ObjectDrift]:
    """The org's counts against the users they should match."""
    with session_factory() as session:
        return [ObjectDrift(name, org, users_in_scope(session, integration_id, name)) for name, org in counts.items()]


def as_numbers(drifts: Sequence[ObjectDrift]) -> dict[str, int]:
    return {d.object_name: d.drift for d in drifts}


def explain(drifts: Sequence[ObjectDrift], reconciled: Mapping[str, ObjectReconciliation]) -> dict[str, str]:
    """Why a reconciliation left drift non-zero, per object with drift."""
    reasons: dict[str, str] = {}
    for d in drifts:
        if d.drift == 0:
            continue
        done = reconciled.get(d.object_name)
        parts = []
        if done is not None and done.invalid_records:
            parts.append(f"{done.invalid_records} record(s) under the rules failed validation and were not synced")
        if done is not None and done.in_scope_ids != d.org_count:
            parts.append(f"the org changed while reconciling: the Id scan saw {done.in_scope_ids} record(s) under "
                         f"the rules, COUNT() found {d.org_count}; the next sync settles it")
        if done is None:
            parts.append("not reconciled in this run")
        if not parts:
            parts.append(f"{d.users} in-scope user(s) for {d.org_count} record(s) under the rules with no "
                         "change seen during the run; reconcile again and report it if it persists")
        reasons[d.object_name] = "; ".join(parts)
    return reasons
