"""The four health checks as partitioned asset checks on ``spotzee_users``: one result per
integration, run at the end of every sync run and on their own by the health sensor."""


from collections.abc import Iterator

import dagster as dg

from sf_pipeline.defs.assets import spotzee_users
from sf_pipeline.defs.partitions import integrations
from sf_pipeline.defs.resources import SfPipelineResource
from sf_pipeline.health import CheckName
from sf_pipeline.sync import service

DESCRIPTIONS = {
    CheckName.CREDENTIALS: "The stored OAuth tokens authorise a call to Salesforce.",
    CheckName.FIELD_MAPPINGS: "Every mapped Salesforce field still exists on its object and is readable.",
    CheckName.API_LIMITS: "Remaining daily API requests are above 10% of the maximum.",
    CheckName.SYNC_STALENESS: "The last successful sync is within twice the configured frequency.",
}

CHECK_SPECS = [
    dg.AssetCheckSpec(name.value, asset=spotzee_users, partitions_def=integrations, description=DESCRIPTIONS[name])
    for name in CheckName
]


def partition_of(context: dg.AssetCheckExecutionContext) -> str:
    # A run of only partitioned checks carries its partition as the ``dagster/partition`` tag.
    tagged = context.run.tags.get("dagster/partition")
    return tagged if tagged else context.partition_key


@dg.multi_asset_check(specs=CHECK_SPECS, name="salesforce_health")
def salesforce_health(
    context: dg.AssetCheckExecutionContext, sf_pipeline: SfPipelineResource
) -> Iterator[dg.AssetCheckResult]:
    name = partition_of(context)
    for outcome in service.check_health(sf_pipeline.services(), name, context.run.run_id):
        if not outcome.passed:
            context.log.warning(f"Health check {outcome.name.value} failed: {outcome.description}")
        yield dg.AssetCheckResult(
            check_name=outcome.name.value,
            passed=outcome.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=outcome.description,
            metadata={k: v for k, v in outcome.metadata.items() if v is not None},
        )
