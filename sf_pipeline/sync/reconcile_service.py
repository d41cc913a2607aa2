"""Reconciliation and drift as steps of a run, over ``reconcile``, ``drift`` and ``conversions``.

- After every sync's upsert (``after_sync``): users of records the sync fetched under the rules
  are in scope again, converted Leads get their links, the sync reconciles when it is due
  (``reconcile.due_reasons``: a full sync, a last successful sync older than the 15-day Recycle
  Bin horizon, or the integration's ``reconcile_every_days`` elapsed), and drift is measured.
- On demand (``run_reconcile``: ``sf-pipeline reconcile NAME`` and the Dagster ``reconcile`` job):
  the credentials and field-mappings checks first (a failure stops it before anything is
  written), then every object is reconciled and drift measured.

Neither moves a watermark: reconciliation re-reads by Id, never by ``LastModifiedDate``.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sf_pipeline.events import EventType, record_event
from sf_pipeline.mapping import resolve_object_mapping
from sf_pipeline.rules import Rule, compile_where
from sf_pipeline.storage.integrations import get_integration
from sf_pipeline.storage.models import Integration, IntegrationStatus
from sf_pipeline.sync import conversions, drift, reconcile
from sf_pipeline.sync.fields import with_sync_fields
from sf_pipeline.sync.lifecycle import SetupIncompleteError
from sf_pipeline.sync.manifests import AfterSync, ChangeManifest
from sf_pipeline.sync.reconcile import ObjectReconciliation, ObjectTarget, ReconcileClient
from sf_pipeline.sync.service import Services, preflight, run_dir


def object_targets(client: ReconcileClient, integration: Integration) -> list[ObjectTarget]:
    """Each selected object's rules, fields and mapping, resolved against describe (the same
    compilation a sync's plan uses)."""
    mappings = list(integration.mappings)
    found = []
    for obj in integration.objects:
        describe = client.describe(obj.object_name)
        rules = [Rule(**r) for r in obj.rules or []]
        where = compile_where(rules, obj.match, describe) if rules else None
        mapping, parents = with_sync_fields(
            obj.object_name, resolve_object_mapping(obj.object_name, mappings, client.describe), describe)
        found.append(ObjectTarget(obj.object_name, where, parents, mapping))
    return found


def _reconcile_objects(
    services: Services, client: ReconcileClient, integration: Integration, targets: Sequence[ObjectTarget],
    scans: dict[str, reconcile.Scan], *, run_id: str, now: datetime,
) -> dict[str, ObjectReconciliation]:
    work = run_dir(services, integration.name, run_id) / "reconcile"
    done: dict[str, ObjectReconciliation] = {}
    session_factory = services.database.session

    def converted(paths: list[str]) -> None:
        conversions.record_conversions(session_factory, paths, integration=integration.name,
                                       project_id=integration.project_id)

    try:
        for target in targets:
            scan = scans.get(target.object_name) or reconcile.scan_ids(
                client, target.object_name, target.where, page_size=services.page_size)
            done[target.object_name] = reconcile.reconcile_object(
                client, session_factory, target, scan, integration=integration.name,
                integration_id=integration.id, project_id=integration.project_id, work_dir=work, now=now,
                page_size=services.page_size, rows_per_chunk=services.rows_per_chunk,
                on_refetched=converted if target.object_name == "Lead" else None)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return done


def _finish(
    services: Services, client: ReconcileClient, name: str, objects: Sequence[tuple[str, str | None]],
    reconciled: dict[str, ObjectReconciliation], *, now: datetime, all_reconciled: bool,
) -> dict[str, Any]:
    """Count the org, then write the flags, links and drift. The COUNT() calls come first so that
    every Salesforce call of the run precedes the flags: an interrupted run writes no flag."""
    session_factory = services.database.session
    counts = drift.org_counts(client, objects)
    reconcile.write_flags(session_factory, reconciled.values(), now=now)
    with session_factory() as session:
        integration = get_integration(session, name)
        integration_id, project_id = integration.id, integration.project_id
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
        result["drift_reasons"] = drift.explain(measured, reconciled)
    return result


def after_sync(services: Services, changes: ChangeManifest, *, now: datetime) -> AfterSync:
    """The sync's own reconciliation steps, run after its upsert and before it completes:
    what goes into the run's summary (``drift``, and ``reconcile`` when it ran)."""
    extract = changes.extract
    name = extract.integration
    session_factory = services.database.session
    with session_factory() as session:
        integration = get_integration(session, name)
        integration_id, project_id = integration.id, integration.project_id
        full = [o.object_name for o in extract.objects if o.full]
        reasons = reconcile.due_reasons(integration, now=now, full_objects=full)
    for obj in extract.objects:
        reconcile.restore_scope(session_factory, obj.chunk_paths, integration=name, integration_id=integration_id,
                                project_id=project_id, object_name=obj.object_name, now=now)
        if obj.object_name == "Lead":
            conversions.record_conversions(session_factory, obj.chunk_paths, integration=name,
                                           project_id=project_id)
    client = services.open_client(name)
    reconciled: dict[str, ObjectReconciliation] = {}
    everything = any(not r.startswith("full") for r in reasons) or len(full) == len(extract.objects)
    if reasons:
        with session_factory() as session:
            integration = get_integration(session, name)
            wanted = {o.object_name for o in extract.objects} if everything else set(full)
            targets = [t for t in object_targets(client, integration) if t.object_name in wanted]
            scans = {o.object_name: reconcile.scan_from_chunks(o.chunk_paths) for o in extract.objects if o.full}
            reconciled = _reconcile_objects(services, client, integration, targets, scans, run_id=extract.run_id,
                                            now=now)
    result = _finish(services, client, name, [(o.object_name, o.where) for o in extract.objects], reconciled,
                     now=now, all_reconciled=bool(reasons) and everything)
    done = None
    if reasons:
        done = {"reasons": reasons, "objects": {k: v.as_dict() for k, v in reconciled.items()},
                "drift_reasons": result.get("drift_reasons", {}), "links_made": result["links_made"]}
    return AfterSync(drift=result["drift"], reconcile=done, api_calls=client.api_calls)


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
    with services.database.session() as session:
        integration = get_integration(session, name)
        targets = object_targets(client, integration)
        reconciled = _reconcile_objects(services, client, integration, targets, {}, run_id=run_id, now=now)
    result = _finish(services, client, name, [(t.object_name, t.where) for t in targets], reconciled, now=now,
                     all_reconciled=True)
    flagged = sum(r.purged + r.deleted + r.out_of_scope + r.back_in_scope for r in reconciled.values())
    created = sum(r.created for r in reconciled.values())
    with services.database.session() as session:
        integration = get_integration(session, name)
        if created:
            record_event(session, integration, EventType.RECORDS_IMPORTED, run_id=run_id, at=now,
                         counts={"created": created}, details={"reconcile": True})
        if flagged:
            record_event(session, integration, EventType.RECORDS_UPDATED, run_id=run_id, at=now,
                         counts={"updated": sum(r.out_of_scope + r.back_in_scope for r in reconciled.values()),
                                 "deleted": sum(r.purged + r.deleted for r in reconciled.values())},
                         details={"reconcile": True})
    return {
        "status": "completed",
        "objects": {k: v.as_dict() for k, v in reconciled.items()},
        **result,
        "api_calls": client.api_calls,
        "duration_s": round(time.perf_counter() - started, 3),
    }
