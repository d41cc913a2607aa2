"""Reconciliation and drift as steps of a run, over ``reconcile``, ``drift`` and ``conversions``.

Only the extract talks to Salesforce (the diff and upsert never do), so a run's reconciliation
is split the same way:

- In a sync's extract (``before_diff``), after the object's own records: when reconciliation is
  due (``reconcile.due_reasons``: a full sync, a last successful sync older than the 15-day
  Recycle Bin horizon, or the integration's ``reconcile_every_days`` elapsed), the Id scans,
  the lookups by Id and the records to fetch again (their chunks join the object's extract, so
  the diff and upsert treat them as any other); with one ``COUNT()`` per object for drift, taken
  first because it also chooses the Id scan's API.
- In the sync's upsert (``after_sync``), with no Salesforce call: users of records fetched under
  the rules are in scope again, converted Leads get their links, the flags are written in one
  transaction, and drift is measured against the counts.
- On demand (``run_reconcile``: ``sf-pipeline reconcile NAME`` and the Dagster ``reconcile``
  job): the credentials and field-mappings checks, then every object's Salesforce side, then
  the writes.

The Id scan uses a Bulk API 2.0 ``query`` job when the integration's ``api`` is ``bulk``, or
``auto`` with the object's ``COUNT()`` above ``Services.bulk_threshold`` (the extract's rule,
with the count as the estimate); REST otherwise, and REST again when the job fails.

In every case each Salesforce call of the run precedes its first flag: an interrupted run flags
nothing. Neither moves a watermark: reconciliation re-reads by Id, never by ``LastModifiedDate``.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from sf_pipeline.events import EventType, record_event
from sf_pipeline.mapping import resolve_object_mapping
from sf_pipeline.rules import Rule, compile_where
from sf_pipeline.salesforce.bulk import BulkQueryClient
from sf_pipeline.storage.bulk_jobs import JobJournal
from sf_pipeline.storage.integrations import get_integration
from sf_pipeline.storage.models import Integration, IntegrationStatus
from sf_pipeline.sync import conversions, drift, reconcile
from sf_pipeline.sync.bulk_extract import Journal, abort_leftover_jobs
from sf_pipeline.sync.chunks import read_chunks
from sf_pipeline.sync.fields import with_sync_fields
from sf_pipeline.sync.lifecycle import SetupIncompleteError
from sf_pipeline.sync.manifests import (
    AfterSync,
    ChangeManifest,
    ExtractedObject,
    ObjectReconciliation,
    Reconciliation,
)
from sf_pipeline.sync.reconcile import ObjectTarget, ReconcileClient
from sf_pipeline.sync.service import Services, preflight, run_dir


def object_targets(client: ReconcileClient, integration: Integration) -> list[ObjectTarget]:
    """Each selected object's rules and mapping with the sync's extra fields, resolved against
    describe (the same compilation a sync's plan uses; a client asks describe once per object)."""
    mappings = list(integration.mappings)
    found = []
    for obj in integration.objects:
        describe = client.describe(obj.object_name)
        rules = [Rule(**r) for r in obj.rules or []]
        where = compile_where(rules, obj.match, describe) if rules else None  # type: ignore[arg-type]
        mapping, parents = with_sync_fields(
            obj.object_name, resolve_object_mapping(obj.object_name, mappings, client.describe), describe)
        found.append(ObjectTarget(obj.object_name, where, parents, mapping))
    return found


def _live_ids(chunk_paths: Iterable[str]) -> set[str]:
    ids: set[str] = set()
    for table in read_chunks(list(chunk_paths)):
        live = pc.invert(pc.fill_null(table.column("IsDeleted"), False))
        ids.update(pc.filter(table.column("Id"), live).to_pylist())
    return ids


def _scan(services: Services, client: ReconcileClient, bulk: BulkQueryClient, journal: Journal, api: str,
          object_name: str, where: str | None, org_count: int) -> reconcile.Scan:
    choice = reconcile.choose_scan_api(api, org_count, services.bulk_threshold)
    return reconcile.scan_with(client, bulk, journal, object_name, where, choice, org_count=org_count,
                               page_size=services.page_size)


def before_diff(
    services: Services, client: ReconcileClient, bulk: BulkQueryClient, journal: Journal, name: str,
    objects: list[ExtractedObject], *, work_dir: Path, now: datetime,
) -> tuple[Reconciliation | None, dict[str, int]]:
    """A sync's reconciliation, Salesforce side (see the module docstring); returns it (or None
    when not due) and each object's COUNT() under its rules."""
    with services.database.session() as session:
        integration = get_integration(session, name)
        full = [o.object_name for o in objects if o.full]
        reasons = reconcile.due_reasons(integration, now=now, full_objects=full)
        everything = any(not r.startswith("full") for r in reasons) or len(full) == len(objects)
        wanted = {o.object_name for o in objects} if everything else set(full)
        targets = {t.object_name: t for t in object_targets(client, integration)
                   if t.object_name in wanted} if reasons else {}
        integration_id = integration.id
        api = integration.api or "auto"
    counts = drift.org_counts(client, [(o.object_name, o.where) for o in objects])
    done = None
    if reasons:
        done = Reconciliation(reasons=reasons, everything=everything)
        for obj in objects:
            target = targets.get(obj.object_name)
            if target is None:
                continue
            scan = (reconcile.scan_from_chunks(obj.chunk_paths) if obj.full
                    else _scan(services, client, bulk, journal, api, obj.object_name, obj.where,
                               counts[obj.object_name]))
            # A full extract is its own scan: its live Ids are the ones this run fetched, and the
            # same set serves as both (at 1,000,000 records a second copy is about 150 MB).
            fetched = scan.live if obj.full else _live_ids(obj.chunk_paths)
            found = reconcile.compare_object(
                client, services.database.session, target, scan, integration_id=integration_id,
                work_dir=work_dir / "reconcile", fetched=fetched, page_size=services.page_size,
                rows_per_chunk=services.rows_per_chunk)
            if found.refetch is not None:
                # Records fetched again join the object's extract: the diff and upsert write them.
                obj.chunk_paths += found.refetch.chunk_paths
                obj.fetched += found.refetch.fetched
                obj.total += found.refetch.fetched
                found.refetch = None
            done.objects.append(found)
    return done, counts


def _finish(
    services: Services, name: str, counts: dict[str, int], reconciled: Sequence[ObjectReconciliation], *,
    now: datetime, all_reconciled: bool,
) -> dict[str, Any]:
    """Flags, links and drift, stored on the integration. No Salesforce call."""
    session_factory = services.database.session
    with session_factory() as session:
        integration = get_integration(session, name)
        integration_id, project_id = integration.id, integration.project_id
    reconcile.write_flags(session_factory, reconciled, integration=name, project_id=project_id, now=now)
    links = conversions.link_converted(session_factory, integration=name, integration_id=integration_id,
                                       project_id=project_id)
    measured = drift.measure(session_factory, integration_id, counts)
    numbers = drift.as_numbers(measured)
    with session_factory() as session:
        integration = get_integration(session, name)
        integration.drift = numbers
        integration.drift_at = now
        if all_reconciled:
            integration.last_reconciled_at = now
    result: dict[str, Any] = {"drift": numbers, "links_made": links}
    if reconciled:
        result["drift_reasons"] = drift.explain(measured, {r.object_name: r for r in reconciled})
    return result


def after_sync(services: Services, changes: ChangeManifest, *, now: datetime) -> AfterSync:
    """The sync's own reconciliation steps in its upsert, after the chunks are written and before
    the run completes: what goes into its summary (``drift``, and ``reconcile`` when it ran)."""
    extract = changes.extract
    name = extract.integration
    session_factory = services.database.session
    with session_factory() as session:
        integration = get_integration(session, name)
        integration_id, project_id = integration.id, integration.project_id
    for obj in extract.objects:
        reconcile.restore_scope(session_factory, obj.chunk_paths, integration=name, integration_id=integration_id,
                                project_id=project_id, object_name=obj.object_name, now=now)
        if obj.object_name == "Lead":
            conversions.record_conversions(session_factory, obj.chunk_paths, integration=name,
                                           project_id=project_id)
    done = extract.reconciliation
    result = _finish(services, name, extract.org_counts, done.objects if done else [], now=now,
                     all_reconciled=done is not None and done.everything)
    summary = None
    if done is not None:
        summary = {"reasons": done.reasons, "objects": {r.object_name: r.as_dict() for r in done.objects},
                   "drift_reasons": result.get("drift_reasons", {}), "links_made": result["links_made"]}
    return AfterSync(drift=result["drift"], reconcile=summary, api_calls=0)


def run_reconcile(services: Services, name: str, run_id: str) -> dict[str, Any]:
    """Reconcile every object of ``name`` now. Raises ``HealthCheckFailed`` (nothing written)
    when the credentials or field-mappings check fails."""
    started = time.perf_counter()
    now = services.now()
    with services.database.session() as session:
        integration = get_integration(session, name)
        if integration.status == IntegrationStatus.INCOMPLETE.value:
            raise SetupIncompleteError(
                f"integration '{name}' is Incomplete: connect it and apply its objects and field mappings first")
    client = services.open_client(name)
    preflight(services, client, name, run_id, now=now)
    work = run_dir(services, name, run_id) / "reconcile"
    session_factory = services.database.session
    try:
        with session_factory() as session:
            integration = get_integration(session, name)
            targets = object_targets(client, integration)
            integration_id, project_id = integration.id, integration.project_id
            api = integration.api or "auto"
        journal = JobJournal(services.database, integration_id, run_id)
        bulk = BulkQueryClient(client, page_records=services.bulk_page_records, poll=services.bulk_poll)
        abort_leftover_jobs(bulk, journal.leftovers(), journal.forget)
        counts = drift.org_counts(client, [(t.object_name, t.where) for t in targets])
        found = [reconcile.compare_object(
            client, session_factory, target,
            _scan(services, client, bulk, journal, api, target.object_name, target.where, counts[target.object_name]),
            integration_id=integration_id, work_dir=work, page_size=services.page_size,
            rows_per_chunk=services.rows_per_chunk) for target in targets]
        # Every Salesforce call is done: now the writes.
        for result in found:
            if result.refetch is None:
                continue
            result.invalid_records = reconcile.apply_refetched(
                session_factory, result.refetch, integration=name, integration_id=integration_id,
                project_id=project_id, work_dir=work, now=now, rows_per_chunk=services.rows_per_chunk)
            reconcile.restore_scope(session_factory, result.refetch.chunk_paths, integration=name,
                                    integration_id=integration_id, project_id=project_id,
                                    object_name=result.object_name, now=now)
            if result.object_name == "Lead":
                conversions.record_conversions(session_factory, result.refetch.chunk_paths, integration=name,
                                               project_id=project_id)
        summary = _finish(services, name, counts, found, now=now, all_reconciled=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    flagged = sum(r.purged + r.deleted + r.out_of_scope + r.back_in_scope for r in found)
    created = sum(r.created for r in found)
    with session_factory() as session:
        integration = get_integration(session, name)
        if created:
            record_event(session, integration, EventType.RECORDS_IMPORTED, run_id=run_id, at=now,
                         counts={"created": created}, details={"reconcile": True})
        if flagged:
            record_event(session, integration, EventType.RECORDS_UPDATED, run_id=run_id, at=now,
                         counts={"updated": sum(r.out_of_scope + r.back_in_scope for r in found),
                                 "deleted": sum(r.purged + r.deleted for r in found)},
                         details={"reconcile": True})
    return {
        "status": "completed",
        "objects": {r.object_name: r.as_dict() for r in found},
        **summary,
        "api_calls": client.api_calls,
        "duration_s": round(time.perf_counter() - started, 3),
    }
