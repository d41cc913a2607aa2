"""Stage 2: map extracted records to user rows and decide, by external ID, what changes.

- no user with that external ID → create (a record already deleted in Salesforce is skipped);
- a user whose stored ``source_modified_at`` is newer → skipped: an older re-read never wins;
- deleted in Salesforce → the user is flagged ``deleted`` (never hard-deleted);
- any mapped value different (compared by digest) or the user was flagged deleted → update;
- otherwise unchanged, and not written at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
from sqlalchemy import bindparam, exists, select
from sqlalchemy.orm import Session

from sf_pipeline.mapping import ObjectMapping
from sf_pipeline.storage.models import User
from sf_pipeline.sync.chunks import ChunkWriter, read_chunks
from sf_pipeline.sync.manifests import ChangeCounts, ChangedObject, ExtractedObject
from sf_pipeline.sync.plan import parse_sf_datetime
from sf_pipeline.sync.schemas import check_user_rows, invalid_extracted_rows

LOOKUP_BATCH = 2000
MAX_WARNING_SAMPLES = 50

CHANGE_SCHEMA = pa.schema(
    [
        ("action", pa.string()),
        ("external_id", pa.string()),
        ("email", pa.string()),
        ("phone", pa.string()),
        ("timezone", pa.string()),
        ("locale", pa.string()),
        ("data", pa.string()),
        ("source_object", pa.string()),
        ("source_id", pa.string()),
        ("source_modified_at", pa.timestamp("us", tz="UTC")),
        ("deleted", pa.bool_()),
        ("content_hash", pa.string()),
    ]
)


def external_id(integration: str, object_name: str, salesforce_id: str) -> str:
    return f"sf_{integration}_{object_name}_{salesforce_id}"


def content_digest(email: Any, phone: Any, timezone: Any, locale: Any, data: str) -> str:
    payload = "\x1f".join(("" if v is None else str(v)) for v in (email, phone, timezone, locale, data))
    return hashlib.md5(payload.encode(), usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class Existing:
    content_hash: str | None
    source_modified_at: datetime | None
    deleted: bool


class ExistingUsers:
    """Reads the stored digest of the users a chunk touches, a batch of external IDs at a time."""

    def __init__(self, session: Session, project_id: int, integration_id: int, object_name: str) -> None:
        self.session = session
        self.project_id = project_id
        self.any = bool(
            session.scalar(
                select(
                    exists().where(User.integration_id == integration_id, User.source_object == object_name)
                )
            )
        )
        self._query = select(User.external_id, User.content_hash, User.source_modified_at, User.deleted).where(
            User.project_id == project_id, User.external_id.in_(bindparam("ids", expanding=True))
        )

    def lookup(self, external_ids: Sequence[str]) -> dict[str, Existing]:
        if not self.any:
            return {}
        found: dict[str, Existing] = {}
        for start in range(0, len(external_ids), LOOKUP_BATCH):
            batch = list(external_ids[start : start + LOOKUP_BATCH])
            for ext_id, digest, modified, deleted in self.session.execute(self._query, {"ids": batch}):
                found[ext_id] = Existing(digest, modified, bool(deleted))
        return found


def _nest(fields: Sequence[str], row: dict[str, Any]) -> dict[str, Any]:
    """Put flattened parent paths (``Lead.Email``) back into Salesforce's nested record shape."""
    record: dict[str, Any] = {}
    for name in fields:
        if "." in name:
            parent, leaf = name.split(".", 1)
            record.setdefault(parent, {})[leaf] = row[name]
        else:
            record[name] = row[name]
    return record


def diff_object(
    extracted: ExtractedObject,
    *,
    integration: str,
    mapping: ObjectMapping,
    existing: ExistingUsers,
    out_dir: Path,
    warnings: list[dict[str, str]],
    on_chunk: Callable[[ChangeCounts], None] | None = None,
) -> ChangedObject:
    object_name = extracted.object_name
    counts = ChangeCounts()
    writer = ChunkWriter(out_dir, f"changes-{object_name}", CHANGE_SCHEMA)
    nested = any("." in f for f in extracted.fields)
    prefix = f"sf_{integration}_{object_name}_"
    for table in read_chunks(extracted.chunk_paths):
        frame_rows = table.to_pylist()
        bad = invalid_extracted_rows(table.select(["Id", "LastModifiedDate", "IsDeleted"]).to_pandas())
        if bad:
            counts.invalid_records += len(bad)
            for i in sorted(bad)[: max(0, MAX_WARNING_SAMPLES - len(warnings))]:
                warnings.append({"object": object_name, "reason": "invalid record", "id": str(frame_rows[i]["Id"])})
        rows = [r for i, r in enumerate(frame_rows) if i not in bad] if bad else frame_rows
        stored = existing.lookup([prefix + r["Id"] for r in rows])
        changes: dict[str, list[Any]] = {name: [] for name in CHANGE_SCHEMA.names}
        n_changes = 0
        for row in rows:
            sf_id = row["Id"]
            ext_id = prefix + sf_id
            is_deleted = bool(row["IsDeleted"])
            modified = parse_sf_datetime(row["LastModifiedDate"])
            before = stored.get(ext_id)
            if before is None and is_deleted:
                counts.skipped += 1
                continue
            if before is not None and before.source_modified_at is not None and before.source_modified_at > modified:
                counts.unchanged += 1
                continue
            user = mapping.convert(_nest(extracted.fields, row) if nested else row)
            if user.warnings:
                counts.invalid_values += len(user.warnings)
                for w in user.warnings[: max(0, MAX_WARNING_SAMPLES - len(warnings))]:
                    warnings.append(
                        {"object": object_name, "id": sf_id, "property": w.property, "field": w.field,
                         "reason": w.reason, "value": w.value}
                    )
            data = json.dumps(user.data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
            digest = content_digest(user.email, user.phone, user.timezone, user.locale, data)
            if before is None:
                action = "create"
                counts.created += 1
            elif is_deleted:
                if before.deleted:
                    counts.unchanged += 1
                    continue
                action = "delete"
                counts.deleted += 1
            elif before.deleted or before.content_hash != digest:
                action = "update"
                counts.updated += 1
            else:
                counts.unchanged += 1
                continue
            for name, value in (
                ("action", action), ("external_id", ext_id), ("email", user.email), ("phone", user.phone),
                ("timezone", user.timezone), ("locale", user.locale), ("data", data),
                ("source_object", object_name), ("source_id", sf_id), ("source_modified_at", modified),
                ("deleted", is_deleted), ("content_hash", digest),
            ):
                changes[name].append(value)
            n_changes += 1
        if n_changes:
            check_user_rows(pd.DataFrame({k: changes[k] for k in ("action", "external_id", "email", "phone",
                                                                   "timezone", "locale", "data", "source_id",
                                                                   "deleted")}))
            writer.append_columns(changes, n_changes)
        if on_chunk:
            on_chunk(counts)
    return ChangedObject(object_name=object_name, counts=counts, chunk_paths=writer.close())


def change_rows(paths: Iterable[str]) -> Iterable[list[dict[str, Any]]]:
    for table in read_chunks(list(paths)):
        yield table.to_pylist()
