"""A sync, stage by stage, with no Dagster in sight: this module only wires the stages
(``extract``, ``diff``, ``upsert`` in ``sf_pipeline.sync``) to storage and Salesforce. The assets in
``sf_pipeline.defs`` call ``extract``, ``diff`` and ``upsert``; tests and benchmarks can call
``run_sync`` directly."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sf_pipeline import health
from sf_pipeline.mapping import ResolvedMapping, resolve_object_mapping
from sf_pipeline.rules import Rule, compile_where
from sf_pipeline.salesforce.bulk import DEFAULT_PAGE_RECORDS, BulkQueryClient, PollSchedule
from sf_pipeline.salesforce.client import SalesforceClient
from sf_pipeline.secrets import Cipher
from sf_pipeline.settings import Settings
from sf_pipeline.storage.bulk_jobs import JobJournal
from sf_pipeline.storage.database import Database
from sf_pipeline.storage.integrations import get_integration
from sf_pipeline.storage.models import FieldMapping, HealthResult, Integration, SyncRun
from sf_pipeline.storage.users import StoredUsers
from sf_pipeline.sync import lifecycle
from sf_pipeline.sync.api_choice import BULK_THRESHOLD
from sf_pipeline.sync.bulk_extract import ExtractOptions, abort_leftover_jobs, extract_objects
from sf_pipeline.sync.chunks import DEFAULT_ROWS_PER_CHUNK
from sf_pipeline.sync.diff import diff_object
from sf_pipeline.sync.extract import PAGE_SIZE
from sf_pipeline.sync.fields import with_sync_fields
from sf_pipeline.sync.manifests import ChangeManifest, ExtractManifest, SyncSummary
from sf_pipeline.sync.plan import ObjectPlan, plan_object
from sf_pipeline.sync.upsert import ChunkApplier

PROGRESS_EVERY_S = 0.5


@dataclass
class Services:
    """Everything a stage needs, built once per process from settings."""

    settings: Settings
    database: Database
    cipher: Cipher
    open_client: Callable[[str], SalesforceClient]
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # Records per Salesforce page (Sforce-Query-Options batchSize, 200..2000).
    page_size: int = PAGE_SIZE
    # Rows per Parquet chunk, in every stage (small in tests, to exercise many chunks).
    rows_per_chunk: int = DEFAULT_ROWS_PER_CHUNK
    # Bulk API 2.0: records per results page (maxRecords), the incremental estimate above which
    # ``api: auto`` uses Bulk, and how often a job's status is polled.
    bulk_page_records: int = DEFAULT_PAGE_RECORDS
    bulk_threshold: int = BULK_THRESHOLD
    bulk_poll: PollSchedule = field(default_factory=PollSchedule)

    def now(self) -> datetime:
        return self.clock()


def _mapping_key(mappings: list[FieldMapping], object_name: str) -> list[tuple[str, ...]]:
    return [
        (m.field, m.property, m.object_name or "", m.type or "")
        for m in mappings
        if m.object_name in (None, object_name)
    ]


def build_plans(
    client: SalesforceClient, session: Session, integration: Integration, *, force_full: bool
) -> list[tuple[ObjectPlan, ResolvedMapping]]:
    """Each object's plan and its mapping, resolved against describe once for the whole run."""
    states = lifecycle.sync_states(session, integration)
    mappings = list(integration.mappings)
    plans = []
    for obj in integration.objects:
        describe = client.describe(obj.object_name)
        rules = [Rule(**r) for r in obj.rules or []]
        where = compile_where(rules, obj.match, describe) if rules else None  # type: ignore[arg-type]
        mapping = resolve_object_mapping(obj.object_name, mappings, client.describe)
        state = states.get(obj.object_name)
        mapping, parents = with_sync_fields(obj.object_name, mapping, describe)
        plan = plan_object(
            object_name=obj.object_name,
            fields=mapping.soql_fields,
            parents=parents,
            where=where,
            mappings=_mapping_key(mappings, obj.object_name),
            stored_watermark=state.watermark if state else None,
            stored_fingerprint=state.config_fingerprint if state else None,
            force_full=force_full,
            lookback=timedelta(minutes=integration.lookback_minutes),
        )
        plans.append((plan, mapping))
    return plans


def run_dir(services: Services, name: str, run_id: str) -> Path:
    return services.settings.work_dir / name / run_id


def extract(services: Services, name: str, run_id: str, *, full: bool = False) -> ExtractManifest:
    start = time.perf_counter()
    now = services.now()
    with services.database.session() as session:
        integration = get_integration(session, name)
        lifecycle.begin_run(session, integration, run_id, full=full, now=now)
        force_full = full or integration.full_sync_requested
    out = run_dir(services, name, run_id)
    shutil.rmtree(out, ignore_errors=True)  # a retried step starts its chunks afresh
    client = services.open_client(name)
    preflight(services, client, name, run_id, now=now)
    with services.database.session() as session:
        integration = get_integration(session, name)
        plans = build_plans(client, session, integration, force_full=force_full)
        journal = JobJournal(services.database, integration.id, run_id)
        api = integration.api or "auto"
    bulk = BulkQueryClient(client, page_records=services.bulk_page_records, poll=services.bulk_poll)
    abort_leftover_jobs(bulk, journal.leftovers(), journal.forget)
    progress = _Progress(services, run_id)
    objects = extract_objects(
        client, bulk, plans, out_dir=out, journal=journal,
        options=ExtractOptions(api=api, bulk_threshold=services.bulk_threshold, page_size=services.page_size,
                               rows_per_chunk=services.rows_per_chunk, on_page=progress.add,
                               on_total=progress.add_total),
    )
    progress.flush()
    # Imported here: reconcile_service builds on this module's Services and preflight.
    from sf_pipeline.sync.reconcile_service import before_diff

    reconciliation, org_counts = before_diff(services, client, bulk, journal, name, objects, work_dir=out,
                                               now=now)
    return ExtractManifest(
        integration=name,
        run_id=run_id,
        work_dir=str(out),
        objects=objects,
        api_calls=client.api_calls,
        duration_s=round(time.perf_counter() - start, 3),
        org_counts=org_counts,
        reconciliation=reconciliation,
    )


def start_upsert(services: Services, name: str) -> ChunkApplier:
    """The upsert's writer, started before the diff: given to ``diff`` and then ``upsert``, it
    writes each change chunk as soon as the diff has it on disk, so the database works while the
    diff decides the next chunk. Each chunk is idempotent and the watermark moves only when the
    run completes, so a diff that fails after some chunks were written loses nothing: the next
    run reads those records again and finds them unchanged. ``abort()`` it if the run fails."""
    with services.database.session() as session:
        integration = get_integration(session, name)
        project_id, integration_id = integration.project_id, integration.id
    return ChunkApplier(services.database.session, project_id=project_id, integration_id=integration_id,
                        now=services.now())


def diff(services: Services, manifest: ExtractManifest, *, applier: ChunkApplier | None = None) -> ChangeManifest:
    start = time.perf_counter()
    changed = []
    out = Path(manifest.work_dir)
    with services.database.session() as session:
        integration = get_integration(session, manifest.integration)
        for extracted in manifest.objects:
            stored = StoredUsers(session, integration.project_id, integration.id, extracted.object_name)
            changed.append(diff_object(extracted, integration=integration.name, stored=stored, out_dir=out,
                                       rows_per_chunk=services.rows_per_chunk,
                                       on_written=applier.add if applier is not None else None))
    return ChangeManifest(extract=manifest, objects=changed, duration_s=round(time.perf_counter() - start, 3))


def upsert(services: Services, changes: ChangeManifest, *, applier: ChunkApplier | None = None,
           started: float | None = None) -> SyncSummary:
    """Apply the changes (or, with the ``applier`` the diff wrote through, wait for it to finish
    them) and complete the run. Its duration is the three stages' own time, or the time since
    ``started`` when the caller ran them all in one go."""
    upsert_started = time.perf_counter()
    name = changes.extract.integration
    if applier is None:
        start_upsert(services, name).apply(path for obj in changes.objects for path in obj.chunk_paths)
    else:
        applier.close()
    now = services.now()
    # Imported here: reconcile_service builds on this module's Services and preflight.
    from sf_pipeline.sync.reconcile_service import after_sync

    after = after_sync(services, changes, now=now)
    if started is None:
        duration = changes.extract.duration_s + changes.duration_s + (time.perf_counter() - upsert_started)
    else:
        duration = time.perf_counter() - started
    with services.database.session() as session:
        integration = get_integration(session, name)
        summary = lifecycle.complete_run(session, integration, changes, now=services.now(), duration_s=duration,
                                         after=after)
    shutil.rmtree(changes.extract.work_dir, ignore_errors=True)
    return summary


class HealthCheckFailed(Exception):
    """A credentials or field-mappings check failed: the sync stops before writing anything.
    ``local`` when every failure was this machine's (Salesforce could not be reached or trusted)."""

    def __init__(self, message: str, *, local: bool = False) -> None:
        super().__init__(message)
        self.local = local


def preflight(services: Services, client: SalesforceClient, name: str, run_id: str, *, now: datetime) -> None:
    with services.database.session() as session:
        integration = get_integration(session, name)
        outcomes = health.evaluate(client, integration, lifecycle.sync_states(session, integration), now=now,
                                   checks=health.PREFLIGHT_CHECKS)
        health.store(session, integration, outcomes, now=now, run_id=run_id)
        health.update_status(integration, outcomes)
    failed = [o for o in outcomes if not o.passed]
    if failed:
        raise HealthCheckFailed("Health check failed before sync: " + "; ".join(
            f"{o.name.value}: {o.description}" for o in failed), local=all(o.local for o in failed))


def check_health(
    services: Services, name: str, run_id: str | None, checks: Sequence[health.CheckName] = health.ALL_CHECKS
) -> list[health.CheckOutcome]:
    """Evaluate and record the checks. Within a sync run, the preflight's results are reused
    rather than asking Salesforce twice."""
    now = services.now()
    with services.database.session() as session:
        integration = get_integration(session, name)
        reused: dict[health.CheckName, health.CheckOutcome] = {}
        if run_id is not None:
            rows = session.scalars(select(HealthResult).where(HealthResult.run_id == run_id))
            for row in rows:
                details = dict(row.details)
                description = str(details.pop("description", ""))
                reused[health.CheckName(row.check_name)] = health.CheckOutcome(
                    health.CheckName(row.check_name), row.passed, description, details)
        todo = [c for c in checks if c not in reused]
        client = services.open_client(name) if todo else None
        fresh = (health.evaluate(client, integration, lifecycle.sync_states(session, integration), now=now,
                                 checks=todo) if client is not None else [])
        outcomes = {o.name: o for o in [*reused.values(), *fresh]}
        ordered = [outcomes[c] for c in checks]
        health.store(session, integration, fresh, now=now, run_id=run_id)
        health.update_status(integration, ordered)
    return ordered


def record_failure(
    services: Services, name: str, run_id: str, error: str, *, duration_s: float | None, local: bool = False
) -> None:
    with services.database.session() as session:
        integration = get_integration(session, name)
        lifecycle.fail_run(session, integration, run_id, error, now=services.now(), duration_s=duration_s,
                           local=local)


def run_sync(services: Services, name: str, run_id: str, *, full: bool = False) -> SyncSummary:
    """All three stages in one call (tests and benchmarks of the core; Dagster runs them as assets)."""
    started = time.perf_counter()
    applier: ChunkApplier | None = None
    try:
        manifest = extract(services, name, run_id, full=full)
        applier = start_upsert(services, name)
        changes = diff(services, manifest, applier=applier)
        return upsert(services, changes, applier=applier, started=started)
    except Exception as exc:
        record_failure(services, name, run_id, str(exc), duration_s=time.perf_counter() - started,
                       local=lifecycle.failure_is_local(exc))
        raise
    finally:
        if applier is not None:
            applier.abort()  # stops a writer the run gave up on; nothing left to do after close()


class _Progress:
    """Writes fetched/total to the run row about twice a second, for ``sf-pipeline sync``'s bar."""

    def __init__(self, services: Services, run_id: str) -> None:
        self.services = services
        self.run_id = run_id
        self.fetched = 0
        self.total = 0
        self._last = 0.0

    def add_total(self, total: int) -> None:
        self.total += total
        self.flush()

    def add(self, n: int) -> None:
        self.fetched += n
        if time.monotonic() - self._last >= PROGRESS_EVERY_S:
            self.flush()

    def flush(self) -> None:
        self._last = time.monotonic()
        with self.services.database.session() as session:
            session.execute(
                update(SyncRun).where(SyncRun.run_id == self.run_id).values(fetched=self.fetched, total=self.total)
            )
