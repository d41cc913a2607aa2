"""A real browser drives the Dagster UI as an admin would:

1. the asset graph shows the three assets;
2. *Sync now*: "Materialize" on ``spotzee_users`` alone, for the integration's partition, with
   the full re-sync run config typed in the dialog. The run runs all three stages itself (a full
   pull), succeeds, its log names the sync events, and the integration stays Active;
3. the Checks tab's *Execute all* runs the four health checks on their own; they pass, and each
   check's execution history shows the result for the partition from that run;
4. both partitions selected in the same dialog launch a backfill: one sync run per integration.

Screenshots of each step land in the test's tmp dir (``screenshots/``); with
``SF_PIPELINE_DOCS_SCREENSHOTS=DIR`` the README's screenshot is written there too."""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path

import dagster as dg
import pytest
from playwright.sync_api import Locator, Page, expect
from sqlalchemy import select

from sf_pipeline.health import CheckName
from sf_pipeline.storage.integrations import get_integration
from sf_pipeline.storage.models import LogEvent
from sf_pipeline_tests.browser.conftest import DagsterUI

ASSETS = ("salesforce_records", "user_changes", "spotzee_users")
CHECKS = sorted(name.value for name in CheckName)
FIRST_LOAD_MS = 60_000  # the first page load compiles and fetches a lot
RUN_MS = 300_000
DOCS_ENV = "SF_PIPELINE_DOCS_SCREENSHOTS"
FULL_RESYNC_CONFIG = "ops: {salesforce_sync: {config: {full: true}}}"

expect.set_options(timeout=30_000)


def shoot(page: Page, ui: DagsterUI, name: str) -> None:
    page.screenshot(path=str(ui.screenshots / f"{name}.png"), full_page=False)


def dismiss_community_dialog(page: Page) -> None:
    """A fresh instance greets the first visit (on 127.0.0.1) with a "Join the Dagster community"
    dialog, a second after the page renders, over whatever the test is doing. The UI skips it when
    local storage says it was seen; should it show anyway, a handler clicks "Skip"."""
    page.add_init_script("window.localStorage.setItem('communityNux', JSON.stringify('1'))")
    dialog = page.get_by_role("dialog").filter(has_text="Join the Dagster community")
    page.add_locator_handler(dialog, lambda d: d.get_by_role("button", name="Skip").click())


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_sync_now_and_the_health_checks_from_the_ui(dagster_ui: DagsterUI, page: Page) -> None:
    try:
        drive(page, dagster_ui)
    except BaseException:
        with contextlib.suppress(Exception):
            shoot(page, dagster_ui, "99-failure")
        raise


def status(ui: DagsterUI, name: str | None = None) -> str:
    with ui.pipeline.database.session() as session:
        return get_integration(session, name or ui.name).status


def events_of(ui: DagsterUI, run_id: str) -> list[str]:
    with ui.pipeline.database.session() as session:
        return [e.type for e in session.scalars(select(LogEvent).where(LogEvent.run_id == run_id)
                                                 .order_by(LogEvent.id))]


def follow_launched_run(page: Page) -> str:
    """Follow the "Launched run" toast to the run's page; return the run id."""
    toast = page.get_by_text(re.compile(r"^Launched run [0-9a-f]{8}$"))
    expect(toast).to_be_visible()
    page.get_by_role("link", name="View", exact=True).click()
    page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}"))
    return page.url.split("/runs/", 1)[1].split("?", 1)[0]


def run_succeeds(page: Page) -> None:
    expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=RUN_MS)
    expect(page.get_by_text("RUN_SUCCESS", exact=True)).to_be_visible()


def pick_partition(page: Page, dialog: Locator, name: str) -> None:
    dialog.get_by_text("Select a partition or create one").click()
    # Partition names render twice (text and a hidden measuring copy) inside one menu item.
    page.get_by_role("menuitem", name=re.compile(rf"^{name}(\s+{name})?$")).click()
    dialog.get_by_text(re.compile("^Launch runs to materialize")).click()  # closes the partition menu
    expect(page.get_by_placeholder("Filter partitions")).to_be_hidden()
    expect(dialog.get_by_text("1 partition", exact=True)).to_be_visible()


def drive(page: Page, ui: DagsterUI) -> None:
    name = ui.name
    dismiss_community_dialog(page)
    started = time.monotonic()

    # 1. The asset graph: the three assets, one node each.
    page.goto(f"{ui.url}/asset-groups", wait_until="domcontentloaded")
    for asset in ASSETS:
        node = page.locator("[class*='AssetNode_assetName']", has_text=re.compile(f"^{asset}$"))
        expect(node).to_have_count(1, timeout=FIRST_LOAD_MS)
        expect(node).to_be_visible()
    shoot(page, ui, "01-asset-graph")

    # 2. Sync now: Materialize on spotzee_users alone, for the integration's partition.
    page.goto(f"{ui.url}/assets/spotzee_users", wait_until="domcontentloaded")
    page.get_by_role("button", name=re.compile(r"^(\w+ )?Materialize…$")).first.click()
    dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize spotzee_users")
    expect(dialog).to_be_visible()
    pick_partition(page, dialog, name)
    launch = dialog.get_by_role("button", name="Launch 1 run")
    expect(launch).to_be_enabled()
    shoot(page, ui, "02-sync-now-dialog")
    docs = os.environ.get(DOCS_ENV)
    if docs:
        page.screenshot(path=str(Path(docs) / "sync-now.png"), full_page=False)
    # A full re-sync is run config, typed in the dialog's Config section.
    dialog.get_by_text("Config", exact=True).click()
    dialog.get_by_role("button", name="Add config").click()
    editor = page.get_by_role("dialog").filter(has_text="Config Editor")
    editor.locator(".CodeMirror").first.click()
    page.keyboard.type(FULL_RESYNC_CONFIG)
    expect(editor.get_by_text("No errors", exact=True)).to_be_visible()
    shoot(page, ui, "02b-full-resync-config")
    editor.get_by_role("button", name="Save config").click()
    expect(editor).to_be_hidden()
    launch.click()

    run_id = follow_launched_run(page)
    expect(page.get_by_text(f"partition: {name}", exact=True)).to_be_visible()
    run_succeeds(page)
    # The run log tells the sync's story under the events' own names.
    log_filter = page.get_by_placeholder(re.compile("Filter")).first
    log_filter.fill("sync_started")
    expect(page.get_by_text("sync_started full=true", exact=True)).to_be_visible()
    log_filter.fill("sync_completed")
    expect(page.get_by_text(re.compile(r"^sync_completed fetched=\d+ created=\d+ updated=\d+")).first).to_be_visible()
    shoot(page, ui, "03-sync-run-succeeded")
    print(f"sync run {run_id} succeeded {time.monotonic() - started:.1f}s after the first page load began")

    with ui.instance() as instance:
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status.value == "SUCCESS"
        assert run.tags.get("dagster/partition") == name
        materialized = [entry.asset_materialization.asset_key.to_user_string()
                        for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
                        if entry.asset_materialization is not None]
        assert materialized == ["spotzee_users"]
    assert events_of(ui, run_id)[0] == "sync_started" and "sync_completed" in events_of(ui, run_id)
    with ui.pipeline.database.session() as session:
        started_event = session.scalars(select(LogEvent).where(LogEvent.run_id == run_id,
                                                               LogEvent.type == "sync_started")).one()
        assert started_event.details["full"] is True  # the config reached the sync
    assert "sync_failed" not in events_of(ui, run_id)
    assert status(ui) == "active"

    # 3. The Checks tab: Execute all runs the four checks on their own.
    page.goto(f"{ui.url}/assets/spotzee_users?view=checks", wait_until="domcontentloaded")
    expect(page.get_by_text("Checks (4)", exact=True)).to_be_visible()
    execute_all = page.get_by_role("button", name="Execute all")
    expect(execute_all).to_be_enabled()
    shoot(page, ui, "04-checks-tab")
    execute_all.click()
    checks_run = follow_launched_run(page)
    expect(page.get_by_text("4 checks", exact=True)).to_be_visible()
    run_succeeds(page)
    shoot(page, ui, "05-checks-run-succeeded")
    assert events_of(ui, checks_run) == [] or set(events_of(ui, checks_run)) == {"health_check"}
    assert status(ui) == "active"

    # Each check's execution history shows this run's result for the partition: passed.
    page.goto(f"{ui.url}/assets/spotzee_users?view=checks", wait_until="domcontentloaded")
    for check in CHECKS:
        page.locator(f"[title='{check}']").first.click()
        expect(page).to_have_url(re.compile(rf"[?&]checkDetail={check}(&|$)"))
        page.get_by_text("Execution history", exact=True).click()
        rows = page.get_by_role("row").filter(has=page.locator(f"a[href*='/runs/{checks_run}']"))
        row = rows.filter(has_text=name).first
        expect(row).to_be_visible()
        expect(row).to_contain_text("Passed")
        shoot(page, ui, f"06-check-{check}")

    # 4. Several partitions: the dialog launches a backfill, one sync run per integration.
    page.goto(f"{ui.url}/assets/spotzee_users", wait_until="domcontentloaded")
    page.get_by_role("button", name=re.compile(r"^(\w+ )?Materialize…$")).first.click()
    dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize spotzee_users")
    dialog.get_by_role("button", name="All", exact=True).click()
    expect(dialog.get_by_text("2 partitions", exact=True)).to_be_visible()
    shoot(page, ui, "07-backfill-dialog")
    with ui.instance() as instance:
        before = {b.backfill_id for b in instance.get_backfills()}
    dialog.get_by_role("button", name=re.compile("^Launch (backfill|2 runs)$")).click()
    runs = backfill_runs(ui, before)
    assert sorted(r.tags["dagster/partition"] for r in runs) == sorted([name, ui.second])
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs), [(r.run_id, r.status) for r in runs]
    for run in runs:
        assert "sync_completed" in events_of(ui, run.run_id) and "sync_failed" not in events_of(ui, run.run_id)
    assert status(ui) == status(ui, ui.second) == "active"
    print(f"screenshots in {ui.screenshots}")


def backfill_runs(ui: DagsterUI, before: set[str]) -> list[dg.DagsterRun]:
    """Wait for the backfill the UI just created to finish its runs (the daemon drives it)."""
    deadline = time.monotonic() + RUN_MS / 1000
    with ui.instance() as instance:
        while True:
            created = [b for b in instance.get_backfills() if b.backfill_id not in before]
            if created:
                runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": created[0].backfill_id}))
                if len(runs) == 2 and all(r.is_finished for r in runs):
                    return list(runs)
            assert time.monotonic() < deadline, f"backfill {created} not finished"
            time.sleep(2)
