"""The four health checks as partitioned asset checks on ``spotzee_users``: one result per
integration, run at the end of every sync run, on their own by the health sensor, and from the
UI's Checks tab.

Why ``can_subset=True``: the UI enables a check's Execute button only when the check can run
without its siblings (GraphQL ``canExecuteIndividually``); a non-subsettable multi-check puts all
four in one execution set, which greys out Execute and Execute all.

Which integration a run checks:

- a sync run, or a run with a partition key, checks that partition;
- a checks-only run carries its partition as the ``dagster/partition`` tag (the health sensor,
  ``sf-pipeline health``);
- the Checks tab's *Execute all* launches a run with no partition at all (Dagster 1.13's UI has
  no partition picker there): it checks every integration that is set up and not paused, records
  each result against that integration's partition, and reports the overall outcome.

A run that only checks (it synced nothing) fails when a check fails, so a failing health run is
red in the Runs list rather than a green "Success"; the results are recorded first.
"""


from collections.abc import Iterator, Sequence
from typing import Any

import dagster as dg

from sf_pipeline.defs.assets import USERS
from sf_pipeline.defs.partitions import integrations
from sf_pipeline.defs.resources import SfPipelineResource
from sf_pipeline.defs.run_log import RunLog
from sf_pipeline.health import CheckName, CheckOutcome
from sf_pipeline.storage.integrations import list_integrations
from sf_pipeline.storage.models import IntegrationStatus, SyncRun
from sf_pipeline.sync import service
from sf_pipeline.sync.service import Services

PARTITION_TAG = "dagster/partition"
DESCRIPTIONS = {
    CheckName.CREDENTIALS: "The stored OAuth tokens authorise a call to Salesforce.",
    CheckName.FIELD_MAPPINGS: "Every mapped Salesforce field still exists on its object and is readable.",
    CheckName.API_LIMITS: "Remaining daily API requests are above 10% of the maximum.",
    CheckName.SYNC_STALENESS: "The last successful sync is within twice the configured frequency.",
}

CHECK_SPECS = [
    dg.AssetCheckSpec(name.value, asset=USERS, partitions_def=integrations, description=DESCRIPTIONS[name])
    for name in CheckName
]


class HealthRunFailed(dg.Failure):  # type: ignore[misc]
    pass


def partition_of(context: dg.AssetCheckExecutionContext) -> str | None:
    # A run of only partitioned checks carries its partition as the ``dagster/partition`` tag.
    tagged = context.run.tags.get(PARTITION_TAG)
    if tagged:
        return tagged
    return context.partition_key if context.has_partition_key else None


def selected_checks(context: dg.AssetCheckExecutionContext) -> list[CheckName]:
    chosen = {key.name for key in context.selected_asset_check_keys}
    return [name for name in CheckName if name.value in chosen]


def result_metadata(outcome: CheckOutcome) -> dict[str, Any]:
    return {k: v for k, v in outcome.metadata.items() if v is not None}


def checkable(services: Services) -> list[str]:
    """Integrations a health run covers when it names none: set up (credentials) and not paused."""
    with services.database.session() as session:
        return [
            row.name for row in list_integrations(session)
            if row.credential is not None
            and row.status not in (IntegrationStatus.INACTIVE.value, IntegrationStatus.INCOMPLETE.value)
        ]


def synced_in_run(services: Services, run_id: str) -> bool:
    with services.database.session() as session:
        return session.get(SyncRun, run_id) is not None


def fail_health_run(failed: Sequence[str]) -> None:
    raise HealthRunFailed(
        description="Health check failed: " + "; ".join(failed) + ". The integration is in Error until a "
        "passing health run or a successful sync.",
        allow_retries=False,
    )


@dg.multi_asset_check(specs=CHECK_SPECS, name="salesforce_health", can_subset=True)
def salesforce_health(
    context: dg.AssetCheckExecutionContext, sf_pipeline: SfPipelineResource
) -> Iterator[dg.AssetCheckResult]:
    services = sf_pipeline.services()
    run_id = context.run.run_id
    checks = selected_checks(context)
    name = partition_of(context)
    if name is None:
        check_every_integration(context, services, checks)
        return
    log = RunLog(context.log, services, run_id)
    outcomes = service.check_health(services, name, run_id, checks)
    log.echo()
    for outcome in outcomes:
        yield dg.AssetCheckResult(
            check_name=outcome.name.value,
            passed=outcome.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=outcome.description,
            metadata=result_metadata(outcome),
        )
    failed = [f"{o.name.value}: {o.description}" for o in outcomes if not o.passed]
    if failed and not synced_in_run(services, run_id):
        fail_health_run(failed)


def check_every_integration(
    context: dg.AssetCheckExecutionContext, services: Services, checks: Sequence[CheckName]
) -> None:
    """Every result of a run without a partition is logged as an ``AssetCheckEvaluation``: one per
    integration on its partition, then the overall one (no partition) that completes the run's
    planned execution. Dagster 1.13 cannot turn a yielded ``AssetCheckResult`` into an evaluation
    here: finding the target materialization of a partitioned asset needs a partition key."""
    names = checkable(services)
    by_check: dict[CheckName, dict[str, CheckOutcome]] = {c: {} for c in checks}
    for name in names:
        # No run id: within one run, stored results are looked up by run id to reuse a sync's
        # preflight, which would hand one integration's results to the next.
        for outcome in service.check_health(services, name, None, checks):
            by_check[outcome.name][name] = outcome
            level = context.log.info if outcome.passed else context.log.warning
            level(f"health_check check={outcome.name.value} {'passed' if outcome.passed else 'failed'} "
                  f"integration={name}" + ("" if outcome.passed else f": {outcome.description}"))
            record(context, outcome.name, outcome.passed, outcome.description, result_metadata(outcome), name)
    failed: list[str] = []
    for check in checks:
        outcomes = by_check[check]
        failing = sorted(n for n, o in outcomes.items() if not o.passed)
        failed.extend(f"{check.value} ({n}): {outcomes[n].description}" for n in failing)
        summary = (f"Failing for {', '.join(failing)}." if failing
                   else f"Passed for every integration checked ({len(outcomes)}).")
        record(context, check, not failing, summary,
               {"integrations_checked": sorted(outcomes), "failing": failing}, None)
    if failed:
        fail_health_run(failed)


def record(
    context: dg.AssetCheckExecutionContext, check: CheckName, passed: bool, description: str,
    metadata: dict[str, Any], partition: str | None,
) -> None:
    # ``log_event`` records an AssetCheckEvaluation (its body handles the type; the annotation
    # lists only the older event types).
    context.op_execution_context.log_event(dg.AssetCheckEvaluation(  # type: ignore[arg-type]
        asset_key=USERS, check_name=check.value, passed=passed, partition=partition,
        severity=dg.AssetCheckSeverity.ERROR, description=description, metadata=metadata,
    ))
