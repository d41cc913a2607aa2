"""``sf-pipeline sync`` SIGKILLed mid-sync (a lost terminal, OOM): its Dagster run would stay
STARTED forever. The watchdog sensor, evaluated for real against the instance, finds the lease's
heartbeat stale and fails the run; ``sync_failed`` is logged with the reason, the integration is
Error, the dispatcher requests a fresh run, and the next sync succeeds. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import dagster as dg
import pytest

from sf_pipeline import leases
from sf_pipeline.defs.sensors import run_watchdog, sync_dispatcher
from sf_pipeline.sandbox.testing import SandboxHandle
from sf_pipeline.storage.integrations import get_integration
from sf_pipeline_tests.harness import dagster_resource, pipeline
from sf_pipeline_tests.runs.procs import SF_PIPELINE, cli_env, events, sync_runs, wait_until

pytestmark = pytest.mark.usefixtures("dagster_env")


def test_a_killed_cli_sync_is_failed_by_the_watchdog_and_the_next_sync_runs(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = {leases.TTL_ENV: "4", leases.HEARTBEAT_ENV: "0.5"}
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    with pipeline(small_sandbox, database_url, tmp_path) as p:
        env = cli_env(p, **settings)
        small_sandbox.control.inject_fault("query", "latency", count=2, latency_ms=8000)
        cli = subprocess.Popen([SF_PIPELINE, "sync", p.name, "--json"], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        try:
            run = wait_until(lambda: [r for r in sync_runs(p) if r.status == "started"], timeout_s=300,
                             what="the CLI's sync to start")[0]
            holder = leases.holder(p.database, p.name)
            assert holder is not None and holder.run_id == run.run_id and holder.pid == cli.pid
            cli.send_signal(signal.SIGKILL)
        finally:
            if cli.poll() is None:
                cli.kill()
            cli.wait()

        instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
        try:
            assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED  # type: ignore[union-attr]

            def watchdog_reaps() -> bool:
                with dg.build_sensor_context(instance=instance,
                                             resources={"sf_pipeline": dagster_resource(p)}) as context:
                    result = run_watchdog(context)
                return isinstance(result, dg.SkipReason) and run.run_id in (result.skip_message or "")

            wait_until(watchdog_reaps, timeout_s=120, what="the watchdog to fail the dead run", poll_s=1)
            ended = instance.get_run_by_id(run.run_id)
            assert ended is not None and ended.status == dg.DagsterRunStatus.FAILURE
            message = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[0].dagster_event
            assert message is not None and "no heartbeat from pid" in str(message.message)
            failed = [e for e in events(p, "sync_failed") if e.run_id == run.run_id]
            assert len(failed) == 1 and failed[0].error == message.message
            assert [r.status for r in sync_runs(p) if r.run_id == run.run_id] == ["failed"]
            assert leases.holder(p.database, p.name) is None
            assert not (p.services.settings.work_dir / p.name / run.run_id).exists()
            with p.database.session() as session:
                assert get_integration(session, p.name).status == "error"

            context = dg.build_sensor_context(instance=instance, resources={"sf_pipeline": dagster_resource(p)})
            tick = sync_dispatcher(context)
            assert isinstance(tick, dg.SensorResult)
            assert [r.partition_key for r in tick.run_requests or []] == [p.name], "a fresh run is requested"
        finally:
            instance.dispose()

        done = subprocess.run([SF_PIPELINE, "sync", p.name, "--json"], env=env, capture_output=True, text=True,
                              timeout=900)
        assert done.returncode == 0, done.stderr[-2000:]
        assert json.loads(done.stdout)["status"] == "succeeded"
        with p.database.session() as session:
            assert get_integration(session, p.name).status == "active"
