"""Where the sync's manifests go between steps: a folder of the run's own, never shared.

Dagster's default IO manager keeps one file per asset partition, so every run of an integration
would read and overwrite the same manifest. Here a manifest lives beside the run's chunk files,
``<work dir>/<integration>/<run id>/outputs/<asset>.pickle``, so concurrent or successive runs
never see each other's. An asset materialized alone reads its upstream manifest from the run
that last materialized that upstream partition, when that run's files still exist.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import dagster as dg


class RunScopedIOManager(dg.IOManager):
    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir

    def _path(self, partition: str, run_id: str, asset_key: dg.AssetKey) -> Path:
        return self.work_dir / partition / run_id / "outputs" / f"{asset_key.to_python_identifier()}.pickle"

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None:
            return  # an asset that only reports metadata (the upsert) has nothing to pass on
        path = self._path(context.asset_partition_key, context.run_id, context.asset_key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(pickle.dumps(obj))
        tmp.replace(path)
        context.add_output_metadata({"path": dg.MetadataValue.path(str(path))})

    def load_input(self, context: dg.InputContext) -> Any:
        partition, key = context.asset_partition_key, context.asset_key
        path = self._path(partition, context.step_context.run_id, key)
        if not path.exists():
            path = self._latest_path(context, partition, key)
        context.add_input_metadata({"path": dg.MetadataValue.path(str(path))})
        return pickle.loads(path.read_bytes())

    def _latest_path(self, context: dg.InputContext, partition: str, key: dg.AssetKey) -> Path:
        records = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
        ).records
        path = self._path(partition, records[0].run_id, key) if records else None
        if path is None or not path.exists():
            raise dg.Failure(
                description=(
                    f"'{key.to_user_string()}' for '{partition}' has no output from an earlier run to read "
                    "(a run's files are removed when it ends): materialize it in the same run, for "
                    "example with 'Materialize all' on the sync's assets"
                ),
                allow_retries=False,
            )
        return path


# Function-style so the folder comes from whichever ``sf_pipeline`` resource the run is given
# (tests and deployments configure it; a bound instance would ignore their override). Requiring
# ``run_lease`` makes every run that writes a sync output hold its integration's lease.
@dg.io_manager(required_resource_keys={"sf_pipeline", "run_lease"})
def run_scoped_io_manager(init_context: dg.InitResourceContext) -> RunScopedIOManager:
    return RunScopedIOManager(init_context.resources.sf_pipeline.services().settings.work_dir)
