"""One integration, three triggers at once, on the production shape (PostgreSQL-backed Dagster, the
real daemon and its run queue, the webserver's GraphQL endpoint): the dispatcher, ``sf-pipeline
sync`` and a UI launch fire together, ten times. No two syncs of the integration overlap, while
runs of other integrations run beside them, up to the queue's limit."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from dagster_graphql import DagsterGraphQLClient

from sf_pipeline.sandbox.ids import KEY_PREFIXES, make_id
from sf_pipeline.sandbox.state import Org
from sf_pipeline.sandbox.testing import SandboxHandle, serve_in_thread
from sf_pipeline.storage.integrations import get_integration
from sf_pipeline_tests.dbs import empty_database_url
from sf_pipeline_tests.harness import Pipeline, pipeline
from sf_pipeline_tests.runs.procs import SF_PIPELINE, deployment, overlaps, sync_runs, wait_until

pytestmark = [pytest.mark.usefixtures("dagster_env"), pytest.mark.timeout(3600), pytest.mark.postgres,
              pytest.mark.deployment]
ROUNDS = 10
LIMIT = 2  # max_concurrent_runs for the queue in this test
OTHERS = ("beta", "gamma")


def max_concurrency(spans: list[tuple[str, float, float]]) -> int:
    edges = sorted([(s, 1) for _, s, _ in spans] + [(e, -1) for _, _, e in spans])
    level = peak = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    return peak


def own_org(n: int) -> Org:
    """A sandbox org with an org id of its own (every sandbox org is otherwise the same org)."""
    org = Org(seed=10 + n)
    org.org_id = org.auth.org_id = make_id(KEY_PREFIXES["Organization"], 100 + n)
    return org


@pytest.fixture
def sandboxes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[SandboxHandle]]:
    """One sandbox org per integration (an org belongs to one integration), all trusted."""
    with ExitStack() as stack:
        orgs = [stack.enter_context(serve_in_thread(own_org(i), records=200, seed=10 + i))
                for i in range(1 + len(OTHERS))]
        bundle = tmp_path / "ca-bundle.pem"
        bundle.write_text("".join(Path(str(s.ca_bundle)).read_text() for s in orgs))
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
        monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
        yield orgs


def test_dispatcher_cli_and_ui_launches_at_once_never_overlap_on_one_integration(
    sandboxes: list[SandboxHandle], tmp_path: Path
) -> None:
    with ExitStack() as stack:
        url = stack.enter_context(empty_database_url("postgres", tmp_path / "app"))
        home = tmp_path / "home"
        acme = stack.enter_context(pipeline(sandboxes[0], url, home, name="acme"))
        for sandbox, name in zip(sandboxes[1:], OTHERS, strict=True):
            stack.enter_context(pipeline(sandbox, url, home, name=name))
        (tmp_path / "deploy").mkdir()
        d = stack.enter_context(deployment(acme, tmp_path / "deploy", webserver=True,
                                           max_concurrent_runs=LIMIT))
        assert d.graphql_port is not None
        ui = DagsterGraphQLClient("127.0.0.1", port_number=d.graphql_port)

        def idle() -> bool:
            active = d.instance.get_run_records(dg.RunsFilter(statuses=[
                dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
                dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]))
            return not active and not _requested(acme)

        wait_until(idle, timeout_s=900, what="the initial syncs")
        cli_results: list[dict[str, object]] = []
        for round_ in range(ROUNDS):
            every = d.instance.get_run_records(dg.RunsFilter(job_name="sync_integration"))
            known = {r.dagster_run.run_id for r in every}
            with acme.database.session() as session:
                get_integration(session, "acme").sync_requested_at = datetime.now(UTC)  # the dispatcher
            # Fire the other two the moment the dispatcher's run exists (a sync started in between
            # would take the request over, and the dispatcher would have nothing to fire).
            wait_until(lambda known=known: [r for r in d.instance.get_run_records(dg.RunsFilter(
                job_name="sync_integration", tags={"dagster/partition": "acme"})) if r.dagster_run.run_id not in known],
                timeout_s=300, what="the dispatcher's run", poll_s=0.05)
            cli = subprocess.Popen([SF_PIPELINE, "sync", "acme", "--json"], env=d.env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
            for name in ("acme", *OTHERS):  # the UI's Materialize, as its GraphQL launch
                ui.submit_job_execution("sync_integration", repository_location_name="sf_pipeline",
                                        tags={"dagster/partition": name, "sf_pipeline/trigger": "ui"})
            out, err = cli.communicate(timeout=900)
            assert cli.returncode == 0, f"round {round_}: {err[-2000:]}"
            cli_results.append(json.loads(out))
            wait_until(idle, timeout_s=900, what=f"round {round_} to finish")

        records = list(d.instance.get_run_records(dg.RunsFilter(job_name="sync_integration")))
        by_id = {r.dagster_run.run_id: r for r in records}
        acme_syncs = {r.run_id: r for r in sync_runs(acme)
                      if r.run_id in by_id and by_id[r.run_id].dagster_run.tags["dagster/partition"] == "acme"}
        triggers = [by_id[i].dagster_run.tags.get("sf_pipeline/trigger") for i in acme_syncs]
        assert triggers.count("cli") >= ROUNDS and triggers.count("ui") >= ROUNDS
        assert triggers.count("activation") >= ROUNDS, "the dispatcher fired every round"

        # 0 overlapping syncs of one integration (each run's recorded start and end).
        spans = [(i, r.started_at, r.finished_at) for i, r in acme_syncs.items()]
        assert all(r.finished_at is not None and r.status == "succeeded" for r in acme_syncs.values())
        assert overlaps(spans) == []  # type: ignore[arg-type]
        for result in cli_results:
            run_id = str(result["run_id"])
            assert result["status"] == acme_syncs[run_id].status == "succeeded"
            assert by_id[run_id].dagster_run.status == dg.DagsterRunStatus.SUCCESS
        failed = {r.dagster_run.run_id: (r.dagster_run.tags.get("dagster/partition"), r.dagster_run.status.value,
                                         _failure_messages(d.instance, r.dagster_run.run_id))
                  for r in records if r.dagster_run.status != dg.DagsterRunStatus.SUCCESS}
        assert not failed, f"runs that did not succeed: {failed}"

        # Runs of different integrations ran side by side, never more than the queue's limit.
        queued = [(i, r.start_time, r.end_time) for i, r in by_id.items()
                  if r.dagster_run.tags.get("sf_pipeline/trigger") != "cli" and r.start_time and r.end_time]
        cross = [(a, b) for a, b in overlaps(queued)  # type: ignore[arg-type]
                 if by_id[a].dagster_run.tags["dagster/partition"] != by_id[b].dagster_run.tags["dagster/partition"]]
        assert cross, "runs of different integrations overlapped"
        assert max_concurrency(queued) <= LIMIT  # type: ignore[arg-type]
        dagster_level = [(a, b) for a, b in overlaps([(i, by_id[i].start_time, by_id[i].end_time)  # type: ignore[misc]
                                                      for i in acme_syncs])]
        print(f"acme: {len(acme_syncs)} syncs, 0 overlapping; Dagster runs of acme overlapping while one "
              f"waited for the lease: {len(dagster_level)} pairs; other integrations overlapped acme in "
              f"{len(cross)} pairs; peak queued concurrency {max_concurrency(queued)} (limit {LIMIT})")


def _requested(p: Pipeline) -> bool:
    with p.database.session() as session:
        return get_integration(session, p.name).sync_requested_at is not None


def _failure_messages(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """What the run's failure events say (the reason a run did not succeed, for the assertion)."""
    found = []
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        event = entry.dagster_event
        error = event.step_failure_data.error if event is not None else None
        found.append(error.to_string() if error is not None else entry.user_message)
    return found
