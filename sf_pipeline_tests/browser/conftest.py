"""Fixtures for the browser tests: a connected integration, ``dagster dev`` on a free port, and a
headless Chromium page (Debian's ``chromium``; ``make browser`` installs it)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from playwright.sync_api import Page, sync_playwright

from sf_pipeline.definitions import defs
from sf_pipeline.defs.jobs import SYNC_JOB
from sf_pipeline.defs.partitions import PARTITIONS_NAME
from sf_pipeline.demo.launcher import Child, project_file, start_dagster, wait_for_webserver
from sf_pipeline.sandbox import Org, ids
from sf_pipeline.sandbox.testing import serve_in_thread
from sf_pipeline_tests.harness import TEST_KEY, Pipeline, dagster_resource, pipeline

CHROMIUM_ENV = "SF_PIPELINE_CHROMIUM"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
INTEGRATION = "browser"
SECOND = "second"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def chromium_path() -> str:
    path = os.environ.get(CHROMIUM_ENV) or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail(f"no Chromium at {path}: run `make browser` (apt-get install chromium) or set ${CHROMIUM_ENV}")
    return path


@dataclass
class DagsterUI:
    url: str
    name: str
    second: str
    pipeline: Pipeline
    dagster: Child
    dagster_home: Path
    screenshots: Path

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_config(str(self.dagster_home))


def second_org() -> Org:
    """A second org for the second integration (an org belongs to one integration)."""
    org = Org(seed=4)
    org.org_id = org.auth.org_id = ids.make_id(ids.KEY_PREFIXES["Organization"], 2)
    return org


@pytest.fixture
def dagster_ui(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DagsterUI]:
    """Two sandbox orgs (in this process), integrations ``browser`` and ``second`` connected to
    them and configured as the harness does, and ``dagster dev`` (webserver, daemon, code server)
    using the same app database. Dagster's whole process group is stopped afterwards.

    Each integration has synced once, as a Dagster run of the sync job that ended with its health
    checks, so neither dispatcher sensor launches anything while the test drives the UI: the only
    runs after them are the ones the browser launches. Their partitions are added up front, as the
    sync dispatcher would."""
    home = tmp_path / "home"
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    shutil.copyfile(project_file("dagster.yaml"), dagster_home / "dagster.yaml")
    database_url = f"sqlite:///{home / 'sf_pipeline.db'}"
    with serve_in_thread(records=300, seed=3) as sandbox, \
            serve_in_thread(second_org(), records=150, seed=4) as other:
        assert sandbox.ca_bundle and other.ca_bundle
        # Both orgs' certificate authorities, for every process that calls either.
        bundle = tmp_path / "ca-bundle.pem"
        bundle.write_text(Path(sandbox.ca_bundle).read_text() + Path(other.ca_bundle).read_text())
        env = {
            "SF_PIPELINE_HOME": str(home),
            "SF_PIPELINE_DATABASE_URL": database_url,
            "SF_PIPELINE_SECRET_KEY": TEST_KEY,
            "DAGSTER_HOME": str(dagster_home),
            "REQUESTS_CA_BUNDLE": str(bundle),
            "SSL_CERT_FILE": str(bundle),
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        with pipeline(sandbox, database_url, home, name=INTEGRATION) as connected, \
                pipeline(other, database_url, home, name=SECOND) as second:
            with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
                instance.add_dynamic_partitions(PARTITIONS_NAME, [INTEGRATION, SECOND])
                # The first syncs, as the dispatcher would have run them: Dagster runs of the job.
                for p in (connected, second):
                    first = defs.resolve_job_def(SYNC_JOB).execute_in_process(
                        partition_key=p.name, instance=instance, resources={"sf_pipeline": dagster_resource(p)})
                    assert first.success
            port = free_port()
            dagster = start_dagster(port=port, env=dict(os.environ), log=tmp_path / "dagster.log")
            try:
                url = f"http://127.0.0.1:{port}"
                wait_for_webserver(dagster, f"{url}/server_info", timeout=180, stop=threading.Event())
                screenshots = tmp_path / "screenshots"
                screenshots.mkdir()
                yield DagsterUI(url=url, name=INTEGRATION, second=SECOND, pipeline=connected, dagster=dagster,
                                dagster_home=dagster_home, screenshots=screenshots)
            finally:
                dagster.stop(timeout=30)
                assert not dagster.group_alive(), f"dagster dev's process group {dagster.pid} outlived the test"


@pytest.fixture
def page(dagster_ui: DagsterUI) -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            context.set_default_timeout(30_000)
            yield context.new_page()
            context.close()
        finally:
            browser.close()
