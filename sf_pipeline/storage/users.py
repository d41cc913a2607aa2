"""What the diff needs to know of stored users: each one's digest, version and deleted flag."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, exists, select
from sqlalchemy.orm import Session

from sf_pipeline.storage.models import User

LOOKUP_BATCH = 2000


@dataclass(frozen=True)
class StoredVersion:
    content_hash: str | None
    source_modified_at: datetime | None
    deleted: bool


class StoredUsers:
    """Reads the stored versions of the users a chunk touches, a batch of external IDs at a time."""

    def __init__(self, session: Session, project_id: int, integration_id: int, object_name: str) -> None:
        self.session = session
        self.project_id = project_id
        # An object never synced before (every initial sync) needs no lookups at all.
        self.any = bool(
            session.scalar(
                select(exists().where(User.integration_id == integration_id, User.source_object == object_name))
            )
        )
        self._query = select(User.external_id, User.content_hash, User.source_modified_at, User.deleted).where(
            User.project_id == project_id, User.external_id.in_(bindparam("ids", expanding=True))
        )

    def lookup(self, external_ids: Sequence[str]) -> dict[str, StoredVersion]:
        if not self.any:
            return {}
        found: dict[str, StoredVersion] = {}
        for start in range(0, len(external_ids), LOOKUP_BATCH):
            batch = list(external_ids[start : start + LOOKUP_BATCH])
            for ext_id, digest, modified, deleted in self.session.execute(self._query, {"ids": batch}):
                found[ext_id] = StoredVersion(digest, modified, bool(deleted))
        return found
