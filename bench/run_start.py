"""How fast small runs start: two codebases side by side in one run, on the same sandbox org.

    .venv/bin/python bench/run_start.py --before /path/to/other/checkout   # e.g. the main branch

For each codebase (``--before`` and this checkout, each with its own ``.venv``), on a throwaway
home with SQLite for the app and Dagster's default storage (as ``make demo`` runs):

1. the integration is connected and applied, and an initial full sync runs, through that
   codebase's own ``sf-pipeline`` executable;
2. ``sf-pipeline sync NAME --json`` with nothing to do, ``--repeat`` times: the wall clock of the
   subprocess (interpreter start, imports, the Dagster run, the health checks);
3. that codebase's real ``dagster-daemon`` runs the dispatcher; ``--repeat`` times, ``--changed``
   Leads change in the sandbox, a sync is requested, and the daemon launches it: *launch → success*
   is from the run's creation in Dagster (the dispatcher's request) to its end, as Dagster records
   them (queue, run worker start, every step, the checks).

Medians and every sample are printed, and the table is written to ``bench/results.md``.
Targets: daemon-launched incremental sync with ≤ 100 changed records ≤ 5 s launch → success;
``sf-pipeline sync`` with nothing to do ≤ 1.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import yaml
from run import NAME, ROOT, SECRET_KEY, SPEC, Sandbox, change_records, machine_line, sandbox  # type: ignore[import-not-found]

RESULTS = ROOT / "bench" / "results.md"
SECTION = "## Run start"


@dataclass
class Codebase:
    label: str
    root: Path
    noop_s: list[float] = field(default_factory=list)
    launch_s: list[float] = field(default_factory=list)
    started_at_commit: str = ""

    @property
    def bin(self) -> Path:
        return self.root / ".venv" / "bin"

    def commit(self) -> str:
        """The checkout's commit now (noted at the start too: a shared checkout may move meanwhile)."""
        return subprocess.run(["git", "-C", str(self.root), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True).stdout.strip()


def env_for(home: Path, ca_bundle: str) -> dict[str, str]:
    return {
        **os.environ,
        "SF_PIPELINE_HOME": str(home),
        "SF_PIPELINE_DATABASE_URL": f"sqlite:///{home / 'sf_pipeline.db'}",
        "SF_PIPELINE_SECRET_KEY": SECRET_KEY,
        "DAGSTER_HOME": str(home / "dagster"),
        "REQUESTS_CA_BUNDLE": ca_bundle,
        "SSL_CERT_FILE": ca_bundle,
    }


def cli(code: Codebase, env: dict[str, str], *args: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([str(code.bin / "sf-pipeline"), *args], env=env, cwd=code.root, capture_output=True,
                          text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{code.label}: sf-pipeline {' '.join(args)} failed: {done.stderr[-2000:]}")
    return wall, done.stdout


def set_up(code: Codebase, box: Sandbox, home: Path, env: dict[str, str]) -> None:
    info = box.info
    token = box.control.issue_refresh_token()["refresh_token"]
    cli(code, env, "integration", "connect", NAME, "--project-id", "1", "--login-url", info["login_url"],
        "--client-id", info["client_id"], "--client-secret", info["client_secret"], "--refresh-token", token)
    spec = home / "bench.yaml"
    spec.write_text(SPEC.format(name=NAME, login_url=info["login_url"]))
    cli(code, env, "integration", "apply", str(spec))
    cli(code, env, "sync", NAME, "--json")


def request_sync(home: Path) -> None:
    # The column the dispatcher reads; naive UTC as the app stores it.
    with sqlite3.connect(home / "sf_pipeline.db") as db:
        db.execute("UPDATE integrations SET sync_requested_at = ? WHERE name = ?",
                   (datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" "), NAME))


def daemon_runs(code: Codebase, box: Sandbox, home: Path, env: dict[str, str], repeat: int, changed: int) -> None:
    workspace = home / "workspace.yaml"
    workspace.write_text(yaml.safe_dump({"load_from": [{"python_module": {
        "module_name": "sf_pipeline.definitions", "attribute": "defs", "location_name": "sf_pipeline"}}]}))
    log = (home / "daemon.log").open("wb")
    daemon = subprocess.Popen([str(code.bin / "dagster-daemon"), "run", "-w", str(workspace)], env=env, cwd=code.root,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    instance = dg.DagsterInstance.from_config(str(home / "dagster"))
    try:
        for _ in range(repeat):
            known = {r.dagster_run.run_id for r in instance.get_run_records()}
            change_records(box, changed)
            request_sync(home)
            deadline = time.monotonic() + 900
            while True:
                fresh = [r for r in instance.get_run_records(dg.RunsFilter(job_name="sync_integration"))
                         if r.dagster_run.run_id not in known]
                if fresh and fresh[0].dagster_run.is_finished:
                    record = fresh[0]
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"{code.label}: no daemon-launched run finished (see {home / 'daemon.log'})")
                time.sleep(0.2)
            if record.dagster_run.status != dg.DagsterRunStatus.SUCCESS:
                raise SystemExit(f"{code.label}: run {record.dagster_run.run_id} ended {record.dagster_run.status}")
            assert record.end_time is not None
            code.launch_s.append(record.end_time - record.create_timestamp.timestamp())
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()
        log.close()
        instance.dispose()


def median(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}" if values else "-"


def table(codes: list[Codebase], changed: int) -> list[str]:
    lines = [
        "| codebase | commit | `sf-pipeline sync`, nothing to do: wall s (median; samples) "
        f"| daemon-launched incremental, {changed} changed: launch → success s (median; samples) |",
        "|---|---|---|---|",
    ]
    for c in codes:
        commit = c.commit() if c.commit() == c.started_at_commit else f"{c.started_at_commit}→{c.commit()}"
        lines.append(f"| {c.label} | {commit} | {median(c.noop_s)}; {', '.join(f'{v:.2f}' for v in c.noop_s)} "
                     f"| {median(c.launch_s)}; {', '.join(f'{v:.2f}' for v in c.launch_s)} |")
    return lines


def write_results(lines: list[str]) -> None:
    text = RESULTS.read_text() if RESULTS.exists() else ""
    head, _, rest = text.partition(SECTION)
    tail = rest.partition("\n## ")[2]
    block = "\n".join([SECTION, "", *lines, ""])
    RESULTS.write_text(head.rstrip() + "\n\n" + block + (("\n## " + tail) if tail else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, required=True, help="another checkout (with its .venv) to compare")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--changed", type=int, default=50)
    parser.add_argument("--records", type=int, default=5000)
    args = parser.parse_args()
    codes = [Codebase("before", args.before.resolve()), Codebase("after", ROOT)]
    for code in codes:
        code.started_at_commit = code.commit()
    load = [os.getloadavg()[0]]
    with sandbox(args.records, seed=1) as box:
        for code in codes:
            with tempfile.TemporaryDirectory(prefix=f"sfp-start-{code.label}-") as tmp:
                home = Path(tmp)
                env = env_for(home, box.info["ca_bundle"])
                set_up(code, box, home, env)
                for _ in range(args.repeat):
                    wall, out = cli(code, env, "sync", NAME, "--json")
                    assert json.loads(out)["status"] == "succeeded"
                    code.noop_s.append(wall)
                daemon_runs(code, box, home, env, args.repeat, args.changed)
                load.append(os.getloadavg()[0])
                print(f"{code.label}: no-op CLI {code.noop_s}, daemon launch→success {code.launch_s}", flush=True)
    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `bench/run_start.py --repeat {args.repeat} "
        f"--changed {args.changed} --records {args.records}`; {machine_line()}; load average "
        f"{min(load):.1f}-{max(load):.1f} during the run. SQLite app database and Dagster storage.",
        "",
        *table(codes, args.changed),
        "",
        "Targets: ≤ 1.5 s for the no-op CLI sync; ≤ 5 s launch → success for the daemon-launched sync.",
    ]
    print("\n".join(lines))
    write_results(lines)


if __name__ == "__main__":
    sys.exit(main())
