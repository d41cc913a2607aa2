"""Which API an object's extract starts with, before any call is made."""

from __future__ import annotations

import pytest

from sf_pipeline.sync.api_choice import ApiChoice, choose_by_estimate, choose_up_front
from sf_pipeline.sync.plan import ObjectPlan


def plan(*, full: bool) -> ObjectPlan:
    return ObjectPlan("Lead", ("Id", "LastModifiedDate", "IsDeleted"), None, full, None, None, "f")


@pytest.mark.parametrize(
    ("setting", "full", "api"),
    [("auto", True, "bulk"), ("auto", False, None), ("rest", True, "rest"), ("rest", False, "rest"),
     ("bulk", True, "bulk"), ("bulk", False, "bulk")],
)
def test_full_syncs_go_bulk_under_auto_and_the_setting_overrides(setting: str, full: bool, api: str | None) -> None:
    choice = choose_up_front(setting, plan(full=full))
    assert (choice.api if choice else None) == api


def test_an_incremental_goes_bulk_only_above_the_threshold() -> None:
    assert choose_by_estimate(10_001, 10_000) == ApiChoice("bulk", "incremental estimate 10,001 > 10,000 records")
    assert choose_by_estimate(10_000, 10_000).api == "rest"
    assert choose_by_estimate(0).api == "rest"


def test_an_unknown_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="soap"):
        choose_up_front("soap", plan(full=True))


def test_a_bulk_job_reads_the_rest_query_unordered() -> None:
    p = ObjectPlan("Lead", ("Id", "Email"), "Email != null", False, None, None, "f")
    assert p.soql(ordered=False) == "SELECT Id, Email FROM Lead WHERE (Email != null)"
    assert p.soql() == p.soql(ordered=False) + " ORDER BY LastModifiedDate ASC, Id ASC"
