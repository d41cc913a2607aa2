"""How fast can a client pull a big query out of the sandbox? The ceiling any sync can reach.

Starts ``sf-pipeline sandbox serve --json --records N`` in its own process, logs in with the
OAuth password grant, then pulls every page of one query twice over HTTPS:

(a) requests + json, following ``nextRecordsUrl``;
(b) simple-salesforce ``query`` / ``query_more``, as the pipeline's client does.

Prints records/s for each (the time includes the first request, which runs and sorts the query),
and the CPU seconds the sandbox and the client spent: on a busy machine the wall-clock rate drops,
while CPU time per record shows what each side costs.

    .venv/bin/python bench/sandbox_ceiling.py --records 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests
from simple_salesforce import Salesforce

QUERY = (
    "SELECT Id, FirstName, LastName, Email, Phone, Company, LastModifiedDate FROM Lead ORDER BY LastModifiedDate, Id"
)


def start_sandbox(records: int, seed: int) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """Run the sandbox CLI; fall back to ``python -m`` if the ``sf-pipeline`` entry point can't start."""
    args = ["sandbox", "serve", "--json", "--records", str(records), "--seed", str(seed)]
    entry = shutil.which("sf-pipeline") or os.path.join(os.path.dirname(sys.executable), "sf-pipeline")
    commands = [[entry, *args]] if os.path.exists(entry) else []
    commands.append([sys.executable, "-m", "sf_pipeline.cli.sandbox", *args[1:]])
    for command in commands:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip().startswith("{"):
            return proc, json.loads(line)
        proc.kill()
        _, err = proc.communicate()
        print(f"{' '.join(command[:3])} did not start: {err.strip().splitlines()[-1:]}", file=sys.stderr)
    raise SystemExit("could not start the sandbox")


def password_login(info: dict[str, Any]) -> str:
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
    token: str = response.json()["access_token"]
    return token


def pull_with_requests(info: dict[str, Any], token: str) -> tuple[int, float]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    base, bundle = info["instance_url"], info["ca_bundle"]
    started = time.perf_counter()
    url = f"{base}/services/data/v59.0/query"
    page = session.get(url, params={"q": QUERY}, verify=bundle, timeout=600).json()
    count = len(page["records"])
    while not page["done"]:
        page = session.get(base + page["nextRecordsUrl"], verify=bundle, timeout=600).json()
        count += len(page["records"])
    return count, time.perf_counter() - started


def pull_with_simple_salesforce(info: dict[str, Any], token: str) -> tuple[int, float]:
    os.environ["REQUESTS_CA_BUNDLE"] = info["ca_bundle"]
    sf = Salesforce(instance_url=info["instance_url"], session_id=token, session=requests.Session())
    started = time.perf_counter()
    page = sf.query(QUERY)
    count = len(page["records"])
    while not page["done"]:
        page = sf.query_more(page["nextRecordsUrl"], identifier_is_url=True)
        count += len(page["records"])
    return count, time.perf_counter() - started


def _cpu_seconds(proc: subprocess.Popen[str]) -> float:
    """CPU time the sandbox process has used so far, from /proc (Linux only; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss(proc: subprocess.Popen[str]) -> str:
    """The sandbox process's resident memory, from /proc (Linux only)."""
    try:
        status = Path(f"/proc/{proc.pid}/status").read_text()
    except OSError:
        return "RSS unknown"
    kib = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return f"RSS {kib / 1024:,.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    opts = parser.parse_args()
    started = time.perf_counter()
    proc, info = start_sandbox(opts.records, opts.seed)
    ready = time.perf_counter() - started
    print(f"sandbox with {opts.records} leads ready in {ready:.1f}s at {info['login_url']}, {_rss(proc)}")
    try:
        token = password_login(info)
        for label, pull in (
            ("requests + json", pull_with_requests),
            ("simple-salesforce", pull_with_simple_salesforce),
        ):
            server_cpu, client_cpu = _cpu_seconds(proc), time.process_time()
            count, seconds = pull(info, token)
            server_cpu, client_cpu = _cpu_seconds(proc) - server_cpu, time.process_time() - client_cpu
            print(
                f"{label:>18}: {count} records in {seconds:.2f}s = {count / seconds:,.0f} records/s "
                f"(CPU: sandbox {server_cpu:.1f}s, client {client_cpu:.1f}s)"
            )
        print(f"sandbox after both pulls: {_rss(proc)}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
