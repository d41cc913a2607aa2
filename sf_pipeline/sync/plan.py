"""What one run pulls for each object: full or incremental, from where, with which SOQL.

The incremental boundary (see the README's "How a sync works"):
- Records are read with ``LastModifiedDate >= watermark - lookback`` ordered by
  ``LastModifiedDate, Id``. ``>=`` keeps every record that shares the watermark's timestamp,
  however the pages split them; the lookback re-reads a window so a record that committed late,
  stamped below the watermark by at most the lookback, still arrives (one later than that is
  missed until the next full sync). Re-reading is free of side effects: the diff finds re-read
  records unchanged and writes nothing.
- The watermark becomes the newest ``LastModifiedDate`` seen, and is stored only when the whole
  run succeeds.
- A change to an object's rules or mapped fields (its fingerprint) makes the next run of that
  object full, so records that newly match arrive even if they did not change in Salesforce.
- A record mapped through parents (a CampaignMember's ``Lead.Email``) also changes when only its
  parent does, and editing a Lead never touches its members' ``LastModifiedDate``. So the
  incremental condition also takes members whose parent changed
  (``LastModifiedDate >= :since OR Lead.LastModifiedDate >= :since OR ...``; Salesforce accepts
  parent fields in WHERE), and the watermark is the newest of all those timestamps.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# The lookback is per integration (``lookback_minutes`` in its file): how late a commit can be
# and still be read (see the README's "How a sync works").
DEFAULT_LOOKBACK_MINUTES = 10
MAX_LOOKBACK_MINUTES = 24 * 60
DEFAULT_LOOKBACK = timedelta(minutes=DEFAULT_LOOKBACK_MINUTES)


def soql_datetime(value: datetime) -> str:
    """SOQL's unquoted datetime literal, in UTC with milliseconds."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_sf_datetime(value: str) -> datetime:
    """Salesforce writes datetimes as ``2024-01-01T00:00:00.000+0000``."""
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z").astimezone(UTC)


def config_fingerprint(fields: Sequence[str], where: str | None, mappings: Sequence[tuple[str, ...]]) -> str:
    payload = json.dumps({"fields": list(fields), "where": where, "mappings": [list(m) for m in mappings]})
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class ObjectPlan:
    object_name: str
    fields: tuple[str, ...]
    where: str | None
    full: bool
    watermark: datetime | None
    since: datetime | None
    fingerprint: str
    # Parent relationships whose ``LastModifiedDate`` also makes a record changed (``Lead``).
    parents: tuple[str, ...] = ()

    def soql(self, *, ordered: bool = True) -> str:
        """The object's query. Bulk API 2.0 jobs take it unordered (``ordered=False``): Salesforce
        discourages ORDER BY there, and the watermark is the newest timestamp seen, not the last."""
        conditions = []
        if self.since is not None:
            stamp = soql_datetime(self.since)
            changed = [f"{path}LastModifiedDate >= {stamp}" for path in ("", *(f"{p}." for p in self.parents))]
            conditions.append(changed[0] if len(changed) == 1 else f"({' OR '.join(changed)})")
        if self.where:
            conditions.append(f"({self.where})")
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        order = " ORDER BY LastModifiedDate ASC, Id ASC" if ordered else ""
        return f"SELECT {', '.join(self.fields)} FROM {self.object_name}{where}{order}"


def plan_object(
    *,
    object_name: str,
    fields: Sequence[str],
    where: str | None,
    mappings: Sequence[tuple[str, ...]],
    stored_watermark: datetime | None,
    stored_fingerprint: str | None,
    force_full: bool,
    lookback: timedelta = DEFAULT_LOOKBACK,
    parents: Sequence[str] = (),
) -> ObjectPlan:
    fingerprint = config_fingerprint(fields, where, mappings)
    full = force_full or stored_watermark is None or stored_fingerprint != fingerprint
    since = None if full or stored_watermark is None else stored_watermark - lookback
    return ObjectPlan(
        object_name=object_name,
        fields=tuple(fields),
        where=where,
        full=full,
        watermark=stored_watermark,
        since=since,
        fingerprint=fingerprint,
        parents=tuple(parents),
    )
