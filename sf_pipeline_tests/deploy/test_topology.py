"""The production topology on one machine: Dagster's storage on PostgreSQL, the code location as a
``dagster api grpc`` server named in a ``grpc_server`` workspace, one ``dagster-daemon`` and the
webserver, all real processes, scheduling 50 integrations with mixed frequencies through ten
simulated minutes.

Simulated time comes from a clock file (``SF_PIPELINE_CLOCK_FILE``) that the dispatcher, evaluated
in the code server, and every run process read. The test moves it one minute at a time, waits for
a dispatcher tick that started after the move, then for the runs it requested to finish.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from sf_pipeline.clock import CLOCK_FILE_ENV, write_clock_file
from sf_pipeline.sandbox.testing import serve_in_thread
from sf_pipeline.secrets import Cipher
from sf_pipeline.storage.database import Database
from sf_pipeline.storage.models import SyncRun
from sf_pipeline_tests.conftest import trust
from sf_pipeline_tests.dbs import fresh_postgres_url
from sf_pipeline_tests.deploy.fleet import connect_fleet, plan, set_schedule
from sf_pipeline_tests.deploy.stack import Stack, production_stack, sensor_ticks, wait_for
from sf_pipeline_tests.harness import TEST_KEY

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.deployment, pytest.mark.timeout(1800)]

FREQUENCIES = [5] * 5 + [10] * 5 + [15] * 10 + [30] * 10 + [60] * 20
SIMULATED_MINUTES = 10
TICK_BUDGET_S = 2.0
JOB = "sync_integration"
DISPATCHER = "sync_dispatcher"
UNFINISHED = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
              dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def finished_tick_after(stack: Stack, instance: dg.DagsterInstance, moment: float) -> Any:
    stack.check_alive()
    for tick in sensor_ticks(instance, DISPATCHER):
        if tick.timestamp > moment and tick.status.value != "STARTED":
            assert tick.status.value != "FAILURE", tick.error
            return tick
    return None


def no_unfinished_runs(stack: Stack, instance: dg.DagsterInstance) -> bool:
    stack.check_alive()
    return not instance.get_run_records(dg.RunsFilter(job_name=JOB, statuses=UNFINISHED))


def test_fifty_integrations_over_ten_simulated_minutes_run_every_due_sync_once_without_overlap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    members = plan(FREQUENCIES)
    start = datetime.now(UTC).replace(second=0, microsecond=0)
    expected = Counter(
        f"{m.name}:{int((start + timedelta(minutes=minute)).timestamp())}"
        for m in members for minute in m.due_minutes(SIMULATED_MINUTES)
    )
    clock_file = tmp_path / "clock"
    write_clock_file(clock_file, start)

    with (serve_in_thread(records=40, seed=5) as sandbox, fresh_postgres_url() as app_url,
          fresh_postgres_url() as dagster_url):
        trust(monkeypatch, sandbox)
        database = Database(app_url)
        database.migrate()
        try:
            connect_fleet(sandbox, database, Cipher(TEST_KEY, source="the test key"), members)
            set_schedule(database, members, start)
            assert sandbox.ca_bundle
            env = {
                "SF_PIPELINE_DATABASE_URL": app_url,
                "SF_PIPELINE_HOME": str(tmp_path / "home"),
                "SF_PIPELINE_SECRET_KEY": TEST_KEY,
                CLOCK_FILE_ENV: str(clock_file),
                "REQUESTS_CA_BUNDLE": sandbox.ca_bundle,
                "SSL_CERT_FILE": sandbox.ca_bundle,
            }
            # The health sensor is stopped through the webserver before the daemon starts: this test
            # counts the dispatcher's sync runs only.
            with production_stack(tmp_path / "stack", dagster_database_url=dagster_url, env=env,
                                  max_concurrent_runs=4, stopped_sensors=["health_dispatcher"]) as stack:
                instance = dg.DagsterInstance.get()
                assert type(instance.run_storage).__name__ == "PooledPostgresRunStorage"
                moment = 0.0  # the first tick counts: the clock was set before the daemon started
                for minute in range(SIMULATED_MINUTES + 1):
                    if minute:
                        moment = datetime.now(UTC).timestamp()
                        write_clock_file(clock_file, start + timedelta(minutes=minute))
                    wait_for(lambda: finished_tick_after(stack, instance, moment), timeout=300,  # noqa: B023
                             what=f"a dispatcher tick at simulated minute {minute}")
                    wait_for(lambda: no_unfinished_runs(stack, instance), timeout=600,
                             what=f"the runs of simulated minute {minute}")
                records = instance.get_run_records(dg.RunsFilter(job_name=JOB))
                ticks = sensor_ticks(instance, DISPATCHER)
                grpc_port = stack.grpc_port
        finally:
            with database.session() as session:
                sync_runs = {r.run_id: r.status for r in session.query(SyncRun)}
            database.dispose()

    # Every due sync ran exactly once, each for its own due slot, and succeeded.
    run_keys = Counter(r.dagster_run.tags.get("dagster/run_key") for r in records)
    assert run_keys == expected, f"unexpected: {run_keys - expected}, missing: {expected - run_keys}"
    assert len(records) == sum(expected.values()) == 29
    assert {r.dagster_run.status for r in records} == {dg.DagsterRunStatus.SUCCESS}
    assert {r.dagster_run.run_id: "succeeded" for r in records} == sync_runs
    # Each run was loaded from the gRPC code server the workspace names.
    origins = {r.dagster_run.remote_job_origin.repository_origin.code_location_origin for r in records}
    assert {(type(o).__name__, o.port) for o in origins} == {("GrpcServerCodeLocationOrigin", grpc_port)}

    # No two runs of one integration overlap.
    by_partition: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for r in records:
        assert r.start_time is not None and r.end_time is not None
        by_partition[r.dagster_run.tags["dagster/partition"]].append((r.start_time, r.end_time))
    overlaps = [(p, a, b) for p, spans in by_partition.items()
                for a, b in itertools.pairwise(sorted(spans)) if b[0] < a[1]]
    assert overlaps == []

    # The dispatcher's ticks, from the instance's tick history, each took at most 2 s.
    durations = [t.end_timestamp - t.timestamp for t in ticks if t.end_timestamp is not None]
    assert len(durations) >= SIMULATED_MINUTES + 1
    print(f"\ndispatcher ticks: {len(durations)}, max {max(durations):.3f} s, "
          f"mean {sum(durations) / len(durations):.3f} s; runs: {len(records)}")
    assert max(durations) <= TICK_BUDGET_S
