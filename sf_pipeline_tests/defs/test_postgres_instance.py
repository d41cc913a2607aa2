"""Dagster's own storage on PostgreSQL (dagster-postgres, driver named), as production runs it."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml

from sf_pipeline.definitions import defs
from sf_pipeline.sandbox.testing import SandboxHandle
from sf_pipeline_tests.dbs import fresh_postgres_url
from sf_pipeline_tests.harness import dagster_resource, pipeline

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("dagster_env")]


def test_a_sync_runs_on_a_postgres_backed_dagster_instance(
    small_sandbox: SandboxHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fresh_postgres_url() as dagster_url:
        parts = dagster_url.split("@", 1)[1]  # 127.0.0.1:5432/dbname
        host_port, db_name = parts.split("/", 1)
        host, port = host_port.split(":")
        config = yaml.safe_load(Path("dagster.postgres.yaml").read_text())
        home = tmp_path / "dagster"
        home.mkdir()
        (home / "dagster.yaml").write_text(yaml.safe_dump(config))
        for key, value in {"DAGSTER_PG_USERNAME": "postgres", "DAGSTER_PG_PASSWORD": "",
                           "DAGSTER_PG_HOST": host, "DAGSTER_PG_DB": db_name}.items():
            monkeypatch.setenv(key, value)
        assert port == "5432"
        instance = dg.DagsterInstance.from_config(str(home))
        try:
            assert type(instance.run_storage).__name__ == "PooledPostgresRunStorage"
            with pipeline(small_sandbox, f"sqlite:///{tmp_path / 'app.db'}", tmp_path) as p:
                instance.add_dynamic_partitions("integrations", ["acme"])
                result = defs.resolve_job_def("sync_integration").execute_in_process(
                    partition_key="acme", instance=instance, resources={"sf_pipeline": dagster_resource(p)})
                assert result.success
                [record] = instance.get_run_records(dg.RunsFilter(run_ids=[result.run_id]))
                assert record.dagster_run.tags["dagster/partition"] == "acme"
                checks = instance.event_log_storage.get_asset_check_execution_history(
                    dg.AssetCheckKey(dg.AssetKey("spotzee_users"), "credentials"), limit=1)
                assert checks and checks[0].run_id == result.run_id
                assert len(p.users()) > 0
        finally:
            instance.dispose()
