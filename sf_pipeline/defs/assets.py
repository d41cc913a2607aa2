"""The sync as three partitioned assets: Salesforce records → user changes → Spotzee users.

They are one subsettable multi-asset, one step: the three stages hand each other small manifests
naming Parquet chunk files under the run's own folder, and those files live only as long as the
run. So whatever the UI selects, a run never reads another run's intermediates:

- any selection that includes ``spotzee_users`` (Materialize on it alone, Materialize all, a
  backfill) runs extract → diff → upsert for the partition and reports a materialization for each
  selected asset;
- a selection of only ``salesforce_records`` and/or ``user_changes`` is refused before anything is
  read or written (their output is meaningless without the upsert that consumes it).

A full re-sync is run config (``SyncConfig.full``, the launchpad's config editor); the
``sf_pipeline/full`` tag still works for runs launched by older scripts.
"""


import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import dagster as dg
from pydantic import Field

from sf_pipeline.defs.partitions import integrations
from sf_pipeline.defs.resources import SfPipelineResource
from sf_pipeline.defs.run_log import RunLog
from sf_pipeline.salesforce.errors import TransientError
from sf_pipeline.sync import service
from sf_pipeline.sync.lifecycle import failure_is_local, warning_total
from sf_pipeline.sync.manifests import ChangeManifest, ExtractManifest, SyncSummary

SYNC_OP = "salesforce_sync"
FULL_SYNC_TAG = "sf_pipeline/full"
RECORDS = dg.AssetKey("salesforce_records")
CHANGES = dg.AssetKey("user_changes")
USERS = dg.AssetKey("spotzee_users")
# Dagster retries a step only for errors worth retrying (the client already retried each call).
RETRY_POLICY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
T = TypeVar("T")


class SyncConfig(dg.Config):  # type: ignore[misc]
    """Run config for a sync: the launch dialog's Config section, or the launchpad."""

    full: bool = Field(
        default=False,
        description="Re-read every matching record from Salesforce instead of only those changed since "
        "the last sync (use after fixing data in Salesforce or in Spotzee).",
    )


class SelectionRefused(dg.Failure):  # type: ignore[misc]
    pass


def guarded(
    context: dg.AssetExecutionContext, resource: SfPipelineResource, log: RunLog, step: Callable[[], T]
) -> T:
    """Run a stage; on a final failure record ``sync_failed`` and set Error before Dagster sees it."""
    started = time.perf_counter()
    try:
        return step()
    except Exception as exc:
        retryable = isinstance(exc, TransientError)
        final = not retryable or context.retry_number >= RETRY_POLICY.max_retries
        message = str(exc) or type(exc).__name__
        if final:
            service.record_failure(resource.services(), context.partition_key, context.run.run_id, message,
                                   duration_s=time.perf_counter() - started, local=failure_is_local(exc))
            log.echo()
            # ``from None``: the user-facing reason is the message; no chained traceback in the run.
            raise dg.Failure(description=message, allow_retries=False) from None
        log.echo()
        context.log.warning(f"Transient failure, retrying (attempt {context.retry_number + 1}): {message}")
        raise


def refuse_partial_selection(selected: set[dg.AssetKey]) -> None:
    if USERS not in selected:
        names = " and ".join(sorted(k.to_user_string() for k in selected))
        raise SelectionRefused(
            description=f"Nothing was synced: {names} only exist within a sync run. To sync, materialize "
            "spotzee_users for the partition (it runs all three stages); nothing was read or written.",
            allow_retries=False,
        )


def full_sync_requested(context: dg.AssetExecutionContext, config: SyncConfig) -> bool:
    return config.full or context.run.tags.get(FULL_SYNC_TAG) == "true"


def _md(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def records_metadata(manifest: ExtractManifest) -> dict[str, Any]:
    return _md({
        "fetched": manifest.fetched,
        "api_calls": manifest.api_calls,
        "apis": dg.MetadataValue.json({o.object_name: o.api for o in manifest.objects}),
        "duration_s": manifest.duration_s,
        "mode": ", ".join(f"{o.object_name}: {'full' if o.full else 'incremental'}" for o in manifest.objects),
        "watermark_before": ", ".join(f"{o.object_name}: {o.watermark_before}" for o in manifest.objects),
        "watermark_after": ", ".join(f"{o.object_name}: {o.watermark_after}" for o in manifest.objects),
    })


def changes_metadata(changes: ChangeManifest) -> dict[str, Any]:
    counts = changes.counts
    return {"created": counts.created, "updated": counts.updated, "unchanged": counts.unchanged,
            "deleted": counts.deleted, "skipped_deleted": counts.skipped,
            "invalid_values": counts.invalid_values, "invalid_records": counts.invalid_records,
            "duration_s": changes.duration_s}


def users_metadata(summary: SyncSummary) -> dict[str, Any]:
    watermarks = summary.as_dict()["watermarks"]
    # Drift per object as plain numbers too: Dagster plots numeric metadata across materializations.
    drift_numbers = {f"drift_{k}": dg.MetadataValue.int(v) for k, v in summary.drift.items()}
    return {
        **summary.counts(),
        **drift_numbers,
        "drift": dg.MetadataValue.json(summary.drift),
        "watermark_before": dg.MetadataValue.json({k: v["before"] for k, v in watermarks.items()}),
        "watermark_after": dg.MetadataValue.json({k: v["after"] for k, v in watermarks.items()}),
    }


@dg.multi_asset(
    name=SYNC_OP,
    specs=[
        dg.AssetSpec(RECORDS, kinds={"salesforce", "parquet"},
                     description="Records matching each object's sync rules, pulled from Salesforce (full on "
                     "the first run, then incrementally by LastModifiedDate). Chunk files kept for the run only."),
        dg.AssetSpec(CHANGES, deps=[RECORDS], kinds={"python", "parquet"},
                     description="Extracted records mapped to user properties and compared with Spotzee users "
                     "by external ID. Chunk files kept for the run only."),
        dg.AssetSpec(USERS, deps=[CHANGES], kinds={"sql"},
                     description="Spotzee users upserted by external ID; the watermark moves only when this "
                     "succeeds. Materialize it for a partition to sync that integration now."),
    ],
    partitions_def=integrations,
    group_name="salesforce_sync",
    can_subset=True,
    retry_policy=RETRY_POLICY,
)
def salesforce_sync(
    context: dg.AssetExecutionContext, config: SyncConfig, sf_pipeline: SfPipelineResource,
    run_lease: dg.ResourceParam[None],  # the run holds its integration's lease (defs/run_lease.py)
) -> Iterator[dg.MaterializeResult[Any]]:
    selected = set(context.selected_asset_keys)
    refuse_partial_selection(selected)
    name, run_id = context.partition_key, context.run.run_id
    services = sf_pipeline.services()
    log = RunLog(context.log, services, run_id)
    full = full_sync_requested(context, config)

    manifest = guarded(context, sf_pipeline, log, lambda: service.extract(services, name, run_id, full=full))
    log.echo()
    for obj in manifest.objects:
        context.log.info(
            f"{obj.object_name}: fetched {obj.fetched} of {obj.total} ({'full' if obj.full else 'incremental'}), "
            f"watermark {obj.watermark_before} → {obj.watermark_after}, over {obj.api.upper()} ({obj.api_reason})"
        )
        if obj.api_reason and "fell back" in obj.api_reason:
            context.log.warning(f"{obj.object_name}: {obj.api_reason}")
    if RECORDS in selected:
        yield dg.MaterializeResult(asset_key=RECORDS, metadata=records_metadata(manifest))

    # The upsert writes each change chunk as the diff finishes it (see ``service.start_upsert``).
    applier = guarded(context, sf_pipeline, log, lambda: service.start_upsert(services, name))
    try:
        changes = guarded(context, sf_pipeline, log, lambda: service.diff(services, manifest, applier=applier))
        total = warning_total(changes)
        if total:
            context.log.warning(f"{total} warnings (values dropped or records skipped); first "
                                f"{len(changes.warnings)} shown of {total}")
        for warning in changes.warnings:
            context.log.warning(f"Invalid value dropped: {warning}")
        if CHANGES in selected:
            yield dg.MaterializeResult(asset_key=CHANGES, metadata=changes_metadata(changes))

        summary = guarded(context, sf_pipeline, log, lambda: service.upsert(services, changes, applier=applier))
    finally:
        applier.abort()  # a run that failed or was stopped leaves no writer behind
    log.echo()
    yield dg.MaterializeResult(asset_key=USERS, metadata=users_metadata(summary))
