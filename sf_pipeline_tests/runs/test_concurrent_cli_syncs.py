"""Three ``sf-pipeline sync`` of one integration started at once, again and again: they take turns
through the integration's lease, each tells the truth about its own run, and none reads another's
manifests."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import dagster as dg
import pytest

from sf_pipeline.sandbox.testing import SandboxHandle
from sf_pipeline_tests.harness import pipeline
from sf_pipeline_tests.runs.procs import SF_PIPELINE, cli_env, events, overlaps, sync_runs

pytestmark = [pytest.mark.usefixtures("dagster_env"), pytest.mark.timeout(1800)]
ROUNDS = 10
AT_ONCE = 3


def io_paths(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """The manifest files the run's IO manager wrote and read (from its Dagster event log)."""
    entries = instance.all_logs(run_id, of_type={dg.DagsterEventType.HANDLED_OUTPUT, dg.DagsterEventType.LOADED_INPUT})
    paths = []
    for entry in entries:
        event = entry.dagster_event
        assert event is not None
        metadata = event.event_specific_data.metadata  # type: ignore[union-attr]
        paths.append(str(metadata["path"].value))
    return paths


def test_three_cli_syncs_started_at_once_take_turns_and_agree_with_the_records(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path
) -> None:
    with pipeline(small_sandbox, database_url, tmp_path) as p:
        env = cli_env(p)
        results: list[dict[str, object]] = []
        for round_ in range(ROUNDS):
            procs = [subprocess.Popen([SF_PIPELINE, "sync", p.name, "--json"], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True) for _ in range(AT_ONCE)]
            for proc in procs:
                out, err = proc.communicate(timeout=900)
                assert proc.returncode == 0, f"round {round_}: exit {proc.returncode}: {err[-2000:]}"
                results.append(json.loads(out))

        recorded = {r.run_id: r for r in sync_runs(p)}
        assert len(results) == ROUNDS * AT_ONCE == len(recorded)
        assert {str(r["run_id"]) for r in results} == set(recorded)

        # 0 overlapping syncs: every run's recorded start and end, pairwise disjoint.
        spans = [(r.run_id, r.started_at, r.finished_at) for r in recorded.values()]
        assert all(end is not None for _, _, end in spans)
        assert overlaps(spans) == []  # type: ignore[arg-type]

        instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
        try:
            dagster_runs = {r.dagster_run.run_id: r for r in instance.get_run_records(
                dg.RunsFilter(job_name="sync_integration", tags={"dagster/partition": p.name}))}
            assert set(dagster_runs) == set(recorded)
            # The Dagster runs themselves do not overlap either: the CLI waits before its run exists.
            assert overlaps([(i, r.start_time, r.end_time) for i, r in dagster_runs.items()]) == []  # type: ignore[misc]
            for result in results:
                run_id = str(result["run_id"])
                assert result["status"] == recorded[run_id].status == "succeeded"
                assert dagster_runs[run_id].dagster_run.status == dg.DagsterRunStatus.SUCCESS
                paths = io_paths(instance, run_id)
                assert all(f"/{run_id}/" in path for path in paths), (run_id, paths)
        finally:
            instance.dispose()

        completed = [e.run_id for e in events(p, "sync_completed")]
        assert sorted(completed) == sorted(recorded), "exactly one sync_completed per run"
        assert events(p, "sync_failed") == []
