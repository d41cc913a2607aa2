"""How long the everyday commands take to start: wall time of the installed ``sf-pipeline``
executable, from exec to exit, for commands an admin or a script runs often.

    .venv/bin/python bench/cli_startup.py            # 7 runs of each, median and best printed
    .venv/bin/python bench/cli_startup.py --runs 15

Each command runs against one throwaway home holding one applied (not connected) integration, so
``status``, ``logs`` and ``integration show`` read a real database. The same rows are measured for
``python -c pass`` (the interpreter alone) and ``python -c 'import dagster'`` (what every command
paid before Dagster was imported only by the commands that run a sync or a check), side by side in
one run. The target is 0.6 s per command on this machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXECUTABLE = Path(sys.executable).with_name("sf-pipeline")
TARGET_S = 0.6
SPEC = """\
name: acme
project_id: 42
login_url: https://login.salesforce.com
objects:
  Lead: {}
mappings:
  - {field: Email, property: email}
"""
COMMANDS: list[tuple[str, list[str]]] = [
    ("sf-pipeline --help", ["--help"]),
    ("sf-pipeline env", ["env"]),
    ("sf-pipeline status", ["status"]),
    ("sf-pipeline status --json", ["status", "--json"]),
    ("sf-pipeline logs acme", ["logs", "acme"]),
    ("sf-pipeline integration list", ["integration", "list"]),
    ("sf-pipeline integration show acme", ["integration", "show", "acme"]),
]


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    completed = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if completed.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {completed.returncode}: {completed.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sfp-startup-") as folder:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": folder,
               "SF_PIPELINE_HOME": str(Path(folder) / "home"), "COLUMNS": "80"}
        spec = Path(folder) / "acme.yaml"
        spec.write_text(SPEC)
        subprocess.run([str(EXECUTABLE), "integration", "apply", str(spec)], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        rows: list[tuple[str, list[str]]] = [
            ("python -c pass (interpreter only)", [sys.executable, "-c", "pass"]),
            ("python -c 'import dagster' (for comparison)", [sys.executable, "-c", "import dagster"]),
            *((label, [str(EXECUTABLE), *argv]) for label, argv in COMMANDS),
        ]
        load = os.getloadavg()[0]
        print(f"CLI startup, {args.runs} runs each; {os.cpu_count()} CPUs, load average {load:.1f} at start; "
              f"Python {sys.version.split()[0]}")
        print()
        print("| command | median s | best s | ≤ 0.6 s |")
        print("|---|---:|---:|---|")
        for label, argv in rows:
            timed(argv, env)  # warm the file cache
            samples = [timed(argv, env) for _ in range(args.runs)]
            median = statistics.median(samples)
            verdict = "-" if label.startswith("python") else ("yes" if median <= TARGET_S else "no")
            print(f"| `{label}` | {median:.2f} | {min(samples):.2f} | {verdict} |", flush=True)
        print()
        print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
