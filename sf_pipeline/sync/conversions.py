"""Lead conversion links.

Converting a Lead in Salesforce keeps the Lead (``IsConverted`` true, ``ConvertedDate``,
``ConvertedContactId``) and creates or reuses a Contact with its own Id, so the same person is
two users here, as the spec wants (identity is the external ID; nothing is merged). What this
adds is the link: the Lead's user records when it converted and the Contact's Id, and, once the
Contact is a user of the same integration, that user's external ID (``converted_to``), so an
admin can build "dedupe by conversion" segments.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, exists, select, text, update
from sqlalchemy.orm import Session

from sf_pipeline.storage.models import User
from sf_pipeline.sync.chunks import read_chunks
from sf_pipeline.sync.fields import CONVERSION_FIELDS

SessionFactory = Callable[[], AbstractContextManager[Session]]
BATCH = 2000


def external_id(integration: str, object_name: str, salesforce_id: str) -> str:
    """A user's identity, as the diff writes it: ``sf_<integration>_<Object>_<18-character Id>``."""
    return f"sf_{integration}_{object_name}_{salesforce_id}"


def _converted_on(value: Any) -> datetime | None:
    """``ConvertedDate`` is a date (``2024-01-31``): midnight UTC of that day."""
    if not value:
        return None
    day = datetime.strptime(str(value)[:10], "%Y-%m-%d")
    return day.replace(tzinfo=UTC)


def record_conversions(
    session_factory: SessionFactory, chunk_paths: Iterable[str], *, integration: str, project_id: int
) -> int:
    """Store the conversion of every converted Lead in these extract chunks; returns how many
    users changed. Only users that exist are touched (a Lead never synced has no user)."""
    paths = list(chunk_paths)
    if not paths:
        return 0
    changed = 0
    with session_factory() as session:
        postgres = session.get_bind().dialect.name == "postgresql"
    for table in read_chunks(paths):
        if not all(name in table.column_names for name in CONVERSION_FIELDS):
            return 0
        rows = table.select(["Id", *CONVERSION_FIELDS]).to_pylist()
        found = [
            {"ext": external_id(integration, "Lead", r["Id"]), "contact": r["ConvertedContactId"],
             "at": _converted_on(r["ConvertedDate"])}
            for r in rows if r["IsConverted"] and r["ConvertedContactId"]
        ]
        if not found:
            continue
        with session_factory() as session:
            if postgres:
                changed += _record_on_postgres(session, found, project_id)
                continue
            for start in range(0, len(found), BATCH):
                result = session.connection().execute(_BY_ROW, [{**f, "project": project_id}
                                                                for f in found[start : start + BATCH]])
                changed += max(result.rowcount, 0)
    return changed


# SQLite: one UPDATE per converted Lead through the driver's executemany (in-process, no round trips).
_BY_ROW = (
    update(User)
    .where(User.project_id == bindparam("project"), User.external_id == bindparam("ext"),
           (User.converted_contact_id.is_(None)) | (User.converted_contact_id != bindparam("contact")))
    .values(converted_at=bindparam("at"), converted_contact_id=bindparam("contact"), converted_to=None)
)

# PostgreSQL: psycopg2's executemany sends an UPDATE a row, a round trip each (about 7 s for the
# 1,000,000-Lead benchmark's converted Leads); the chunk's conversions go as three arrays instead,
# joined to users in one statement. ``converted_at`` is a timestamp without time zone: UTC.
_FROM_ARRAYS = text(
    "UPDATE users AS u SET converted_at = v.at, converted_contact_id = v.contact, converted_to = NULL "
    "FROM unnest(CAST(:exts AS text[]), CAST(:contacts AS text[]), CAST(:ats AS timestamp[])) AS v(ext, contact, at) "
    "WHERE u.project_id = :project AND u.external_id = v.ext AND u.converted_contact_id IS DISTINCT FROM v.contact"
)


def _record_on_postgres(session: Session, found: list[dict[str, Any]], project_id: int) -> int:
    result = session.connection().execute(_FROM_ARRAYS, {
        "exts": [f["ext"] for f in found],
        "contacts": [f["contact"] for f in found],
        "ats": [None if f["at"] is None else f["at"].replace(tzinfo=None) for f in found],
        "project": project_id,
    })
    return max(result.rowcount, 0)


def link_converted(session_factory: SessionFactory, *, integration: str, integration_id: int, project_id: int) -> int:
    """Point converted Leads' users at their Contact's user once it exists; returns links made."""
    with session_factory() as session:
        # A link needs the Contact's user from this integration: without Contact users (an
        # integration that syncs Leads only) no converted Lead can be linked, so none is read.
        if not session.scalar(select(exists().where(User.integration_id == integration_id,
                                                    User.source_object == "Contact"))):
            return 0
        pending = session.execute(
            select(User.id, User.converted_contact_id).where(
                User.integration_id == integration_id, User.source_object == "Lead",
                User.converted_contact_id.is_not(None), User.converted_to.is_(None))
        ).all()
        if not pending:
            return 0
        wanted = {row.id: external_id(integration, "Contact", row.converted_contact_id) for row in pending}
        present: set[str] = set()
        targets = sorted(set(wanted.values()))
        for start in range(0, len(targets), BATCH):
            present.update(session.scalars(select(User.external_id).where(
                User.project_id == project_id, User.external_id.in_(targets[start : start + BATCH]))))
        links = [{"uid": uid, "to": ext} for uid, ext in wanted.items() if ext in present]
        if links:
            session.connection().execute(
                update(User).where(User.id == bindparam("uid")).values(converted_to=bindparam("to")), links)
        return len(links)
