"""Reconciliation as its own partitioned job, ``reconcile_integration``: the Dagster UI launches
it for an integration from the job's Launchpad (choose the partition), and
``sf-pipeline reconcile`` runs it on the same instance. It runs under the integration's
partition, so the run queue's one-run-per-partition limit keeps it apart from that integration's
syncs.

A job of one op rather than an asset: it changes no data set of its own (it flags users of
``spotzee_users``), and the asset graph keeps its three sync assets. It records an observation
of ``spotzee_users`` for the partition whose metadata carries the drift per object as numbers
(``drift_Lead``, ...; Dagster plots them beside the sync's own) and the whole summary as JSON.
"""

import dagster as dg

from sf_pipeline.defs.partitions import integrations
from sf_pipeline.defs.resources import SfPipelineResource
from sf_pipeline.errors import UserError
from sf_pipeline.salesforce.errors import SalesforceError
from sf_pipeline.sync.reconcile_service import run_reconcile
from sf_pipeline.sync.service import HealthCheckFailed

RECONCILE_JOB = "reconcile_integration"
SUMMARY_KEY = "reconcile_summary"
USERS_ASSET = dg.AssetKey("spotzee_users")


@dg.op(description="Compare the org with the users by Id: purged records flagged deleted, records outside the "
       "rules flagged out of scope, missing ones fetched; drift per object measured.")
def reconcile_users(
    context: dg.OpExecutionContext,
    sf_pipeline: SfPipelineResource,
    run_lease: dg.ResourceParam[None],  # held like a sync's: a reconciliation never interleaves with one
) -> None:
    try:
        summary = run_reconcile(sf_pipeline.services(), context.partition_key, context.run.run_id)
    except (HealthCheckFailed, UserError, SalesforceError, ConnectionError) as exc:
        message = str(exc) or type(exc).__name__
        context.log.error(f"Reconciliation failed: {message}")
        # ``from None``: the reason is the message; no chained traceback in the run.
        raise dg.Failure(description=message, allow_retries=False) from None
    for object_name, reason in summary.get("drift_reasons", {}).items():
        context.log.warning(f"{object_name}: drift {summary['drift'][object_name]} after reconciling: {reason}")
    context.log_event(dg.AssetObservation(
        asset_key=USERS_ASSET,
        partition=context.partition_key,
        metadata={
            **{f"drift_{name}": dg.MetadataValue.int(value) for name, value in summary["drift"].items()},
            "reconcile_api_calls": dg.MetadataValue.int(summary["api_calls"]),
            SUMMARY_KEY: dg.MetadataValue.json(summary),
        },
    ))


@dg.job(name=RECONCILE_JOB, partitions_def=integrations,
        description="Reconcile one integration (partition) with its org by Id, and measure drift.")
def reconcile_job() -> None:
    reconcile_users()
