"""The everyday commands start fast because they never load the heavy stacks: Dagster, pandas,
pyarrow, pandera, simple-salesforce (which pulls in zeep and requests) and Alembic load only in the
commands that run a sync, a check or a migration. A command module that imports one of them at
its top level (as the reconcile command once did, costing every command 1.5 s) fails here.
Timing is left to ``bench/cli_startup.py``; this test proves the cause, which is not load-dependent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sf_pipeline_tests.cli.executable import fresh_env, run

HEAVY = ("dagster", "pandas", "pyarrow", "pandera", "polars", "simple_salesforce", "zeep", "requests", "alembic")
SPEC = """\
name: acme
project_id: 42
login_url: https://login.salesforce.com
objects:
  Lead: {}
mappings:
  - {field: Email, property: email}
"""
# Runs the console script's entry point as the executable does, then reports which top-level
# packages were loaded by the time the command returned.
PROBE = """\
import json, sys
from sf_pipeline.cli.main import main
sys.argv = ["sf-pipeline", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print(json.dumps({"code": code, "modules": sorted({name.split(".")[0] for name in sys.modules})}), file=sys.stderr)
"""


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("startup")
    spec = folder / "acme.yaml"
    spec.write_text(SPEC)
    applied = run("--home", str(folder / "home"), "integration", "apply", str(spec), env=fresh_env(folder / "user"))
    assert applied.exit_code == 0, applied
    return folder


@pytest.mark.parametrize(
    "args",
    [["--help"], ["env"], ["env", "--json"], ["status"], ["status", "--json"], ["logs", "acme"],
     ["integration", "list"], ["integration", "show", "acme"], ["integration", "show", "acme", "--json"]],
    ids=" ".join,
)
def test_everyday_commands_do_not_import_the_sync_stack(home: Path, args: list[str]) -> None:
    env = fresh_env(home / "user", SF_PIPELINE_HOME=str(home / "home"))
    completed = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env,
                               timeout=120)
    report = json.loads(completed.stderr.strip().splitlines()[-1])
    assert report["code"] in (0, None), completed.stdout + completed.stderr
    loaded = set(report["modules"]) & set(HEAVY)
    assert not loaded, f"sf-pipeline {' '.join(args)} imported {sorted(loaded)}"
