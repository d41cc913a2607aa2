"""Reconciliation as its own partitioned asset and job, so the Dagster UI can launch it for an
integration ("Materialize" on ``users_reconciliation``) and ``sf-pipeline reconcile`` runs it
on the same instance. It runs under the integration's partition, so the run queue's
one-run-per-partition limit keeps it apart from that integration's syncs.

Its metadata carries the per-object drift as numbers (``drift_Lead``, ...), which Dagster
plots across materializations, and the whole summary as JSON.
"""

import dagster as dg

from sf_pipeline.defs.assets import spotzee_users
from sf_pipeline.defs.partitions import integrations
from sf_pipeline.defs.resources import SfPipelineResource
from sf_pipeline.errors import UserError
from sf_pipeline.salesforce.errors import SalesforceError
from sf_pipeline.sync.reconcile_service import run_reconcile
from sf_pipeline.sync.service import HealthCheckFailed

RECONCILE_JOB = "reconcile_integration"
SUMMARY_KEY = "summary"


@dg.asset(
    partitions_def=integrations,
    group_name="salesforce_sync",
    kinds={"salesforce", "sql"},
    deps=[spotzee_users],
    description="An Id-only comparison of the org with the users: purged records flagged deleted, records "
    "outside the rules flagged out of scope, missing ones fetched; drift per object as numeric metadata.",
)
def users_reconciliation(
    context: dg.AssetExecutionContext, sf_pipeline: SfPipelineResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    try:
        summary = run_reconcile(sf_pipeline.services(), context.partition_key, context.run.run_id)
    except (HealthCheckFailed, UserError, SalesforceError, ConnectionError) as exc:
        message = str(exc) or type(exc).__name__
        context.log.error(f"Reconciliation failed: {message}")
        # ``from None``: the reason is the message; no chained traceback in the run.
        raise dg.Failure(description=message, allow_retries=False) from None
    for object_name, reason in summary.get("drift_reasons", {}).items():
        context.log.warning(f"{object_name}: drift {summary['drift'][object_name]} after reconciling: {reason}")
    return dg.MaterializeResult(
        metadata={
            **{f"drift_{name}": dg.MetadataValue.int(value) for name, value in summary["drift"].items()},
            "api_calls": dg.MetadataValue.int(summary["api_calls"]),
            "duration_s": dg.MetadataValue.float(summary["duration_s"]),
            SUMMARY_KEY: dg.MetadataValue.json(summary),
        }
    )


reconcile_job = dg.define_asset_job(
    RECONCILE_JOB,
    selection=dg.AssetSelection.assets(users_reconciliation),
    description="Reconcile one integration (partition) with its org by Id, and measure drift.",
)
