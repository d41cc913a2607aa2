"""A real browser drives the Dagster UI: the asset graph shows the three assets, a materialization of
the integration's partition is launched from the launch dialog, the run succeeds, and the four
health checks on ``spotzee_users`` show results for that partition from that run.

Screenshots of each step land in the test's tmp dir (``screenshots/``)."""

from __future__ import annotations

import contextlib
import re
import time

import dagster as dg
import pytest
from playwright.sync_api import Page, expect

from sf_pipeline.health import CheckName
from sf_pipeline_tests.browser.conftest import DagsterUI

ASSETS = ("salesforce_records", "user_changes", "spotzee_users")
CHECKS = sorted(name.value for name in CheckName)
FIRST_LOAD_MS = 60_000  # the first page load compiles and fetches a lot
RUN_MS = 300_000  # the multiprocess executor starts a process per step

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
@pytest.mark.timeout(600)
def test_materialize_partition_from_the_ui(dagster_ui: DagsterUI, page: Page) -> None:
    try:
        drive(page, dagster_ui)
    except BaseException:
        with contextlib.suppress(Exception):
            shoot(page, dagster_ui, "99-failure")
        raise


def drive(page: Page, ui: DagsterUI) -> None:
    name = ui.name
    dismiss_community_dialog(page)
    started = time.monotonic()

    # The asset graph: the three assets, one node each.
    page.goto(f"{ui.url}/asset-groups", wait_until="domcontentloaded")
    for asset in ASSETS:
        node = page.locator("[class*='AssetNode_assetName']", has_text=re.compile(f"^{asset}$"))
        expect(node).to_have_count(1, timeout=FIRST_LOAD_MS)
        expect(node).to_be_visible()
    shoot(page, ui, "01-asset-graph")

    # Launch a materialization of the integration's partition from the launch dialog.
    page.get_by_role("button", name="Materialize all…").click()
    dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize 3 assets")
    expect(dialog).to_be_visible()
    dialog.get_by_text("Select a partition or create one").click()
    # Partition names render twice (text and a hidden measuring copy) inside one menu item.
    page.get_by_role("menuitem", name=re.compile(rf"^{name}(\s+{name})?$")).click()
    dialog.get_by_text("Launch runs to materialize 3 assets").click()  # closes the partition menu
    expect(page.get_by_placeholder("Filter partitions")).to_be_hidden()
    expect(dialog.get_by_text("1 partition", exact=True)).to_be_visible()
    launch = dialog.get_by_role("button", name="Launch 1 run")
    expect(launch).to_be_enabled()
    shoot(page, ui, "02-launch-dialog")
    launch.click()

    # Follow the "Launched run" toast to the run's page.
    toast = page.get_by_text(re.compile(r"^Launched run [0-9a-f]{8}$"))
    expect(toast).to_be_visible()
    page.get_by_role("link", name="View", exact=True).click()
    page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}"))
    run_id = page.url.split("/runs/", 1)[1].split("?", 1)[0]
    expect(page.get_by_text(f"partition: {name}", exact=True)).to_be_visible()
    expect(page.get_by_text("3 assets", exact=True)).to_be_visible()
    expect(page.get_by_text("4 checks", exact=True)).to_be_visible()

    # The run succeeds (the daemon dequeues it, the code server launches it).
    expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=RUN_MS)
    expect(page.get_by_text("RUN_SUCCESS", exact=True)).to_be_visible()
    shoot(page, ui, "03-run-succeeded")
    ran = time.monotonic() - started

    # Dagster's own record agrees: this run, of this partition, succeeded.
    with ui.instance() as instance:
        run = instance.get_run_by_id(run_id)
        assert run is not None
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert run.tags.get("dagster/partition") == name

    # The four health checks on spotzee_users, each with a result for this partition from this run.
    page.goto(f"{ui.url}/assets/spotzee_users?view=checks", wait_until="domcontentloaded")
    expect(page.get_by_text("Checks (4)", exact=True)).to_be_visible()
    for check in CHECKS:
        expect(page.locator(f"[title='{check}']").first).to_be_visible()
    expect(page.get_by_text("Succeeded", exact=True)).to_have_count(len(CHECKS))
    shoot(page, ui, "04-checks")
    for check in CHECKS:
        page.locator(f"[title='{check}']").first.click()
        expect(page).to_have_url(re.compile(rf"[?&]checkDetail={check}(&|$)"))
        page.get_by_text("Execution history", exact=True).click()
        row = page.get_by_role("row").filter(has=page.locator(f"a[href*='/runs/{run_id}']"))
        expect(row.first).to_be_visible()
        expect(row.first).to_contain_text("Passed")
        expect(row.first).to_contain_text(name)
        shoot(page, ui, f"05-check-{check}")
    print(f"run {run_id} succeeded {ran:.1f}s after the first page load began; screenshots in {ui.screenshots}")
