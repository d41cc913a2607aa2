import dagster as dg

from sf_pipeline.defs.assets import salesforce_sync
from sf_pipeline.defs.checks import salesforce_health

SYNC_JOB = "sync_integration"
HEALTH_JOB = "health_checks"

# One process per run: the in-process executor runs the steps one after another in the run's
# worker, instead of starting a Python process (and importing everything again) for each step.
# The steps are sequential anyway (extract → diff → upsert → checks), so nothing is lost, and the
# run's resources, its integration lease among them, are set up once for the whole run.
EXECUTOR = dg.in_process_executor

# Selecting the assets also selects their checks, so every sync run ends with the health checks.
sync_job = dg.define_asset_job(
    SYNC_JOB,
    selection=dg.AssetSelection.assets(salesforce_sync),
    description="Sync one integration (partition): extract → diff → upsert, then the health checks.",
    # One process per run: the steps run one after another anyway, and a process per step costs
    # a Python start and a code-location import each (several CPU-seconds, most of a small
    # incremental sync). Docker and Kubernetes launchers already isolate each run in its own
    # container.
    executor_def=EXECUTOR,
)

health_job = dg.define_asset_job(
    HEALTH_JOB,
    selection=dg.AssetSelection.checks(*salesforce_health.check_keys),
    description="The four health checks for one integration, without syncing.",
    executor_def=EXECUTOR,
)
