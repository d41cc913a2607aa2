"""How long the everyday commands take to start: wall time of the installed ``sf-pipeline``
executable, from exec to exit, for commands an admin or a script runs often.

    .venv/bin/python bench/cli_startup.py            # 7 runs of each, median and best printed
    .venv/bin/python bench/cli_startup.py --runs 15
    .venv/bin/python bench/cli_startup.py --before /path/to/older/.venv/bin/sf-pipeline

Each command runs against one throwaway home holding one applied (not connected) integration, so
``status``, ``logs`` and ``integration show`` read a real database. The same rows are measured for
``python -c pass`` (the interpreter alone) and ``python -c 'import dagster'`` (what every command
paid before Dagster was imported only by the commands that run a sync or a check), side by side in
one run. With ``--before EXE`` each command is also timed with another installation (an older
checkout), interleaved run by run so both see the same machine load. The target is 0.6 s per
command on this machine.
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
    parser.add_argument("--before", type=Path, help="another sf-pipeline executable to time side by side")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sfp-startup-") as folder:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": folder,
               "SF_PIPELINE_HOME": str(Path(folder) / "home"), "COLUMNS": "80"}
        spec = Path(folder) / "acme.yaml"
        spec.write_text(SPEC)
        subprocess.run([str(EXECUTABLE), "integration", "apply", str(spec)], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        # The other installation gets a home of its own: its database schema may be older.
        old_env = {**env, "SF_PIPELINE_HOME": str(Path(folder) / "before-home")}
        if args.before:
            subprocess.run([str(args.before), "integration", "apply", str(spec)], env=old_env, check=True,
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
        before_header = " | before: median s | before ÷ now" if args.before else ""
        print(f"| command | median s | best s | ≤ 0.6 s{before_header} |")
        print("|---|---:|---:|---" + ("|---:|---:" if args.before else "") + "|")
        for label, argv in rows:
            old_argv = ([str(args.before), *argv[1:]] if args.before and argv[0] == str(EXECUTABLE)
                        and argv[1:2] != ["env"] else None)
            timed(argv, env)  # warm the file cache
            if old_argv:
                timed(old_argv, old_env)
            samples, old_samples = [], []
            for _ in range(args.runs):
                samples.append(timed(argv, env))
                if old_argv:
                    old_samples.append(timed(old_argv, old_env))
            median = statistics.median(samples)
            verdict = "-" if label.startswith("python") else ("yes" if median <= TARGET_S else "no")
            extra = ""
            if args.before:
                old = statistics.median(old_samples) if old_samples else None
                extra = f" | {old:.2f} | {old / median:.1f}x" if old else " | - | -"
            print(f"| `{label}` | {median:.2f} | {min(samples):.2f} | {verdict}{extra} |", flush=True)
        print()
        print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
