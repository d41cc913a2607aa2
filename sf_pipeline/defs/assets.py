"""The sync as three partitioned assets: Salesforce records → user changes → Spotzee users.

Each body is a few calls into ``sf_pipeline.sync.service``; what passes between them is a small
manifest naming Parquet chunk files, never the records themselves.
"""


import time
from collections.abc import Callable
from typing import Any, TypeVar

import dagster as dg

from sf_pipeline.defs.partitions import integrations
from sf_pipeline.defs.resources import SfPipelineResource
from sf_pipeline.salesforce.errors import TransientError
from sf_pipeline.sync import service
from sf_pipeline.sync.manifests import ChangeManifest, ExtractManifest

FULL_SYNC_TAG = "sf_pipeline/full"
# Dagster retries a step only for errors worth retrying (the client already retried each call).
RETRY_POLICY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
T = TypeVar("T")


def guarded(context: dg.AssetExecutionContext, resource: SfPipelineResource, step: Callable[[], T]) -> T:
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
                                   duration_s=time.perf_counter() - started)
            context.log.error(f"Sync failed: {message}")
            # ``from None``: the user-facing reason is the message; no chained traceback in the run.
            raise dg.Failure(description=message, allow_retries=False) from None
        context.log.warning(f"Transient failure, retrying (attempt {context.retry_number + 1}): {message}")
        raise


def _md(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


@dg.asset(
    partitions_def=integrations,
    group_name="salesforce_sync",
    kinds={"salesforce", "parquet"},
    retry_policy=RETRY_POLICY,
    description="Records matching each object's sync rules, pulled from Salesforce (full on the first run, "
    "then incrementally by LastModifiedDate).",
)
def salesforce_records(context: dg.AssetExecutionContext, sf_pipeline: SfPipelineResource) -> dg.MaterializeResult[Any]:
    full = context.run.tags.get(FULL_SYNC_TAG) == "true"
    manifest = guarded(context, sf_pipeline, lambda: service.extract(
        sf_pipeline.services(), context.partition_key, context.run.run_id, full=full))
    for obj in manifest.objects:
        context.log.info(
            f"{obj.object_name}: fetched {obj.fetched} of {obj.total} ({'full' if obj.full else 'incremental'}), "
            f"watermark {obj.watermark_before} → {obj.watermark_after}"
        )
    return dg.MaterializeResult(
        value=manifest,
        metadata=_md({
            "fetched": manifest.fetched,
            "api_calls": manifest.api_calls,
            "duration_s": manifest.duration_s,
            "mode": ", ".join(f"{o.object_name}: {'full' if o.full else 'incremental'}" for o in manifest.objects),
            "watermark_before": ", ".join(f"{o.object_name}: {o.watermark_before}" for o in manifest.objects),
            "watermark_after": ", ".join(f"{o.object_name}: {o.watermark_after}" for o in manifest.objects),
        }),
    )


@dg.asset(
    partitions_def=integrations,
    group_name="salesforce_sync",
    kinds={"python", "parquet"},
    retry_policy=RETRY_POLICY,
    description="Extracted records mapped to user properties and compared with Spotzee users by external ID.",
)
def user_changes(
    context: dg.AssetExecutionContext, sf_pipeline: SfPipelineResource, salesforce_records: ExtractManifest
) -> dg.MaterializeResult[Any]:
    changes = guarded(context, sf_pipeline, lambda: service.diff(sf_pipeline.services(), salesforce_records))
    counts = changes.counts
    for warning in changes.warnings[:20]:
        context.log.warning(f"Invalid value dropped: {warning}")
    if counts.invalid_values > 20:
        context.log.warning(f"{counts.invalid_values} invalid values dropped in all (first 20 shown)")
    return dg.MaterializeResult(
        value=changes,
        metadata={"created": counts.created, "updated": counts.updated, "unchanged": counts.unchanged,
                  "deleted": counts.deleted, "skipped_deleted": counts.skipped,
                  "invalid_values": counts.invalid_values, "invalid_records": counts.invalid_records,
                  "duration_s": changes.duration_s},
    )


@dg.asset(
    partitions_def=integrations,
    group_name="salesforce_sync",
    kinds={"sql"},
    retry_policy=RETRY_POLICY,
    description="Spotzee users upserted by external ID; the watermark moves only when this succeeds.",
)
def spotzee_users(
    context: dg.AssetExecutionContext, sf_pipeline: SfPipelineResource, user_changes: ChangeManifest
) -> dg.MaterializeResult[Any]:
    summary = guarded(context, sf_pipeline, lambda: service.upsert(sf_pipeline.services(), user_changes))
    context.log.info(
        f"Sync completed: {summary.created} created, {summary.updated} updated, "
        f"{summary.unchanged} unchanged, {summary.deleted} deleted, "
        f"{summary.invalid_values} invalid values dropped"
    )
    watermarks = summary.as_dict()["watermarks"]
    # Drift per object as plain numbers too: Dagster plots numeric metadata across materializations.
    drift_numbers = {f"drift_{k}": dg.MetadataValue.int(v) for k, v in summary.drift.items()}
    return dg.MaterializeResult(
        metadata={
            **summary.counts(),
            **drift_numbers,
            "drift": dg.MetadataValue.json(summary.drift),
            "watermark_before": dg.MetadataValue.json({k: v["before"] for k, v in watermarks.items()}),
            "watermark_after": dg.MetadataValue.json({k: v["after"] for k, v in watermarks.items()}),
        }
    )
