"""The Dagster code location: ``dagster dev -w workspace.yaml`` loads ``defs`` from here."""

import dagster as dg

from sf_pipeline.defs.assets import salesforce_sync
from sf_pipeline.defs.checks import salesforce_health
from sf_pipeline.defs.jobs import health_job, sync_job
from sf_pipeline.defs.reconcile import reconcile_job
from sf_pipeline.defs.resources import SfPipelineResource
from sf_pipeline.defs.sensors import health_dispatcher, sync_dispatcher

defs = dg.Definitions(
    assets=[salesforce_sync],
    asset_checks=[salesforce_health],
    jobs=[sync_job, health_job, reconcile_job],
    sensors=[sync_dispatcher, health_dispatcher],
    resources={"sf_pipeline": SfPipelineResource()},
)
