"""Bulk API 2.0 against REST: the same initial full sync over each API, side by side in one run.

    make bench-bulk                               # 1,000,000 Leads, without and with latency
    .venv/bin/python bench/bulk.py --quick        # a smoke run: 20,000 Leads
    .venv/bin/python bench/bulk.py --before /path/to/older/.venv/bin/sf-pipeline   # before and after

For each latency profile (``none``: the sandbox as fast as it answers; ``salesforce``: ``sandbox
serve --latency-profile salesforce``, server-side time of the order a production org takes) it
starts one sandbox with N Leads and runs, on two fresh PostgreSQL databases, ``sf-pipeline sync
NAME --json`` as a subprocess (the real Dagster job) for an integration syncing Lead with
``api: rest`` and then with ``api: bulk``. Everything else (mappings, SOQL, diff, upsert) is the
same, so the difference is the extract.

Reported per sync: wall seconds of the subprocess and the run's own seconds (from the run row),
records/s, the pipeline's API calls and the sandbox's count by endpoint, the bound
ceil(N / maxRecords) + 10, peak RSS (``ru_maxrss``), and CPU seconds of the sync process
(``ru_utime + ru_stime``) and of the sandbox process, each also per 1,000,000 records. The machine
is shared, so the ratios (Bulk against REST in the same run) are the figures to read. With
``--before EXE``, each sync also runs with that other installation's ``sf-pipeline`` against the
same sandbox process, just before this one's, and the before/after ratios are printed and recorded.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.run import (  # noqa: E402
    NAME,
    SECRET_KEY,
    SPEC,
    Sandbox,
    SyncResult,
    database_url,
    machine_line,
    run_sync,
    sync_env,
)
from sf_pipeline.connect import connect  # noqa: E402
from sf_pipeline.integration_spec import apply_spec, parse_spec  # noqa: E402
from sf_pipeline.salesforce.bulk import DEFAULT_PAGE_RECORDS  # noqa: E402
from sf_pipeline.salesforce.oauth import ClientCredentials, RefreshTokenImport  # noqa: E402
from sf_pipeline.salesforce.session import describe_provider  # noqa: E402
from sf_pipeline.sandbox.control import ControlClient  # noqa: E402
from sf_pipeline.secrets import Cipher  # noqa: E402
from sf_pipeline.settings import load_settings  # noqa: E402
from sf_pipeline.storage.database import Database  # noqa: E402

ENDPOINTS = ("versions", "query", "query_more", "describe", "limits", "bulk_job", "bulk_results")
TARGET_SPEEDUP_WITH_LATENCY = 3.0
TARGET_PEAK_MB = 600


@contextmanager
def sandbox(records: int, seed: int, latency: str) -> Iterator[Sandbox]:
    entry = Path(sys.executable).with_name("sf-pipeline")
    command = [str(entry), "sandbox", "serve", "--json", "--records", str(records), "--seed", str(seed),
               "--latency-profile", latency]
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


def set_up(box: Sandbox, env: dict[str, str], api: str) -> Database:
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
    spec = SPEC.format(name=NAME, login_url=info["login_url"]).replace(
        "frequency_minutes: 60", f"frequency_minutes: 60\napi: {api}")
    with database.session() as session:
        apply_spec(session, parse_spec(spec), describe=describe_provider(database, cipher, NAME),
                   now=datetime.now(UTC))
    return database


@dataclass
class Row:
    latency: str
    api: str
    records: int
    result: SyncResult
    server_calls: dict[str, int]
    code: str = "now"

    @property
    def bound(self) -> int:
        return math.ceil(self.records / DEFAULT_PAGE_RECORDS) + 10

    def rate(self, seconds: float | None) -> float:
        return self.result.fetched / seconds if seconds else float("nan")

    def per_million(self, cpu_s: float) -> float:
        return cpu_s / max(self.result.fetched, 1) * 1_000_000


def one_sync(box: Sandbox, api: str, latency: str, records: int, backend: str, logs: Path,
             before: Path | None = None) -> Row:
    code = "before" if before else "now"
    with tempfile.TemporaryDirectory(prefix=f"sfp-bulk-bench-{api}-") as tmp:
        home = Path(tmp)
        (home / "dagster").mkdir()
        with database_url(backend, home) as url:
            env = sync_env(home, url, box.info["ca_bundle"])
            database = set_up(box, env, api)
            try:
                counters_before = box.control.counters()
                result = run_sync(box, env, database, f"{latency}-{api}-{code}", logs, executable=before)
                counters_after = box.control.counters()
            finally:
                database.dispose()
    calls = {k: int(counters_after.get(k, 0)) - int(counters_before.get(k, 0)) for k in ENDPOINTS}
    row = Row(latency, api, records, result, {k: v for k, v in calls.items() if v}, code)
    apis = result.summary.get("apis", {})
    print(f"  {latency:10} {api:4} {code:6}: {result.wall_s:7.1f} s wall, {result.run_s or 0:7.1f} s run, "
          f"{result.fetched:,} records, apis {apis}, {result.api_calls} API calls {row.server_calls}, "
          f"peak {result.peak_rss_mb:.0f} MB, cpu {result.cpu_s:.1f} s (sandbox {result.sandbox_cpu_s:.1f} s), "
          f"steps {result.steps}, step peaks MB {result.step_peak_mb}", flush=True)
    if apis.get("Lead") != api:
        raise SystemExit(f"the {api} sync used {apis.get('Lead')} for Lead")
    return row


def table(rows: list[Row]) -> list[str]:
    lines = [
        "| latency | API | Leads | wall s | run s | records/s wall (run) | API calls (bound) | sandbox calls "
        "| extract / diff / upsert s | peak RSS MB (extract / diff / upsert) | pipeline CPU s (per 1M) "
        "| sandbox CPU s (per 1M) |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        res = r.result
        bound = f"{res.api_calls} ({r.bound})" if r.api == "bulk" else f"{res.api_calls}"
        calls = ", ".join(f"{k} {v}" for k, v in r.server_calls.items())
        lines.append(
            f"| {r.latency} | {r.api} | {r.records:,} | {res.wall_s:.2f} | {res.run_s or 0:.2f} | "
            f"{r.rate(res.wall_s):,.0f} ({r.rate(res.run_s):,.0f}) | {bound} | {calls} | {_steps(res.steps)} | "
            f"{res.peak_rss_mb:.0f} ({_steps(res.step_peak_mb, '.0f')}) | "
            f"{res.cpu_s:.1f} ({r.per_million(res.cpu_s):.1f}) | "
            f"{res.sandbox_cpu_s:.1f} ({r.per_million(res.sandbox_cpu_s):.1f}) |"
        )
    return lines


def _steps(values: dict[str, float], spec: str = ".1f") -> str:
    return " / ".join(format(values[k], spec) if k in values else "-"
                      for k in ("salesforce_records", "user_changes", "spotzee_users"))


def verdicts(rows: list[Row]) -> list[str]:
    by = {(r.latency, r.api): r for r in rows}
    out = []
    for r in rows:
        if r.api == "bulk":
            ok = r.result.api_calls <= r.bound
            out.append(f"- API calls over Bulk ({r.latency}): {r.result.api_calls} ≤ ceil(N / {DEFAULT_PAGE_RECORDS:,})"
                       f" + 10 = {r.bound} for the one object: {'met' if ok else 'NOT met'}")
    for latency, target in (("none", 1.0), ("salesforce", TARGET_SPEEDUP_WITH_LATENCY)):
        rest, bulk = by.get((latency, "rest")), by.get((latency, "bulk"))
        if rest is None or bulk is None:
            continue
        wall = rest.result.wall_s / bulk.result.wall_s
        run = (rest.result.run_s or 0) / (bulk.result.run_s or 1)
        if latency == "none":
            out.append(f"- Without latency, Bulk records/s ÷ REST records/s: {wall:.2f} wall, {run:.2f} run "
                       f"(target ≥ 1): {'met' if wall >= target else 'NOT met'}")
        else:
            out.append(f"- Under `--latency-profile salesforce`, REST wall ÷ Bulk wall: {wall:.2f} "
                       f"(REST {rest.result.wall_s:.1f} s, Bulk {bulk.result.wall_s:.1f} s; run {run:.2f}) "
                       f"(target ≥ {target:.0f}): {'met' if wall >= target else 'NOT met'}")
    peak = max(r.result.peak_rss_mb for r in rows)
    out.append(f"- Peak RSS, highest sync: {peak:.0f} MB (target < {TARGET_PEAK_MB}): "
               f"{'met' if peak < TARGET_PEAK_MB else 'NOT met'}")
    return out


def compared(earlier: list[Row], rows: list[Row], before: Path) -> list[str]:
    """Each sync's figures against the other installation's, run just before it on the same sandbox."""
    now = {(r.latency, r.api): r for r in rows}
    out = [f"- Side by side with `{before}` (run just before each of these syncs, same sandbox process):"]
    for old in earlier:
        new = now[(old.latency, old.api)]
        ratio = new.result.wall_s / old.result.wall_s
        out.append(f"  - {old.latency}, {old.api}: wall {old.result.wall_s:.1f} s before, {new.result.wall_s:.1f} s "
                   f"now ({ratio:.2f} of before); peak RSS {old.result.peak_rss_mb:.0f} → "
                   f"{new.result.peak_rss_mb:.0f} MB; CPU {old.result.cpu_s:.1f} → {new.result.cpu_s:.1f} s")
    for latency in dict.fromkeys(r.latency for r in earlier):
        pair = [{r.api: r.result.wall_s for r in group if r.latency == latency} for group in (earlier, rows)]
        if all({"rest", "bulk"} <= set(p) for p in pair):
            out.append(f"  - {latency}: REST wall ÷ Bulk wall {pair[0]['rest'] / pair[0]['bulk']:.2f} before, "
                       f"{pair[1]['rest'] / pair[1]['bulk']:.2f} now")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000, help="Leads in the sandbox (default 1,000,000)")
    parser.add_argument("--quick", action="store_true", help="a smoke run with 20,000 Leads")
    parser.add_argument("--latency", default="none,salesforce", help="profiles to run: none, salesforce or both")
    parser.add_argument("--backend", default="postgres", choices=("postgres", "sqlite"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results.md")
    parser.add_argument("--before", type=Path, help="another sf-pipeline executable to run side by side")
    args = parser.parse_args()
    records = 20_000 if args.quick else args.records
    logs = Path(tempfile.mkdtemp(prefix="sfp-bulk-bench-logs-"))
    started = datetime.now(UTC)
    print(machine_line(), flush=True)
    rows: list[Row] = []
    earlier: list[Row] = []
    for latency in args.latency.split(","):
        with sandbox(records, args.seed, latency) as box:
            print(f"sandbox with {records:,} Leads, latency {latency}: ready in {box.ready_s:.1f} s", flush=True)
            for api in ("rest", "bulk"):
                if args.before:
                    earlier.append(one_sync(box, api, latency, records, args.backend, logs, before=args.before))
                rows.append(one_sync(box, api, latency, records, args.backend, logs))
    lines = table(rows)
    found = verdicts(rows)
    if earlier:
        found += compared(earlier, rows, args.before)
    print("\n".join([*lines, "", *found]))
    section = [
        "## Bulk API 2.0 against REST (`bench/bulk.py`)",
        "",
        f"Measured {started:%Y-%m-%d %H:%M} UTC, {machine_line()}; one Lead object, 7 mappings, no rules, "
        f"{args.backend}; initial full sync as `sf-pipeline sync NAME --json` subprocesses, REST then Bulk "
        f"against the same sandbox process per latency profile. maxRecords {DEFAULT_PAGE_RECORDS:,}.",
        "",
        *lines,
        "",
        *found,
        "",
    ]
    write_section(args.output, section)


def write_section(path: Path, section: list[str]) -> None:
    """Replace this benchmark's section of ``results.md`` (or append it), leaving the rest."""
    marker = section[0]
    text = path.read_text() if path.exists() else ""
    if marker in text:
        before, _, after = text.partition(marker)
        rest = after.split("\n## ", 1)
        text = before + ("\n## " + rest[1] if len(rest) > 1 else "")
    path.write_text(text.rstrip("\n") + "\n\n" + "\n".join(section))


if __name__ == "__main__":
    main()
