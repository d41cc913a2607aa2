"""Reconciliation: what incremental syncs cannot see, found by comparing Ids.

An incremental sync only sees records whose ``LastModifiedDate`` moved and that still match the
rules. It misses:

- records purged from Salesforce (hard-deleted, emptied from the Recycle Bin, or deleted more
  than 15 days before the sync that would have seen ``IsDeleted``): no query returns them again;
- records that left the rules (a Lead whose Rating went from Hot to Cold): still there, but no
  rule-filtered query returns them;
- records that match the rules but never became users (a run that lost them, a rule whose match
  changed without the record changing).

Per object, reconciliation takes the Ids under the rules (a full sync's own extract, or an
Id-only scan: ``SELECT Id FROM X WHERE <rules>``, over a Bulk API 2.0 ``query`` job when the
integration's ``api`` option and the object's ``COUNT()`` call for it, REST otherwise), compares
them with the stored users, asks ``queryAll`` about the users left over (by Id, in batches), and
then:

- a user whose record is gone from ``queryAll`` → ``deleted``, ``deleted_reason = 'purged'``;
- a user whose record is in the Recycle Bin → ``deleted``, ``deleted_reason = 'deleted'``;
- a user whose record exists outside the rules → ``in_scope = false`` (true again when it
  matches the rules again), and no longer ``deleted`` if it was: a record undeleted while
  outside the rules is never fetched by a sync, so only here does its user learn of it;
- a record under the rules with no user, or whose user is flagged → fetched again through the
  normal extract → diff → upsert path.

Users are flagged, never removed. Only a record ``queryAll`` no longer returns is flagged purged,
so a user whose record exists is never flagged deleted. The flags are written in one transaction
after every Salesforce call has succeeded: an interrupted reconciliation leaves no flag, and the
re-fetched users it may have written are as correct as any sync's (the upsert is idempotent).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import bindparam, exists, func, select, update
from sqlalchemy.orm import Session

from sf_pipeline.mapping import ResolvedMapping
from sf_pipeline.salesforce.bulk import BulkJobFailed, BulkQueryClient
from sf_pipeline.salesforce.describe import ObjectDescribe
from sf_pipeline.salesforce.errors import SalesforceError
from sf_pipeline.storage.models import Integration, User
from sf_pipeline.storage.users import StoredUsers
from sf_pipeline.sync.api_choice import ApiChoice, choose_by_estimate
from sf_pipeline.sync.bulk_extract import FATAL_ERRORS, Journal, abort_quietly
from sf_pipeline.sync.chunks import DEFAULT_ROWS_PER_CHUNK, read_chunks
from sf_pipeline.sync.diff import diff_object
from sf_pipeline.sync.extract import PAGE_SIZE, RestBatches, arrow_schema, extract_object
from sf_pipeline.sync.manifests import (
    DELETED,
    IN_SCOPE,
    OUT_OF_SCOPE,
    PURGED,
    ExtractedObject,
    ObjectReconciliation,
)
from sf_pipeline.sync.plan import ObjectPlan
from sf_pipeline.sync.upsert import apply_chunks

# Salesforce empties the Recycle Bin after 15 days: a sync older than that may have missed deletes.
RECYCLE_BIN_HORIZON = timedelta(days=15)
DEFAULT_EVERY_DAYS = 7
# Ids per ``WHERE Id IN (...)`` query: 200 quoted 18-character Ids keep the URL near 4 KB.
ID_BATCH = 200
# Above this many records to fetch again, one rule-filtered query is cheaper than Id batches.
REFETCH_BY_ID_MAX = 20_000

log = logging.getLogger("sf_pipeline.sync")
ID_SCHEMA = pa.schema([pa.field("Id", pa.string())])

SessionFactory = Callable[[], AbstractContextManager[Session]]


class PageLike(Protocol):
    records: list[dict[str, Any]]
    total_size: int


class ReconcileClient(Protocol):
    api_calls: int

    def query_pages(self, soql: str, *, include_deleted: bool = False, batch_size: int = PAGE_SIZE) -> Any: ...

    def count(self, soql_count: str) -> int: ...

    def describe(self, object_name: str) -> ObjectDescribe: ...


@dataclass(frozen=True)
class ObjectTarget:
    """What reconciling one object needs: its rules, and its mapping with the fields a sync selects."""

    object_name: str
    where: str | None
    parents: tuple[str, ...]
    mapping: ResolvedMapping


@dataclass
class Scan:
    """The Ids under an object's rules (live records) and any known to be in the Recycle Bin."""

    live: set[str] = field(default_factory=set)
    binned: set[str] = field(default_factory=set)
    source: str = "rest"
    # Why this API scanned (``api: bulk``, the count against the threshold, a Bulk fallback).
    reason: str | None = None


def due_reasons(integration: Integration, *, now: datetime, full_objects: Sequence[str] = ()) -> list[str]:
    """Why the sync now running should also reconcile (empty: it need not)."""
    reasons = []
    if full_objects:
        reasons.append("full sync")
    last = integration.last_synced_at
    if last is not None and now - last > RECYCLE_BIN_HORIZON:
        reasons.append("last successful sync is older than the 15-day Recycle Bin horizon")
    every = timedelta(days=integration.reconcile_every_days or DEFAULT_EVERY_DAYS)
    if last is not None and (integration.last_reconciled_at is None or now - integration.last_reconciled_at >= every):
        reasons.append(f"scheduled (every {integration.reconcile_every_days or DEFAULT_EVERY_DAYS} days)")
    return reasons


def scan_from_chunks(chunk_paths: Iterable[str]) -> Scan:
    """A full extract already holds every record under the rules (``queryAll``: binned ones too)."""
    scan = Scan(source="extract")
    for table in read_chunks(list(chunk_paths)):
        ids = table.column("Id")
        deleted = pc.fill_null(table.column("IsDeleted"), False)
        scan.live.update(pc.filter(ids, pc.invert(deleted)).to_pylist())
        scan.binned.update(pc.filter(ids, deleted).to_pylist())
    return scan


def id_soql(object_name: str, where: str | None) -> str:
    return f"SELECT Id FROM {object_name}" + (f" WHERE {where}" if where else "")


def scan_ids(client: ReconcileClient, object_name: str, where: str | None, *, page_size: int = PAGE_SIZE,
             reason: str | None = None) -> Scan:
    """The Id-only scan over REST: ``query`` (not ``queryAll``), so only live records."""
    scan = Scan(source="rest", reason=reason)
    for page in client.query_pages(id_soql(object_name, where), include_deleted=False, batch_size=page_size):
        scan.live.update(r["Id"] for r in page.records)
    return scan


def choose_scan_api(setting: str, org_count: int, threshold: int) -> ApiChoice:
    """The extract's rule (``sf_pipeline.sync.api_choice``) with the object's ``COUNT()`` under
    the rules as the estimate: the Id scan returns exactly those records."""
    if setting == "rest":
        return ApiChoice("rest", "api: rest")
    if setting == "bulk":
        return ApiChoice("bulk", "api: bulk")
    choice = choose_by_estimate(org_count, threshold)
    return ApiChoice(choice.api, choice.reason.replace("incremental estimate", "COUNT()"))


def scan_ids_bulk(bulk: BulkQueryClient, journal: Journal, object_name: str, where: str | None, *,
                  expected: int | None = None) -> Scan:
    """The Id-only scan as a Bulk API 2.0 ``query`` job (live records only, as over REST): one job,
    its status polls, then one results call per page (``maxRecords``, 50,000 by default), each
    page's Ids added to the set as it arrives. The job is written down in the journal while open
    and aborted if the scan gives up on it. Raises what the job or a page raised."""
    job = bulk.create(id_soql(object_name, where), include_deleted=False)
    journal.remember(object_name, job.id)
    try:
        done = bulk.wait(job.id, expected=expected)
        scan = Scan(source="bulk")
        seen = 0
        for page in bulk.pages(job.id, ID_SCHEMA):
            ids = page.table.column("Id").to_pylist()
            seen += len(ids)
            scan.live.update(ids)
        if seen != done.records_processed:
            raise BulkJobFailed(f"Bulk API job {job.id} reported {done.records_processed} records but its pages "
                                f"held {seen}", error_code="CountMismatch")
    except BaseException:
        abort_quietly(bulk, job.id, journal)
        raise
    journal.forget(job.id)
    return scan


def scan_with(client: ReconcileClient, bulk: BulkQueryClient, journal: Journal, object_name: str,
              where: str | None, choice: ApiChoice, *, org_count: int | None = None,
              page_size: int = PAGE_SIZE) -> Scan:
    """The Id-only scan over the chosen API. A Bulk job that cannot be created, ends ``Failed`` or
    cannot be read falls back to REST, logged with the reason (as the extract does); an API limit
    or a rejected login ends the run, since REST would meet it too."""
    if choice.api == "rest":
        return scan_ids(client, object_name, where, page_size=page_size, reason=choice.reason)
    try:
        scan = scan_ids_bulk(bulk, journal, object_name, where, expected=org_count)
    except FATAL_ERRORS as exc:
        log.error("%s: Bulk API 2.0 Id scan stopped: %s", object_name, exc.message)
        raise
    except SalesforceError as exc:
        log.warning("%s: Bulk API 2.0 Id scan failed (%s); falling back to REST", object_name, exc.message)
        return scan_ids(client, object_name, where, page_size=page_size,
                        reason=f"fell back from Bulk API 2.0: {exc.message}")
    scan.reason = choice.reason
    return scan


def _batches(values: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])


def _id_list(ids: Iterable[str]) -> str:
    # Salesforce Ids are [A-Za-z0-9]{18}: nothing to escape.
    return ", ".join(f"'{i}'" for i in ids)


def lookup_existing(client: ReconcileClient, object_name: str, ids: Sequence[str]) -> dict[str, bool]:
    """``queryAll`` by Id: the Ids that still exist, each with its ``IsDeleted``."""
    found: dict[str, bool] = {}
    for batch in _batches(sorted(ids), ID_BATCH):
        soql = f"SELECT Id, IsDeleted FROM {object_name} WHERE Id IN ({_id_list(batch)})"
        for page in client.query_pages(soql, include_deleted=True, batch_size=PAGE_SIZE):
            found.update((r["Id"], bool(r["IsDeleted"])) for r in page.records)
    return found


@dataclass(frozen=True)
class _Stored:
    user_id: int
    deleted: bool
    in_scope: bool
    reason: str | None


def _stored_users(session: Session, integration_id: int, object_name: str) -> dict[str, _Stored]:
    rows = session.execute(
        select(User.id, User.source_id, User.deleted, User.in_scope, User.deleted_reason).where(
            User.integration_id == integration_id, User.source_object == object_name)
        .execution_options(yield_per=10_000)
    )
    return {r.source_id: _Stored(r.id, bool(r.deleted), bool(r.in_scope), r.deleted_reason) for r in rows
            if r.source_id}


def compare_object(
    client: ReconcileClient,
    session_factory: SessionFactory,
    target: ObjectTarget,
    scan: Scan,
    *,
    integration_id: int,
    work_dir: Path,
    fetched: Iterable[str] = (),
    page_size: int = PAGE_SIZE,
    rows_per_chunk: int = DEFAULT_ROWS_PER_CHUNK,
) -> ObjectReconciliation:
    """The Salesforce side of reconciling one object: compare the scan with the stored users, ask
    ``queryAll`` about the leftovers, fetch again (into extract chunks) the records under the rules
    that lack a current user and are not among ``fetched`` (this run's own live records). Reads
    the users table, writes nothing to it (see ``write_flags`` and the stages)."""
    name = target.object_name
    result = ObjectReconciliation(object_name=name, scan=scan.source, scan_reason=scan.reason,
                                  in_scope_ids=len(scan.live))
    with session_factory() as session:
        stored = _stored_users(session, integration_id, name)
    leftover = [sf_id for sf_id in stored if sf_id not in scan.live]
    # Binned records seen by a full extract need no lookup; the rest are asked about by Id.
    unknown = [sf_id for sf_id in leftover if sf_id not in scan.binned
               and not (stored[sf_id].deleted and stored[sf_id].reason == PURGED)]
    existing = lookup_existing(client, name, unknown) if unknown else {}
    existing.update((sf_id, True) for sf_id in leftover if sf_id in scan.binned)
    already = fetched if isinstance(fetched, (set, frozenset)) else set(fetched)
    refetch = sorted(sf_id for sf_id in scan.live if sf_id not in already
                     and ((s := stored.get(sf_id)) is None or s.deleted or not s.in_scope))
    if refetch:
        result.refetch = _refetch(client, target, refetch, work_dir=work_dir, page_size=page_size,
                                  rows_per_chunk=rows_per_chunk)
        result.refetched = len(refetch)
        result.created = sum(1 for sf_id in refetch if sf_id not in stored)
    for sf_id in leftover:
        user = stored[sf_id]
        if sf_id not in existing:
            if not (user.deleted and user.reason == PURGED):
                result.flags[PURGED].append(sf_id)
        elif existing[sf_id]:
            if not user.deleted:
                result.flags[DELETED].append(sf_id)
        elif user.in_scope or user.deleted:
            # Live but outside the rules; a deleted user's record was undeleted there.
            result.flags[OUT_OF_SCOPE].append(sf_id)
    result.flags[IN_SCOPE] = [sf_id for sf_id in scan.live if sf_id in stored and not stored[sf_id].in_scope]
    result.purged, result.deleted, result.out_of_scope, result.back_in_scope = (
        len(result.flags[k]) for k in (PURGED, DELETED, OUT_OF_SCOPE, IN_SCOPE))
    return result


def write_flags(
    session_factory: SessionFactory, results: Iterable[ObjectReconciliation], *, integration: str, project_id: int,
    now: datetime,
) -> None:
    """Every object's flags in one transaction, after every Salesforce call of the run."""
    by_ext = (User.project_id == project_id) & (User.external_id == bindparam("ext"))
    statements = {
        PURGED: update(User).where(by_ext).values(deleted=True, deleted_reason=PURGED, updated_at=now),
        DELETED: update(User).where(by_ext, User.deleted.is_(False)).values(
            deleted=True, deleted_reason=DELETED, updated_at=now),
        # The record exists (queryAll said so): a user flagged deleted is not any more. Never one
        # flagged purged, whose record no query returns again.
        OUT_OF_SCOPE: update(User).where(by_ext, User.deleted_reason.is_(None) | (User.deleted_reason != PURGED))
        .values(in_scope=False, deleted=False, deleted_reason=None, updated_at=now),
        # They match the rules again; the diff may have found no value changed.
        IN_SCOPE: update(User).where(by_ext, User.in_scope.is_(False)).values(in_scope=True, updated_at=now),
    }
    with session_factory() as session:
        connection = session.connection()
        for result in results:
            prefix = f"sf_{integration}_{result.object_name}_"
            for flag, sf_ids in result.flags.items():
                if sf_ids:
                    connection.execute(statements[flag], [{"ext": prefix + i} for i in sf_ids])


def _refetch(
    client: ReconcileClient,
    target: ObjectTarget,
    ids: list[str],
    *,
    work_dir: Path,
    page_size: int,
    rows_per_chunk: int,
) -> ExtractedObject:
    """Fetch these records (still under the rules) into extract chunks, as a sync reads them."""
    if len(ids) > REFETCH_BY_ID_MAX:
        wheres = [target.where]
    else:
        wheres = [" AND ".join(c for c in (f"({target.where})" if target.where else "",
                                           f"Id IN ({_id_list(batch)})") if c)
                  for batch in _batches(ids, ID_BATCH)]
    out = work_dir / f"refetch-{target.object_name}"
    shutil.rmtree(out, ignore_errors=True)
    combined: ExtractedObject | None = None
    for k, where in enumerate(wheres):
        plan = ObjectPlan(object_name=target.object_name, fields=target.mapping.soql_fields, where=where, full=True,
                          watermark=None, since=None, fingerprint="", parents=target.parents)
        batches = RestBatches(client, plan, arrow_schema(target.mapping), page_size=page_size)
        extracted = extract_object(batches, plan, target.mapping, out_dir=out / str(k), rows_per_chunk=rows_per_chunk)
        if combined is None:
            combined = extracted
        else:
            combined.chunk_paths += extracted.chunk_paths
            combined.fetched += extracted.fetched
    assert combined is not None
    combined.total = combined.fetched
    return combined


def apply_refetched(
    session_factory: SessionFactory, refetched: ExtractedObject, *, integration: str, integration_id: int,
    project_id: int, work_dir: Path, now: datetime, rows_per_chunk: int = DEFAULT_ROWS_PER_CHUNK,
) -> int:
    """Diff and upsert records fetched again, as the sync's stages do; returns invalid records."""
    with session_factory() as session:
        stored = StoredUsers(session, project_id, integration_id, refetched.object_name)
        changed = diff_object(refetched, integration=integration, stored=stored,
                              out_dir=work_dir / f"refetch-changes-{refetched.object_name}",
                              rows_per_chunk=rows_per_chunk)
    apply_chunks(session_factory, changed.chunk_paths, project_id=project_id, integration_id=integration_id, now=now)
    return changed.counts.invalid_records


def restore_scope(
    session_factory: SessionFactory, chunk_paths: Iterable[str], *, integration: str, integration_id: int,
    project_id: int, object_name: str, now: datetime,
) -> int:
    """A sync fetched these records under the rules: any of their users flagged out of scope
    matches again. Clears a stale delete reason too. Cheap when nothing is flagged (one EXISTS)."""
    with session_factory() as session:
        session.execute(update(User).where(
            User.integration_id == integration_id, User.source_object == object_name, User.deleted.is_(False),
            User.deleted_reason.is_not(None)).values(deleted_reason=None))
        flagged = session.scalar(select(exists().where(
            User.integration_id == integration_id, User.source_object == object_name, User.in_scope.is_(False))))
    if not flagged:
        return 0
    prefix = f"sf_{integration}_{object_name}_"
    restored = 0
    statement = (update(User).where(User.project_id == project_id, User.external_id == bindparam("ext"),
                                    User.in_scope.is_(False), User.deleted.is_(False))
                 .values(in_scope=True, updated_at=now))
    for table in read_chunks(list(chunk_paths)):
        ids = pc.filter(table.column("Id"), pc.invert(pc.fill_null(table.column("IsDeleted"), False))).to_pylist()
        if not ids:
            continue
        with session_factory() as session:
            result = session.connection().execute(statement, [{"ext": prefix + i} for i in ids])
            restored += max(result.rowcount, 0)
    return restored


def users_in_scope(session: Session, integration_id: int, object_name: str) -> int:
    return int(session.scalar(select(func.count()).select_from(User).where(
        User.integration_id == integration_id, User.source_object == object_name, User.in_scope.is_(True),
        User.deleted.is_(False))) or 0)
