"""Deployment benchmarks on the production topology (PostgreSQL storage, gRPC code server, one
daemon, the webserver: ``sf_pipeline_tests/deploy/stack.py``), printing figures:

1. **The dispatcher tick at scale** (``--integrations``, default 10,000 rows in the application
   database, on PostgreSQL). Two measurements, side by side in one run:
   - *evaluation*: the ``sync_dispatcher`` sensor function called in this process on the same
     databases (the database query, due-selection and partition bookkeeping), repeated;
   - *daemon tick*: the real daemon's ticks, read from the instance's tick history (evaluation in
     the code server over gRPC, plus registering partitions and creating the requested runs).
   Integrations are spread over frequencies of 5 minutes to 1 day with random phases, so about as
   many fall due per 30-second tick as in steady state. The run queue is closed
   (``max_concurrent_runs: 0``) so requested runs wait instead of executing: the tick alone is measured.
2. **Syncs per hour on this machine** (``--syncs``, default 16): small integrations (40 Leads
   each, against the sandbox org) run their initial sync, then all fall due again at once and run
   an incremental sync through the dispatcher and the run queue (``--concurrency`` runs at a time).
   Throughput = incremental runs / (last run end - first run start), extrapolated to one hour.

    .venv/bin/python bench/deploy.py                       # both parts
    .venv/bin/python bench/deploy.py --skip-throughput     # only the dispatcher tick

The figures go to stdout and to their own section of ``bench/results.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import dagster as dg  # noqa: E402
import yaml  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402

from sf_pipeline.clock import CLOCK_FILE_ENV, write_clock_file  # noqa: E402
from sf_pipeline.defs.resources import SfPipelineResource  # noqa: E402
from sf_pipeline.defs.sensors import health_dispatcher, sync_dispatcher  # noqa: E402
from sf_pipeline.health import CheckName  # noqa: E402
from sf_pipeline.sandbox.testing import serve_in_thread  # noqa: E402
from sf_pipeline.secrets import Cipher  # noqa: E402
from sf_pipeline.storage.database import Database  # noqa: E402
from sf_pipeline.storage.models import Credential, HealthResult, Integration  # noqa: E402
from sf_pipeline_tests.dbs import fresh_postgres_url  # noqa: E402
from sf_pipeline_tests.deploy.fleet import connect_fleet, plan, set_schedule  # noqa: E402
from sf_pipeline_tests.deploy.stack import (  # noqa: E402
    dagster_pg_env,
    instance_config,
    production_stack,
    sensor_ticks,
    wait_for,
)
from sf_pipeline_tests.harness import TEST_KEY  # noqa: E402

SECTION_START = "<!-- deploy benchmark: start -->"
SECTION_END = "<!-- deploy benchmark: end -->"
FREQUENCY_MIX = [(5, 0.05), (15, 0.15), (60, 0.50), (240, 0.20), (1440, 0.10)]
JOB = "sync_integration"
UNFINISHED = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
              dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def load() -> float:
    return os.getloadavg()[0]


@contextmanager
def env(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def insert_integrations(database: Database, count: int, now: datetime, seed: int) -> float:
    """``count`` Active integrations with a frequency mix and random phases; returns the expected
    number falling due per 30 seconds."""
    rng = random.Random(seed)
    frequencies = rng.choices([f for f, _ in FREQUENCY_MIX], weights=[w for _, w in FREQUENCY_MIX], k=count)
    rows: list[dict[str, Any]] = []
    for i, minutes in enumerate(frequencies):
        last = now - timedelta(seconds=rng.uniform(0, minutes * 60))
        rows.append({"name": f"bench-{i:05d}", "project_id": i, "login_url": "https://login.salesforce.com",
                     "status": "active", "frequency_minutes": minutes, "objects_saved": True, "mappings_saved": True,
                     "full_sync_requested": False, "consecutive_failures": 0, "last_attempt_at": last,
                     "activated_at": last, "created_at": last, "updated_at": last})
    with database.session() as session:
        for start in range(0, count, 2000):
            session.execute(insert(Integration), rows[start:start + 2000])
        # Connected, with all four health checks run five minutes ago (the health sensor's steady state).
        ids = list(session.scalars(select(Integration.id)))
        session.execute(insert(Credential), [{"integration_id": i, "client_id": "bench", "client_secret_enc": "-",
                                              "refresh_token_enc": "-", "version": 1} for i in ids])
        session.execute(insert(HealthResult), [{"integration_id": i, "check_name": c.value, "passed": True,
                                                "at": now - timedelta(minutes=5), "details": {}}
                                               for i in ids for c in CheckName])
    return sum(0.5 / f for f in frequencies)


def evaluate(sensor: Any, instance: dg.DagsterInstance, app_url: str) -> tuple[float, int]:
    resource = SfPipelineResource(database_url=app_url)
    context = dg.build_sensor_context(instance=instance, resources={"sf_pipeline": resource})
    started = time.perf_counter()
    result = sensor(context)
    elapsed = time.perf_counter() - started
    assert isinstance(result, dg.SensorResult)
    return elapsed, len(result.run_requests or [])


def dispatcher_tick(count: int, ticks: int, seed: int, folder: Path) -> list[str]:
    lines: list[str] = []
    now = datetime.now(UTC)
    folder.mkdir(parents=True)
    clock_file = folder / "clock"
    write_clock_file(clock_file, now)
    with fresh_postgres_url() as app_url, fresh_postgres_url() as dagster_url:
        database = Database(app_url)
        database.migrate()
        started = time.perf_counter()
        due_rate = insert_integrations(database, count, now, seed)
        print(f"inserted {count:,} integrations in {time.perf_counter() - started:.1f} s; "
              f"expected due per 30 s: {due_rate:.0f}", flush=True)
        code_env = {"SF_PIPELINE_DATABASE_URL": app_url, "SF_PIPELINE_HOME": str(folder / "home"),
                    "SF_PIPELINE_SECRET_KEY": TEST_KEY, CLOCK_FILE_ENV: str(clock_file)}
        # Partitions are registered as integrations are created (the connect flow does it), so the
        # steady state has every one registered already.
        register = folder / "register"
        register.mkdir()
        storage = {k: v for k, v in instance_config(0).items() if k.endswith("_storage")}
        (register / "dagster.yaml").write_text(yaml.safe_dump(storage))
        with env(dagster_pg_env(dagster_url)):
            registrar = dg.DagsterInstance.from_config(str(register))
            registrar.add_dynamic_partitions("integrations", [f"bench-{i:05d}" for i in range(count)])
            registrar.dispose()
        with env(code_env), production_stack(folder / "stack", dagster_database_url=dagster_url, env=code_env,
                                             max_concurrent_runs=0, stopped_sensors=["health_dispatcher"]) as stack:
            instance = dg.DagsterInstance.get()
            # Simulated time moves 30 s per tick, as the real clock would between ticks.
            for i in range(ticks):
                moment = time.time()
                if i:
                    write_clock_file(clock_file, now + timedelta(seconds=30 * i))

                def finished(moment: float = moment) -> Any:
                    stack.check_alive()
                    done = [t for t in sensor_ticks(instance, "sync_dispatcher")
                            if t.timestamp > moment and t.status.value != "STARTED"]
                    return done[0] if done else None

                tick = wait_for(finished, timeout=300, what="a dispatcher tick")
                evaluation, requested = evaluate(sync_dispatcher, instance, app_url)
                health, health_requested = evaluate(health_dispatcher, instance, app_url)
                lines.append(
                    f"| {count:,} | {i + 1} | {'first' if i == 0 else 'steady state'} | "
                    f"{len(tick.run_ids)} | {tick.end_timestamp - tick.timestamp:.2f} | {evaluation:.2f} "
                    f"({requested}) | {health:.2f} ({health_requested}) | {load():.1f} |")
                print(lines[-1], flush=True)
            queued = len(instance.get_run_records(dg.RunsFilter(job_name=JOB, statuses=UNFINISHED)))
            print(f"runs waiting in the queue at the end: {queued}")
        database.dispose()
    return lines


def throughput(syncs: int, concurrency: int, folder: Path) -> list[str]:
    members = plan([5] * syncs)
    start = datetime.now(UTC).replace(second=0, microsecond=0)
    members = [type(m)(m.name, m.frequency_minutes, 0) for m in members]  # all due at the start
    folder.mkdir(parents=True)
    clock_file = folder / "clock"
    write_clock_file(clock_file, start)
    lines: list[str] = []
    with (serve_in_thread(records=40, seed=5) as sandbox, fresh_postgres_url() as app_url,
          fresh_postgres_url() as dagster_url):
        assert sandbox.ca_bundle
        trust = {"REQUESTS_CA_BUNDLE": sandbox.ca_bundle, "SSL_CERT_FILE": sandbox.ca_bundle}
        database = Database(app_url)
        database.migrate()
        with env(trust):
            connect_fleet(sandbox, database, Cipher(TEST_KEY, source="the bench key"), members)
        set_schedule(database, members, start)
        code_env = {"SF_PIPELINE_DATABASE_URL": app_url, "SF_PIPELINE_HOME": str(folder / "home"),
                    "SF_PIPELINE_SECRET_KEY": TEST_KEY, CLOCK_FILE_ENV: str(clock_file), **trust}
        with production_stack(folder / "stack", dagster_database_url=dagster_url, env=code_env,
                              max_concurrent_runs=concurrency, stopped_sensors=["health_dispatcher"]) as stack:
            instance = dg.DagsterInstance.get()

            def all_done(expected: int) -> bool:
                stack.check_alive()
                records = instance.get_run_records(dg.RunsFilter(job_name=JOB))
                unfinished = instance.get_run_records(dg.RunsFilter(job_name=JOB, statuses=UNFINISHED))
                return len(records) >= expected and not unfinished

            for round_, label in enumerate(["initial full sync, 40 Leads", "incremental, no change"]):
                if round_:
                    sandbox.org.touch_random("Lead", 2)
                    write_clock_file(clock_file, start + timedelta(minutes=5))
                load_before = load()
                wait_for(lambda r=round_: all_done(syncs * (r + 1)), timeout=3600, what="the runs", interval=2)
                records = instance.get_run_records(dg.RunsFilter(job_name=JOB), order_by="create_timestamp",
                                                   ascending=True)[syncs * round_:]
                assert all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in records), "a run failed"
                first = min(r.start_time for r in records if r.start_time)
                last = max(r.end_time for r in records if r.end_time)
                per_run = statistics.median(r.end_time - r.start_time for r in records if r.start_time and r.end_time)
                span = last - first
                lines.append(f"| {label} | {syncs} | {concurrency} | {span:.1f} | {per_run:.1f} | "
                             f"{syncs / span * 3600:,.0f} | {load_before:.1f} |")
                print(lines[-1], flush=True)
        database.dispose()
    return lines


def write_section(text: str, path: Path) -> None:
    current = path.read_text() if path.exists() else ""
    if SECTION_START in current:
        before, rest = current.split(SECTION_START, 1)
        after = rest.split(SECTION_END, 1)[1] if SECTION_END in rest else ""
        current = before.rstrip() + "\n\n" + after.lstrip()
    path.write_text(current.rstrip() + "\n\n" + SECTION_START + "\n" + text.rstrip() + "\n" + SECTION_END + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--integrations", type=int, default=10_000)
    parser.add_argument("--ticks", type=int, default=4)
    parser.add_argument("--syncs", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-tick", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results.md")
    opts = parser.parse_args()

    machine = (f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, Python "
               f"{platform.python_version()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    parts = ["## Deployment: dispatcher tick and syncs per hour", "",
             "`bench/deploy.py` (`make bench-deploy`) on the production topology (PostgreSQL storage, "
             f"`dagster api grpc` code server, one `dagster-daemon`, the webserver). Machine: {machine}. "
             "Load = 1-minute load "
             "average (the machine is shared)."]
    with tempfile.TemporaryDirectory(prefix="sfp-deploy-bench-") as tmp:
        if not opts.skip_tick:
            lines = dispatcher_tick(opts.integrations, opts.ticks, opts.seed, Path(tmp) / "tick")
            parts += ["", "Dispatcher tick (target ≤ 2 s). *Daemon tick* = end - start of the tick in the "
                      "instance's tick history (evaluation in the code server plus creating the requested runs); "
                      "*evaluation* = the sensor function alone, called right after in this process "
                      "(run requests it would make, mostly partitions already busy with a queued run).", "",
                      "*Health sensor* = `health_dispatcher` evaluated the same way (every integration connected, "
                      "its four checks run five minutes earlier).", "",
                      "| integrations | tick | kind | runs created | daemon tick s | evaluation s (requests) | "
                      "health sensor s (requests) | load |",
                      "|---:|---:|---|---:|---:|---:|---:|---:|", *lines]
        if not opts.skip_throughput:
            lines = throughput(opts.syncs, opts.concurrency, Path(tmp) / "throughput")
            parts += ["", "Syncs per hour: every run through the dispatcher and the run queue, each run one process "
                      "started by the code server (the sync job's in-process executor). "
                      "*Span* = first run start to last run end; *syncs/hour* = syncs / span x 3600, an "
                      "extrapolation from this batch.", "",
                      "| runs | syncs | concurrent runs | span s | median run s | syncs/hour | load |",
                      "|---|---:|---:|---:|---:|---:|---:|", *lines]
    text = "\n".join(parts)
    print("\n" + text)
    write_section(text, opts.output)


if __name__ == "__main__":
    main()
