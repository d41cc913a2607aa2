"""The Dagster code location: ``dagster dev -w workspace.yaml`` loads ``defs`` from here."""

import dagster as dg

from sf_pipeline.defs.assets import salesforce_sync
from sf_pipeline.defs.checks import salesforce_health
from sf_pipeline.defs.io_manager import run_scoped_io_manager
from sf_pipeline.defs.jobs import EXECUTOR, health_job, sync_job
from sf_pipeline.defs.reconcile import reconcile_job
from sf_pipeline.defs.resources import SfPipelineResource
from sf_pipeline.defs.run_lease import run_lease
from sf_pipeline.defs.sensors import (
    health_dispatcher,
    run_watchdog,
    sync_canceled_sensor,
    sync_dispatcher,
    sync_failure_sensor,
)

defs = dg.Definitions(
    assets=[salesforce_sync],
    asset_checks=[salesforce_health],
    jobs=[sync_job, health_job, reconcile_job],
    sensors=[sync_dispatcher, health_dispatcher, run_watchdog, sync_failure_sensor, sync_canceled_sensor],
    resources={"sf_pipeline": SfPipelineResource(), "io_manager": run_scoped_io_manager,
               "run_lease": run_lease},
    # Runs launched from the UI (Materialize, backfills) use the implicit asset job: one process too.
    executor=EXECUTOR,
)
