"""The typed records that stages hand each other (through Dagster's IO manager): what was pulled
or decided, and where the chunk files are. Never the records themselves.

    extract:  ObjectPlan + ResolvedMapping + record batches  → ExtractedObject  (in an ExtractManifest)
    diff:     ExtractedObject + stored versions              → ChangedObject    (in a ChangeManifest)
    upsert:   ChangeManifest                                 → SyncSummary
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any

from sf_pipeline.mapping import ResolvedMapping


@dataclass
class ExtractedObject:
    """One object's extract: the chunk files, and everything the diff needs to read them (the
    mapping resolved against describe at extract time, so the diff never asks Salesforce)."""

    object_name: str
    full: bool
    soql: str
    mapping: ResolvedMapping
    fingerprint: str
    watermark_before: datetime | None
    watermark_after: datetime | None
    total: int = 0
    fetched: int = 0
    deleted_seen: int = 0
    chunk_paths: list[str] = field(default_factory=list)
    # Which API fetched the records ("rest" or "bulk"), and why when it is not the obvious one
    # (a fallback from Bulk API 2.0 to REST names the failure).
    api: str = "rest"
    api_reason: str | None = None
    # The compiled sync rules: drift counts the org under them without another describe.
    where: str | None = None

    @property
    def fields(self) -> tuple[str, ...]:
        return self.mapping.soql_fields


# Reconciliation's flags (``reconcile``): the users it marks, by what it found.
PURGED = "purged"
DELETED = "deleted"
OUT_OF_SCOPE = "out_of_scope"
IN_SCOPE = "in_scope"


@dataclass
class ObjectReconciliation:
    object_name: str
    # The Id scan: "rest" or "bulk" (the Id-only query over that API) or "extract" (the full
    # sync's own records), and why that API (a fallback from Bulk to REST names the failure).
    scan: str = "rest"
    scan_reason: str | None = None
    in_scope_ids: int = 0
    refetched: int = 0
    created: int = 0
    out_of_scope: int = 0
    back_in_scope: int = 0
    purged: int = 0
    deleted: int = 0
    invalid_records: int = 0
    # The Salesforce Ids of the users to flag, by flag: written together by ``write_flags`` once
    # every Salesforce call of the run is done.
    flags: dict[str, list[str]] = field(
        default_factory=lambda: {PURGED: [], DELETED: [], OUT_OF_SCOPE: [], IN_SCOPE: []}, repr=False)
    # The records fetched again, as extract chunks for the diff and upsert.
    refetch: ExtractedObject | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("flags", "refetch")}


@dataclass
class Reconciliation:
    """A run's reconciliation: why it ran, and per object what the Salesforce side found (the
    upsert stage writes the flags)."""

    reasons: list[str]
    # Every selected object was reconciled (then the schedule restarts).
    everything: bool
    objects: list[ObjectReconciliation] = field(default_factory=list)


@dataclass
class ExtractManifest:
    integration: str
    run_id: str
    work_dir: str
    objects: list[ExtractedObject]
    api_calls: int = 0
    duration_s: float = 0.0
    # Per object: the org's COUNT() under the rules, taken after the extract (for drift).
    org_counts: dict[str, int] = field(default_factory=dict)
    reconciliation: Reconciliation | None = None

    @property
    def fetched(self) -> int:
        return sum(o.fetched for o in self.objects)


@dataclass
class ChangeCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    skipped: int = 0
    invalid_values: int = 0
    invalid_records: int = 0

    def add(self, other: ChangeCounts) -> None:
        for name in vars(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def written(self) -> int:
        return self.created + self.updated + self.deleted


@dataclass
class ChangedObject:
    object_name: str
    counts: ChangeCounts
    chunk_paths: list[str] = field(default_factory=list)
    # A few sample warnings (object, id, property, field, reason, value preview); counts are exact.
    warnings: list[dict[str, str]] = field(default_factory=list)


@dataclass
class ChangeManifest:
    extract: ExtractManifest
    objects: list[ChangedObject]
    duration_s: float = 0.0

    @property
    def counts(self) -> ChangeCounts:
        total = ChangeCounts()
        for obj in self.objects:
            total.add(obj.counts)
        return total

    @property
    def warnings(self) -> list[dict[str, str]]:
        return [w for obj in self.objects for w in obj.warnings]


@dataclass(frozen=True)
class AfterSync:
    """What a sync's own reconciliation steps add to its summary (``reconcile_service``)."""

    drift: dict[str, int]
    reconcile: dict[str, Any] | None
    api_calls: int


@dataclass(frozen=True)
class WatermarkMove:
    before: datetime | None
    after: datetime | None
    full: bool


@dataclass(frozen=True)
class SyncSummary:
    """What a completed sync did: the run row's counts, the ``sync_completed`` event, the
    ``spotzee_users`` materialization's metadata and ``sf-pipeline sync --json``."""

    fetched: int
    created: int
    updated: int
    unchanged: int
    deleted: int
    skipped: int
    invalid_values: int
    invalid_records: int
    # Every dropped value and every invalid record: the one warning count (the event keeps samples).
    warnings: int
    api_calls: int
    duration_s: float
    watermarks: dict[str, WatermarkMove]
    # Which API fetched each object: "rest" or "bulk" (Bulk API 2.0).
    apis: dict[str, str] = field(default_factory=dict)
    # Per object: the org's count under the rules minus the in-scope, not-deleted users.
    drift: dict[str, int] = field(default_factory=dict)
    # When the run reconciled: why, what it found per object, and why drift stayed non-zero.
    reconcile: dict[str, Any] | None = None

    @classmethod
    def of(cls, changes: ChangeManifest, *, duration_s: float) -> SyncSummary:
        counts = changes.counts
        extract = changes.extract
        return cls(
            fetched=extract.fetched,
            created=counts.created,
            updated=counts.updated,
            unchanged=counts.unchanged,
            deleted=counts.deleted,
            skipped=counts.skipped,
            invalid_values=counts.invalid_values,
            invalid_records=counts.invalid_records,
            warnings=counts.invalid_values + counts.invalid_records,
            api_calls=extract.api_calls,
            duration_s=round(duration_s, 3),
            watermarks={o.object_name: WatermarkMove(o.watermark_before, o.watermark_after, o.full)
                        for o in extract.objects},
            apis={o.object_name: o.api for o in extract.objects},
        )

    def counts(self) -> dict[str, int | float]:
        """The scalar figures, without the watermarks, APIs, drift and reconciliation."""
        return {k: v for k, v in asdict(self).items() if k not in ("watermarks", "apis", "drift", "reconcile")}

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape (watermarks as ISO-8601 text)."""
        extra: dict[str, Any] = {"drift": dict(self.drift)}
        if self.reconcile is not None:
            extra["reconcile"] = self.reconcile
        return {
            **self.counts(),
            "apis": dict(self.apis),
            **extra,
            "watermarks": {
                name: {"before": m.before.isoformat() if m.before else None,
                       "after": m.after.isoformat() if m.after else None, "full": m.full}
                for name, m in self.watermarks.items()
            },
        }
