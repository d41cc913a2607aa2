"""The small records that stages hand each other (through Dagster's IO manager): what was
pulled or decided, and where the chunk files are. Never the records themselves."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class ExtractedObject:
    object_name: str
    full: bool
    soql: str
    fields: tuple[str, ...]
    fingerprint: str
    watermark_before: datetime | None
    watermark_after: datetime | None
    total: int = 0
    fetched: int = 0
    deleted_seen: int = 0
    chunk_paths: list[str] = field(default_factory=list)
    # The compiled sync rules: drift counts the org under them without another describe.
    where: str | None = None


@dataclass
class ExtractManifest:
    integration: str
    run_id: str
    work_dir: str
    objects: list[ExtractedObject]
    api_calls: int = 0
    duration_s: float = 0.0

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


@dataclass
class ChangeManifest:
    extract: ExtractManifest
    objects: list[ChangedObject]
    # A few sample warnings (property, field, reason, value preview) for the logs; counts are exact.
    warnings: list[dict[str, str]] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def counts(self) -> ChangeCounts:
        total = ChangeCounts()
        for obj in self.objects:
            total.add(obj.counts)
        return total
