"""Running the installed ``sf-pipeline`` executable in a subprocess, as an admin or a script does:
real exit codes, real stderr, and an environment holding only what the test gives it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sf_pipeline_tests.harness import Pipeline

EXECUTABLE = Path(sys.executable).with_name("sf-pipeline")
# Variables that would make a "fresh terminal" not fresh.
INHERITED_STATE = ("DAGSTER_HOME", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE")


@dataclass(frozen=True)
class Completed:
    args: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return f"sf-pipeline {' '.join(self.args)} -> {self.exit_code}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


def fresh_env(user_home: Path, **extra: str) -> dict[str, str]:
    """A login shell's environment: PATH, HOME, a locale and an 80-column terminal; nothing of
    sf_pipeline's or Dagster's, no CA bundle."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(user_home), "LANG": "C.UTF-8", "COLUMNS": "80", "TZ": "UTC"}
    env.update(extra)
    assert not any(k.startswith("SF_PIPELINE_") or k in INHERITED_STATE for k in env if k not in extra)
    return env


def run(*args: str, env: Mapping[str, str], cwd: Path | None = None, input: str | None = None,
        timeout: float = 600) -> Completed:
    """Run the executable; no run of it may print a traceback (``--verbose`` is the only way)."""

    completed = subprocess.run([str(EXECUTABLE), *args], capture_output=True, text=True, env=dict(env),
                               cwd=cwd, input=input, timeout=timeout)
    result = Completed(tuple(args), completed.returncode, completed.stdout, completed.stderr)
    if "--verbose" not in args:
        assert "Traceback" not in completed.stderr + completed.stdout, str(result)
    return result


@contextmanager
def served_sandbox(home: Path, env: Mapping[str, str], *, records: int = 60, seed: int = 5) -> Iterator[dict[str, Any]]:
    """``sf-pipeline --home HOME sandbox serve --json`` as a child process, until the block ends."""
    process = subprocess.Popen(
        [str(EXECUTABLE), "--home", str(home), "sandbox", "serve", "--records", str(records), "--seed", str(seed),
         "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(env),
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, process.stderr.read() if process.stderr else "the sandbox exited"
        yield json.loads(line)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def without_state(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if not k.startswith("SF_PIPELINE_") and k not in INHERITED_STATE}


def one_line(text: str) -> str:
    """The single non-empty line of ``text`` (an error must fit one line: no traceback, no dump)."""
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]





def executable_env(p: Pipeline, tmp_path: Path, **extra: str) -> dict[str, str]:
    """A fresh environment pointed at a test pipeline's home, database, key and sandbox CA."""
    from sf_pipeline_tests.harness import TEST_KEY

    assert p.sandbox.ca_bundle
    return fresh_env(
        tmp_path / "user",
        SF_PIPELINE_HOME=str(p.services.settings.home),
        SF_PIPELINE_DATABASE_URL=p.database.url.render_as_string(hide_password=False),
        SF_PIPELINE_SECRET_KEY=TEST_KEY,
        REQUESTS_CA_BUNDLE=p.sandbox.ca_bundle,
        **extra,
    )
