"""The sync benchmark: the real pipeline against the sandbox org, on PostgreSQL and SQLite.

    make bench                                  # 100,000 and 1,000,000 Leads, both backends
    .venv/bin/python bench/run.py --quick       # a smoke run with small sizes
    .venv/bin/python bench/run.py --sizes 100000 --backends postgres

For each size it starts ``sf-pipeline sandbox serve --json --records N`` in its own process and
measures, in this order:

1. the ceiling: a plain client (requests + json, following ``nextRecordsUrl``) pulling every page
   of the very SOQL the pipeline runs (``queryAll``, ``batchSize=2000``), with no processing;
2. for each backend, on a throwaway database, home and Dagster instance:
   - an initial full sync (``sf-pipeline sync NAME --json`` as a subprocess: the Dagster job
     ``sync_integration``, run in-process on the instance under ``DAGSTER_HOME``);
   - an incremental sync after 1% of the Leads changed (``touch_random`` picks them, then a real
     value change on mapped fields: FirstName and Phone);
   - an incremental sync with no changes.

Each sync is timed end to end (wall clock of the subprocess, including interpreter start, imports
and Dagster's run bookkeeping) and, separately, from the run row the pipeline writes (extract start
to the upsert's commit: the sync's own work). Peak memory is ``ru_maxrss`` of the sync subprocess
(``os.wait4``). API calls are the pipeline's own count and the sandbox's count of REST API requests
(``query``, ``query_more``, ``describe``, ``limits``, ``versions``) during the sync.

The table goes to stdout and to ``bench/results.md``, with a description of the machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sf_pipeline.connect import connect  # noqa: E402
from sf_pipeline.integration_spec import apply_spec, parse_spec  # noqa: E402
from sf_pipeline.mapping import ALWAYS_QUERIED  # noqa: E402
from sf_pipeline.salesforce.oauth import ClientCredentials, RefreshTokenImport  # noqa: E402
from sf_pipeline.salesforce.session import describe_provider  # noqa: E402
from sf_pipeline.sandbox.control import ControlClient  # noqa: E402
from sf_pipeline.secrets import Cipher  # noqa: E402
from sf_pipeline.settings import load_settings  # noqa: E402
from sf_pipeline.storage.database import Database  # noqa: E402
from sf_pipeline.storage.models import SyncRun  # noqa: E402
from sf_pipeline.sync.plan import ObjectPlan  # noqa: E402

NAME = "bench"
OBJECT = "Lead"
MAPPINGS = (
    ("Email", "email"),
    ("FirstName", "first_name"),
    ("LastName", "last_name"),
    ("Phone", "phone"),
    ("Company", "company"),
    ("Status", "status"),
    ("HasOptedOutOfEmail", "unsubscribed"),
)
SPEC = "\n".join(
    [
        "name: {name}",
        "project_id: 1",
        "login_url: {login_url}",
        "frequency_minutes: 60",
        "objects:",
        f"  {OBJECT}: {{{{}}}}",
        "mappings:",
        *(f"  - {{{{field: {f}, property: {p}}}}}" for f, p in MAPPINGS),
    ]
)
PAGE_SIZE = 2000
STEP_KEYS = ("salesforce_records", "user_changes", "spotzee_users")
API_ENDPOINTS = ("versions", "query", "query_more", "describe", "limits")
# Calls a run makes once whatever the number of objects (the API-quota health check asks ``limits``).
PER_RUN_ENDPOINTS = ("versions", "limits")
SECRET_KEY = "x1hqBG2mPmNn1zxuHzW5rkGt3pZ5nyhoa8bvk5Oqa0A="  # a throwaway Fernet key for the run's tokens
POSTGRES_ADMIN_URL = os.environ.get(
    "SF_PIPELINE_BENCH_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
DEFAULT_SIZES = "100000,1000000"
QUICK_SIZES = "2000,20000"

# Targets (reported, not asserted).
TARGET_RATE = 20_000
TARGET_CEILING_RATIO = 0.5
TARGET_PEAK_MB = 600
TARGET_PEAK_GROWTH = 1.5
TARGET_INCREMENTAL_FRACTION = 0.05
TARGET_IDLE_CALLS = 3


def pipeline_soql() -> str:
    """The SOQL the pipeline's plan builds for a full sync of the integration under test."""
    fields = tuple(dict.fromkeys([*ALWAYS_QUERIED, *(f for f, _ in MAPPINGS)]))
    return ObjectPlan(OBJECT, fields, None, True, None, None, "").soql()


# --- the sandbox ------------------------------------------------------------------------------------


@dataclass
class Sandbox:
    proc: subprocess.Popen[str]
    info: dict[str, Any]
    control: ControlClient
    ready_s: float

    def cpu_s(self) -> float:
        """CPU seconds the sandbox process has used so far (utime + stime from /proc)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return float("nan")

    def api_counts(self) -> dict[str, int]:
        counters = self.control.counters()
        return {k: int(counters.get(k, 0)) for k in API_ENDPOINTS}


@contextmanager
def sandbox(records: int, seed: int) -> Iterator[Sandbox]:
    entry = Path(sys.executable).with_name("sf-pipeline")
    command = [str(entry), "sandbox", "serve", "--json", "--records", str(records), "--seed", str(seed)]
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.strip().startswith("{"):
            proc.kill()
            _, err = proc.communicate()
            raise SystemExit(f"the sandbox did not start: {err.strip()[-2000:]}")
        info = json.loads(line)
        # requests lets REQUESTS_CA_BUNDLE override a session's ``verify``: trust the sandbox's bundle
        # (its CA plus certifi's) process-wide, as the sync subprocesses do.
        for var in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE"):
            os.environ[var] = info["ca_bundle"]
        control = ControlClient(info["instance_url"], secret=info["client_secret"], verify=info["ca_bundle"])
        yield Sandbox(proc, info, control, time.perf_counter() - started)
        control.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def password_token(info: dict[str, Any]) -> str:
    response = requests.post(
        info["login_url"] + "/services/oauth2/token",
        data={
            "grant_type": "password",
            "client_id": info["client_id"],
            "client_secret": info["client_secret"],
            "username": info["username"],
            "password": info["password"],
        },
        verify=info["ca_bundle"],
        timeout=60,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


@dataclass
class Ceiling:
    records: int
    seconds: float
    calls: int
    load: float
    client_cpu_s: float
    sandbox_cpu_s: float

    @property
    def rate(self) -> float:
        return self.records / self.seconds


def measure_ceiling(box: Sandbox, soql: str) -> Ceiling:
    """requests + json, following nextRecordsUrl: every page of the pipeline's query, nothing else."""
    info = box.info
    session = requests.Session()
    session.verify = info["ca_bundle"]
    session.headers["Authorization"] = f"Bearer {password_token(info)}"
    session.headers["Sforce-Query-Options"] = f"batchSize={PAGE_SIZE}"
    base = info["instance_url"]
    load = os.getloadavg()[0]
    sandbox_cpu, client_cpu = box.cpu_s(), time.process_time()
    started = time.perf_counter()
    page = session.get(f"{base}/services/data/v59.0/queryAll", params={"q": soql}, timeout=600).json()
    count, calls = len(page["records"]), 1
    while not page["done"]:
        page = session.get(base + page["nextRecordsUrl"], timeout=600).json()
        count += len(page["records"])
        calls += 1
    seconds = time.perf_counter() - started
    client_cpu, sandbox_cpu = time.process_time() - client_cpu, box.cpu_s() - sandbox_cpu
    session.close()
    return Ceiling(count, seconds, calls, load, client_cpu, sandbox_cpu)


def change_records(box: Sandbox, k: int) -> int:
    """``touch_random`` picks k random live Leads (and stamps them); then a real change to mapped
    fields, so each one is a user update and not just a re-read."""
    ids = box.control.touch_random(OBJECT, k)
    suffix = uuid.uuid4().hex[:6]
    changes = {
        rid: {"FirstName": f"Bench{i}{suffix}", "Phone": f"+1 555 {i % 10_000:04d}"} for i, rid in enumerate(ids)
    }
    for start in range(0, len(ids), 20_000):
        batch = dict(list(changes.items())[start : start + 20_000])
        box.control.update_many(OBJECT, batch)
    return len(ids)


# --- a backend: database, home, Dagster instance, the connected integration --------------------------


@contextmanager
def database_url(backend: str, home: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{home / 'sf_pipeline.db'}"
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin_url = make_url(POSTGRES_ADMIN_URL)
    name = f"sfp_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield admin_url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def sync_env(home: Path, url: str, ca_bundle: str) -> dict[str, str]:
    return {
        **os.environ,
        "SF_PIPELINE_HOME": str(home),
        "SF_PIPELINE_DATABASE_URL": url,
        "SF_PIPELINE_SECRET_KEY": SECRET_KEY,
        "DAGSTER_HOME": str(home / "dagster"),
        "REQUESTS_CA_BUNDLE": ca_bundle,
        "SSL_CERT_FILE": ca_bundle,
        "CURL_CA_BUNDLE": ca_bundle,
    }


def set_up_integration(box: Sandbox, env: dict[str, str]) -> Database:
    settings = load_settings(env)
    database = Database.from_settings(settings)
    cipher = Cipher(SECRET_KEY, source="the bench key")
    info = box.info
    authorizer = RefreshTokenImport(
        login_url=info["login_url"],
        client=ClientCredentials(info["client_id"], info["client_secret"]),
        refresh_token=box.control.issue_refresh_token()["refresh_token"],
    )
    connect(database, cipher, NAME, authorizer, project_id=1)
    with database.session() as session:
        apply_spec(
            session,
            parse_spec(SPEC.format(name=NAME, login_url=info["login_url"])),
            describe=describe_provider(database, cipher, NAME),
            now=datetime.now(UTC),
        )
    return database


@dataclass
class SyncResult:
    label: str
    summary: dict[str, Any]
    wall_s: float
    run_s: float | None
    peak_rss_mb: float
    cpu_s: float
    load: float
    sandbox_cpu_s: float
    server_calls: dict[str, int] = field(default_factory=dict)
    steps: dict[str, float] = field(default_factory=dict)
    step_peak_mb: dict[str, float] = field(default_factory=dict)

    @property
    def fetched(self) -> int:
        return int(self.summary.get("fetched", 0))

    @property
    def api_calls(self) -> int:
        return int(self.summary.get("api_calls", 0))

    @property
    def server_api_calls(self) -> int:
        return sum(self.server_calls.values())


def run_sync(
    box: Sandbox, env: dict[str, str], database: Database, label: str, log_dir: Path, *, profile: Path | None = None,
    executable: Path | None = None,
) -> SyncResult:
    """``sf-pipeline sync NAME --json`` in a subprocess; wall clock and ru_maxrss from ``os.wait4``.
    With ``profile``, the subprocess runs under pyinstrument and its report lands there; with
    ``executable``, that ``sf-pipeline`` (another installation) runs instead of this one."""
    entry = str(executable or Path(sys.executable).with_name("sf-pipeline"))
    command = [entry, "sync", NAME, "--json"]
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
        report_path = profile / f"{log_dir.name}-{label}.txt"
        command = [sys.executable, "-m", "pyinstrument", "-r", "text", "--no-color", "-o", str(report_path),
                   "-i", "0.005", *command]
    before = box.api_counts()
    load = os.getloadavg()[0]
    sandbox_cpu = box.cpu_s()
    out_path, err_path = log_dir / f"{label}.out", log_dir / f"{label}.err"
    with out_path.open("w") as out, err_path.open("w") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=ROOT)
        sampler = RssSampler(proc.pid)
        _, status, usage = os.wait4(proc.pid, 0)
        sampler.stop()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
    after = box.api_counts()
    sandbox_cpu = box.cpu_s() - sandbox_cpu
    text = out_path.read_text().strip()
    try:
        summary = json.loads(text.splitlines()[-1]) if text else {}
    except json.JSONDecodeError:
        summary = {}
    if proc.returncode != 0 or summary.get("status") != "succeeded":
        tail = err_path.read_text()[-3000:]
        raise SystemExit(f"sync {label} failed (exit {proc.returncode}): {text}\n{tail}")
    run_s = None
    with database.session() as session:
        run = session.get(SyncRun, summary["run_id"])
        if run is not None and run.started_at and run.finished_at:
            run_s = (run.finished_at - run.started_at).total_seconds()
    return SyncResult(
        label=label,
        summary=summary,
        wall_s=wall,
        run_s=run_s,
        peak_rss_mb=usage.ru_maxrss / 1024,
        cpu_s=usage.ru_utime + usage.ru_stime,
        load=load,
        sandbox_cpu_s=sandbox_cpu,
        server_calls={k: after[k] - before[k] for k in API_ENDPOINTS if after[k] != before[k]},
        **step_figures(Path(env["DAGSTER_HOME"]), summary["run_id"], sampler.samples),
    )


class RssSampler:
    """VmRSS of one process every 0.1 s (with wall-clock stamps), to tell which step peaks."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        path = Path(f"/proc/{self.pid}/status")
        while not self._stop.wait(0.1):
            try:
                for line in path.read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        self.samples.append((time.time(), int(line.split()[1]) / 1024))
                        break
            except (OSError, ValueError):
                pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def step_figures(dagster_home: Path, run_id: str, rss: list[tuple[float, float]]) -> dict[str, Any]:
    """Seconds per step of the Dagster run (extract, diff, upsert, health checks), from the run's
    event log, and the highest RSS sampled while each step ran."""
    try:
        import dagster as dg
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            stats = [s for s in instance.get_run_step_stats(run_id) if s.start_time and s.end_time]
    except Exception as exc:  # the table is still worth printing without them
        report(f"  (no step timings for {run_id}: {exc})")
        return {}
    steps = {s.step_key: round(s.end_time - s.start_time, 2) for s in stats}
    peaks = {}
    for s in stats:
        during = [mb for at, mb in rss if s.start_time <= at <= s.end_time]
        if during:
            peaks[s.step_key] = round(max(during))
    return {"steps": steps, "step_peak_mb": peaks}


@dataclass
class BackendResult:
    backend: str
    size: int
    ceiling: Ceiling
    initial: SyncResult
    idle: SyncResult
    changed: int
    incremental: SyncResult
    idle_after: SyncResult


def bench_backend(
    size: int, seed: int, backend: str, change_fraction: float, logs: Path, profile: Path | None
) -> BackendResult:
    """A fresh sandbox org (the same seed, so the same records) for each backend: every backend
    starts from an identical org and none sees another's changes in its lookback window."""
    with sandbox(size, seed) as box:
        report(f"{size:,} Leads, {backend}: sandbox ready in {box.ready_s:.1f}s at {box.info['instance_url']}")
        ceiling = measure_ceiling(box, pipeline_soql())
        report(f"  ceiling      {ceiling.records} records in {ceiling.seconds:.2f}s = {ceiling.rate:,.0f}/s, "
               f"{ceiling.calls} calls, client cpu {ceiling.client_cpu_s:.1f}s, sandbox cpu "
               f"{ceiling.sandbox_cpu_s:.1f}s")
        with tempfile.TemporaryDirectory(prefix=f"sfp-bench-{backend}-") as tmp:
            home = Path(tmp)
            with database_url(backend, home) as url:
                env = sync_env(home, url, box.info["ca_bundle"])
                database = set_up_integration(box, env)
                try:
                    log_dir = logs / f"{backend}-{size}"
                    log_dir.mkdir(parents=True, exist_ok=True)

                    def sync(label: str) -> SyncResult:
                        result = run_sync(box, env, database, label, log_dir, profile=profile)
                        report(f"  {label:12} {fmt_sync(result)}")
                        return result

                    initial = sync("initial")
                    idle = sync("idle")
                    changed = change_records(box, max(1, round(size * change_fraction)))
                    incremental = sync("incremental")
                    idle_after = sync("idle-after")
                finally:
                    database.dispose()
    return BackendResult(backend, size, ceiling, initial, idle, changed, incremental, idle_after)


def fmt_sync(r: SyncResult) -> str:
    s = r.summary
    return (
        f"wall {r.wall_s:.1f}s, run {r.run_s or 0:.1f}s, cpu {r.cpu_s:.1f}s, steps {r.steps}, fetched {s['fetched']}, "
        f"created {s['created']}, updated {s['updated']}, unchanged {s['unchanged']}, api {s['api_calls']} "
        f"sandbox cpu {r.sandbox_cpu_s:.1f}s, "
        f"(sandbox {r.server_api_calls}: {r.server_calls}), peak {r.peak_rss_mb:.0f} MB "
        f"(by step {r.step_peak_mb}), load {r.load:.1f}"
    )


def report(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# --- the table ----------------------------------------------------------------------------------------


def machine_line() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown memory"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} CPUs (nproc), {mem} memory, {cpu}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )


def allowed_initial_calls(records: int) -> int:
    return math.ceil(records / 2000) + 10


def rate(records: int, seconds: float | None) -> float:
    return records / seconds if seconds else 0.0


def build_table(results: list[BackendResult]) -> list[str]:
    rows = [
        "| Leads | Backend | Measurement | Records | Wall s | Run s | Steps s (extract / diff / upsert) "
        "| CPU s sync / sandbox | Records/s wall (run) | x ceiling wall (run) | API calls pipeline / sandbox "
        "| Peak RSS MB | Load |",
        "|---:|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(results, key=lambda r: (r.size, r.backend)):
        c = r.ceiling
        rows.append(
            f"| {r.size:,} | {r.backend} | ceiling: requests + json | {c.records:,} | {c.seconds:.2f} | - | - "
            f"| {c.client_cpu_s:.1f} / {c.sandbox_cpu_s:.1f} "
            f"| {c.rate:,.0f} | 1.00 | - / {c.calls} | - | {c.load:.1f} |"
        )
        for label, s in (
            ("initial full sync", r.initial),
            ("incremental, no change", r.idle),
            (f"incremental, {r.changed:,} changed (1%)", r.incremental),
            ("incremental, no change, lookback re-read", r.idle_after),
        ):
            full = s is r.initial
            wall, run = rate(s.fetched, s.wall_s), rate(s.fetched, s.run_s)
            speed = f"{wall:,.0f} ({run:,.0f})" if full else "-"
            ratio = f"{wall / c.rate:.2f} ({run / c.rate:.2f})" if full else "-"
            steps = " / ".join(f"{s.steps[k]:.2f}" if k in s.steps else "?" for k in STEP_KEYS)
            rows.append(
                f"| {r.size:,} | {r.backend} | {label} | {s.fetched:,} | {s.wall_s:.2f} | {(s.run_s or 0):.2f} "
                f"| {steps} | {s.cpu_s:.1f} / {s.sandbox_cpu_s:.1f} | {speed} | {ratio} "
                f"| {s.api_calls} / {s.server_api_calls} | {s.peak_rss_mb:,.0f} | {s.load:.1f} |"
            )
    return rows


def check_targets(results: list[BackendResult]) -> list[str]:
    def mark(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    lines = []
    by_backend: dict[str, dict[int, BackendResult]] = {}
    for r in results:
        by_backend.setdefault(r.backend, {})[r.size] = r
    for backend, sized in sorted(by_backend.items()):
        for size, r in sorted(sized.items()):
            i, c = r.initial, r.ceiling
            wall, run = rate(i.fetched, i.wall_s), rate(i.fetched, i.run_s)
            allowed = allowed_initial_calls(i.fetched)
            inc, idle = r.incremental, r.idle
            p = f"{backend}, {size:,}:"
            per_object = {k: v for k, v in idle.server_calls.items() if k not in PER_RUN_ENDPOINTS}
            per_run = {k: v for k, v in idle.server_calls.items() if k in PER_RUN_ENDPOINTS}
            lines += [
                f"- {p} initial ≥ {TARGET_RATE:,} records/s: wall {mark(wall >= TARGET_RATE)} ({wall:,.0f}), "
                f"run {mark(run >= TARGET_RATE)} ({run:,.0f})",
                f"- {p} initial ≥ {TARGET_CEILING_RATIO} x ceiling ({c.rate:,.0f}/s): wall "
                f"{mark(wall >= TARGET_CEILING_RATIO * c.rate)} ({wall / c.rate:.2f}), run "
                f"{mark(run >= TARGET_CEILING_RATIO * c.rate)} ({run / c.rate:.2f})",
                f"- {p} initial API calls ≤ ceil(records/2000) + 10 = {allowed}: "
                f"{mark(max(i.api_calls, i.server_api_calls) <= allowed)} "
                f"(pipeline {i.api_calls}, sandbox {i.server_api_calls}: {i.server_calls})",
                f"- {p} initial peak RSS < {TARGET_PEAK_MB} MB: {mark(i.peak_rss_mb < TARGET_PEAK_MB)} "
                f"({i.peak_rss_mb:,.0f} MB)",
                f"- {p} incremental after {r.changed:,} changes ≤ {TARGET_INCREMENTAL_FRACTION:.0%} of the initial "
                f"sync's time: wall {mark(inc.wall_s <= TARGET_INCREMENTAL_FRACTION * i.wall_s)} "
                f"({inc.wall_s:.2f} s = {inc.wall_s / i.wall_s:.1%}), run "
                f"{mark((inc.run_s or 0) <= TARGET_INCREMENTAL_FRACTION * (i.run_s or 0))} "
                f"({(inc.run_s or 0):.2f} s = {(inc.run_s or 0) / (i.run_s or 1):.1%}); API calls "
                f"{inc.api_calls} / {inc.server_api_calls}",
                f"- {p} no-change incremental ≤ {TARGET_IDLE_CALLS} API calls per object: "
                f"{mark(sum(per_object.values()) <= TARGET_IDLE_CALLS)} ({sum(per_object.values())} for the one "
                f"object: {per_object}; plus {sum(per_run.values())} per run: {per_run}; the pipeline counts "
                f"{idle.api_calls}). Right after the 1% sync, re-reading its lookback window "
                f"({r.idle_after.fetched:,} records): pipeline {r.idle_after.api_calls}, sandbox "
                f"{r.idle_after.server_api_calls}",
            ]
        sizes = sorted(sized)
        if len(sizes) >= 2:
            small, big = sized[sizes[0]].initial, sized[sizes[-1]].initial
            growth = big.peak_rss_mb / small.peak_rss_mb
            lines.append(
                f"- {backend}: initial peak RSS at {sizes[-1]:,} ≤ {TARGET_PEAK_GROWTH} x at {sizes[0]:,}: "
                f"{mark(growth <= TARGET_PEAK_GROWTH)} ({big.peak_rss_mb:,.0f} / {small.peak_rss_mb:,.0f} MB = "
                f"{growth:.2f}x)"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=None, help=f"Lead counts, comma-separated (default {DEFAULT_SIZES})")
    parser.add_argument("--backends", default="postgres,sqlite", help="postgres, sqlite or both")
    parser.add_argument("--quick", action="store_true", help=f"a smoke run: sizes {QUICK_SIZES}")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--change-fraction", type=float, default=0.01)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results.md")
    parser.add_argument("--logs", type=Path, default=None, help="keep each sync's stdout/stderr here")
    parser.add_argument("--profile", type=Path, default=None,
                        help="run each sync under pyinstrument and write its text report here "
                             "(the timings then include the profiler's overhead)")
    opts = parser.parse_args()
    sizes = sorted(int(s.replace("_", "")) for s in (opts.sizes or (QUICK_SIZES if opts.quick else DEFAULT_SIZES))
                   .split(","))
    backends = [b.strip() for b in opts.backends.split(",") if b.strip()]
    for b in backends:
        if b not in ("sqlite", "postgres"):
            parser.error(f"unknown backend {b!r}")
    machine = machine_line()
    load_before = os.getloadavg()
    soql = pipeline_soql()
    report(f"machine: {machine}")
    report(f"query: {soql}")
    results: list[BackendResult] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sfp-bench-logs-") as tmp_logs:
        logs = opts.logs or Path(tmp_logs)
        for size in sizes:
            for backend in backends:
                results.append(bench_backend(size, opts.seed, backend, opts.change_fraction, logs, opts.profile))
    total = time.perf_counter() - started
    load_after = os.getloadavg()
    text = "\n".join(
        [
            "# Sync benchmark",
            "",
            f"Machine: {machine}",
            "",
            f"Integration: {OBJECT} only, no rules; mappings "
            + ", ".join(f"{f}→{p}" for f, p in MAPPINGS)
            + f". Query: `{soql}` (queryAll, batchSize={PAGE_SIZE}).",
            "",
            "- Each backend gets a fresh sandbox process with the same seed (identical org), a throwaway "
            "database, home and Dagster instance.",
            "- Wall = the `sf-pipeline sync NAME --json` subprocess end to end: interpreter start, imports, "
            "Dagster run bookkeeping and the health checks that end every sync run included.",
            "- Run = the sync's own work, from its run row: extract start to the commit that marks it succeeded.",
            "- Ceiling = requests + json following nextRecordsUrl over the same query, measured on the same "
            "sandbox just before the syncs.",
            "- API calls = the pipeline's own count / the sandbox's count of REST API requests "
            f"({', '.join(API_ENDPOINTS)}) while the sync ran.",
            "- Peak RSS = ru_maxrss of the sync subprocess (os.wait4). CPU s = user + system seconds of the sync "
            "subprocess (os.wait4) / of the sandbox process over the same span (/proc); for the ceiling, of the "
            "client / the sandbox. PostgreSQL's own CPU is not counted.",
            "- Load = the 1-minute load average when the measurement started (the machine is shared: other "
            "work running at the same time slows every figure).",
            "- The syncs run in this order: initial; no change; 1% of Leads changed (touch_random, then new "
            "FirstName and Phone values); no change again, which re-reads the 1% because they fall in the "
            "incremental query's 10-minute lookback window.",
            *(["- Profiled run: timings include pyinstrument's overhead."] if opts.profile else []),
            "",
            *build_table(results),
            "",
            "Targets (wall: the whole subprocess; run: the sync's own work):",
            "",
            *check_targets(results),
            "",
            f"The bench run took {total / 60:.1f} minutes; load average (1, 5, 15 min) "
            f"{'/'.join(f'{x:.1f}' for x in load_before)} before, {'/'.join(f'{x:.1f}' for x in load_after)} after.",
            "",
        ]
    )
    print(text)
    # Keep the sections other benchmarks (bench/deploy.py) maintain in the same file.
    previous = opts.output.read_text() if opts.output.exists() else ""
    kept = previous[previous.index("<!-- "):] if "<!-- " in previous else ""
    opts.output.write_text(text.rstrip() + ("\n\n" + kept if kept else "\n"))


if __name__ == "__main__":
    main()
