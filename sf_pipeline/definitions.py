"""The Dagster code location: ``dagster dev -w workspace.yaml`` loads ``defs`` from here."""

import warnings

import dagster as dg

# Partitioned asset checks are a preview feature in Dagster 1.13; the version is pinned exactly.
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
warnings.filterwarnings("ignore", category=dg.BetaWarning)

from sf_pipeline.defs.assets import salesforce_records, spotzee_users, user_changes  # noqa: E402
from sf_pipeline.defs.checks import salesforce_health  # noqa: E402
from sf_pipeline.defs.jobs import health_job, sync_job  # noqa: E402
from sf_pipeline.defs.resources import SfPipelineResource  # noqa: E402
from sf_pipeline.defs.sensors import health_dispatcher, sync_dispatcher  # noqa: E402

defs = dg.Definitions(
    assets=[salesforce_records, user_changes, spotzee_users],
    asset_checks=[salesforce_health],
    jobs=[sync_job, health_job],
    sensors=[sync_dispatcher, health_dispatcher],
    resources={"sf_pipeline": SfPipelineResource()},
)
