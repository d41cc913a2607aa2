"""Every shipped deployment file loads with Dagster's own config schema, and the image, the
workspaces and the instance files agree with each other.

``DagsterInstance.from_config`` validates a ``dagster.yaml`` against the instance schema (storage,
run launcher, concurrency, ...) and then builds each configured class, which validates the class's
own block against its ``config_type``: the same path the webserver and daemon take at start-up.
"""

from __future__ import annotations

import importlib
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from sf_pipeline.dagster_storage import (
    PooledPostgresEventLogStorage,
    PooledPostgresRunStorage,
    PooledPostgresScheduleStorage,
)
from sf_pipeline_tests.dbs import fresh_postgres_url
from sf_pipeline_tests.deploy.stack import REPO, dagster_pg_env, image_command

pytestmark = pytest.mark.postgres

INSTANCE_FILES = ["dagster.postgres.yaml", "deploy/docker/dagster.yaml", "deploy/k8s/dagster.yaml"]
WORKSPACE_FILES = ["deploy/docker/workspace.yaml", "deploy/k8s/workspace.yaml"]

# K8sRunLauncher reads the cluster's credentials when it is built. Outside a cluster the test
# points it at a kubeconfig for a cluster that is never contacted; the rest of the block is as shipped.
KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: not-a-real-token}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


@pytest.fixture
def dagster_pg(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with fresh_postgres_url() as url:
        for key, value in dagster_pg_env(url).items():
            monkeypatch.setenv(key, value)
        yield


def load(tmp_path: Path, config: dict[str, Any]) -> dg.DagsterInstance:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return dg.DagsterInstance.from_config(str(home))


def shipped(path: str, tmp_path: Path) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((REPO / path).read_text())
    launcher = config.get("run_launcher", {})
    if launcher.get("class") == "K8sRunLauncher":
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(KUBECONFIG)
        launcher["config"].update(load_incluster_config=False, kubeconfig_file=str(kubeconfig))
    return config


@pytest.mark.usefixtures("dagster_pg")
@pytest.mark.parametrize("path", INSTANCE_FILES)
def test_each_production_instance_file_loads_on_postgres_with_one_run_per_integration(
    path: str, tmp_path: Path
) -> None:
    instance = load(tmp_path, shipped(path, tmp_path))
    try:
        assert type(instance.run_storage) is PooledPostgresRunStorage
        assert type(instance.event_log_storage) is PooledPostgresEventLogStorage
        assert type(instance.schedule_storage) is PooledPostgresScheduleStorage
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        [limit] = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits  # type: ignore[union-attr]
        assert limit == {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
        assert instance.get_settings("sensors") == {"use_threads": True, "num_workers": 2, "num_submit_workers": 4}
    finally:
        instance.dispose()


@pytest.mark.usefixtures("dagster_pg")
def test_the_docker_file_builds_a_docker_run_launcher_passing_the_secrets_by_name(tmp_path: Path) -> None:
    instance = load(tmp_path, shipped("deploy/docker/dagster.yaml", tmp_path))
    try:
        launcher = instance.run_launcher
        assert type(launcher).__name__ == "DockerRunLauncher"
        assert launcher.networks == ["sf_pipeline"]  # type: ignore[attr-defined]
        assert launcher.container_kwargs["volumes"] == ["sf_pipeline_work:/var/lib/sf_pipeline"]  # type: ignore[attr-defined]
        assert launcher.image is None  # type: ignore[attr-defined]  # the code location's own image
        env_vars = launcher.env_vars  # type: ignore[attr-defined]
        assert {"SF_PIPELINE_SECRET_KEY", "SF_PIPELINE_DATABASE_URL", "DAGSTER_PG_PASSWORD"} <= set(env_vars)
        assert all("=" not in v for v in env_vars)  # names only: values never sit in the file
    finally:
        instance.dispose()


@pytest.mark.usefixtures("dagster_pg")
def test_the_kubernetes_file_builds_a_k8s_run_launcher(tmp_path: Path) -> None:
    instance = load(tmp_path, shipped("deploy/k8s/dagster.yaml", tmp_path))
    try:
        launcher = instance.run_launcher
        assert type(launcher).__name__ == "K8sRunLauncher"
        assert launcher.job_namespace == "sf-pipeline"  # type: ignore[attr-defined]
        assert launcher.instance_config_map == "sf-pipeline-dagster-instance"  # type: ignore[attr-defined]
        assert launcher.env_secrets == ["sf-pipeline-secrets"]  # type: ignore[attr-defined]
    finally:
        instance.dispose()


@pytest.mark.usefixtures("dagster_pg")
@pytest.mark.parametrize(
    ("path", "edit", "named"),
    [
        ("deploy/docker/dagster.yaml", lambda c: c["run_launcher"]["config"].update(netwrk="x"), "netwrk"),
        ("deploy/k8s/dagster.yaml", lambda c: c["run_launcher"]["config"].update(job_namespace=7), "job_namespace"),
        ("dagster.postgres.yaml", lambda c: c["run_storage"]["config"]["postgres_db"].update(hostnme="x"), "hostnme"),
    ],
)
def test_a_mistake_in_a_deployment_file_is_refused_naming_the_key(
    path: str, edit: Any, named: str, tmp_path: Path
) -> None:
    config = shipped(path, tmp_path)
    edit(config)
    with pytest.raises(dg.DagsterInvalidConfigError, match=named):
        instance = load(tmp_path, config)
        try:
            _ = instance.run_launcher  # the launcher's block is checked when it is built
        finally:
            instance.dispose()


@pytest.mark.parametrize("path", WORKSPACE_FILES)
def test_each_workspace_names_the_code_server_the_image_runs(path: str) -> None:
    command = image_command()
    workspace = yaml.safe_load((REPO / path).read_text())
    [entry] = workspace["load_from"]
    server = entry["grpc_server"]
    assert set(server) == {"host", "port", "location_name"}
    assert server["port"] == int(command[command.index("--port") + 1])
    assert server["location_name"] == command[command.index("--location-name") + 1]


def test_the_image_builds_from_the_repo_alone_and_serves_the_definitions() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines() if line.strip()}
    for sources in re.findall(r"^COPY (.+) \S+$", dockerfile, flags=re.MULTILINE):
        for source in sources.split():
            assert (REPO / source).exists(), source
            assert source not in ignored, source
    assert "pip install '.[deploy]'" in dockerfile
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {d.split("==")[0] for d in extras["deploy"]} == {"dagster-docker", "dagster-k8s"}
    command = image_command()
    assert command[:3] == ["dagster", "api", "grpc"]
    module = importlib.import_module(command[command.index("--module-name") + 1])
    assert isinstance(getattr(module, command[command.index("--attribute") + 1]), dg.Definitions)
