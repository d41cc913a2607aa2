"""Query paging over HTTPS: totals, order, nextRecordsUrl, batch sizes and query locators."""

from __future__ import annotations

from datetime import timedelta

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sf_pipeline.sandbox import Org
from sf_pipeline_tests.sandbox.conftest import Api


@pytest.fixture
def many(org: Org) -> list[str]:
    # 2,500 leads sharing only five LastModifiedDates: paging must still follow Id within each tie.
    return org.create("Lead", [{"LastName": f"L{i}", "Company": "C"} for i in range(2500)], at="2024-06-01T00:00:00Z")


def test_simple_salesforce_pages_through_every_record_in_order(sf: Salesforce, many: list[str]) -> None:
    result = sf.query_all("SELECT Id FROM Lead ORDER BY LastModifiedDate")
    assert [r["Id"] for r in result["records"]] == many


def test_first_page_reports_total_and_a_root_relative_next_url(api: Api, many: list[str]) -> None:
    page = api.query("SELECT Id FROM Lead ORDER BY Id").json()
    assert page["totalSize"] == 2500
    assert page["done"] is False
    assert len(page["records"]) == 2000
    assert page["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
    assert page["nextRecordsUrl"].endswith("-2000")
    last = api.get(page["nextRecordsUrl"]).json()
    assert last["totalSize"] == 2500
    assert last["done"] is True
    assert "nextRecordsUrl" not in last
    assert [r["Id"] for r in page["records"] + last["records"]] == many


@pytest.mark.parametrize(
    ("asked", "served"),
    [("batchSize=500", 500), ("batchSize=50", 200), ("batchSize=5000", 2000), ("nonsense", 2000)],
)
def test_query_options_batch_size_is_honoured_between_200_and_2000(
    api: Api, many: list[str], asked: str, served: int
) -> None:
    page = api.query("SELECT Id FROM Lead", headers={"Sforce-Query-Options": asked}).json()
    assert len(page["records"]) == served


def test_simple_salesforce_passes_batch_size_to_every_page(sf: Salesforce, many: list[str]) -> None:
    pages = []
    result = sf.query("SELECT Id FROM Lead", headers={"Sforce-Query-Options": "batchSize=1000"})
    pages.append(len(result["records"]))
    while not result["done"]:
        result = sf.query_more(
            result["nextRecordsUrl"],
            identifier_is_url=True,
            headers={"Sforce-Query-Options": "batchSize=1000"},
        )
        pages.append(len(result["records"]))
    assert pages == [1000, 1000, 500]


def test_org_batch_size_option_pages_small_orgs(org: Org, api: Api) -> None:
    ids = org.create("Lead", [{"LastName": f"L{i}", "Company": "C"} for i in range(7)])
    org.set_options(batch_size=3)
    page = api.query("SELECT Id FROM Lead").json()
    seen = [r["Id"] for r in page["records"]]
    sizes = [len(page["records"])]
    while not page["done"]:
        page = api.get(page["nextRecordsUrl"]).json()
        seen += [r["Id"] for r in page["records"]]
        sizes.append(len(page["records"]))
    assert sizes == [3, 3, 1]
    assert seen == ids


def test_limit_caps_total_size_across_pages(api: Api, many: list[str]) -> None:
    page = api.query("SELECT Id FROM Lead LIMIT 2100").json()
    assert page["totalSize"] == 2100
    assert len(api.get(page["nextRecordsUrl"]).json()["records"]) == 100


def test_pages_are_a_snapshot_of_the_matching_ids(org: Org, api: Api, many: list[str]) -> None:
    page = api.query("SELECT Id, LastName FROM Lead ORDER BY Id").json()
    org.delete("Lead", many[2100:2200])
    org.create("Lead", [{"LastName": "Late", "Company": "C"}])
    org.update("Lead", many[2000], {"LastName": "Renamed"})
    rest = api.get(page["nextRecordsUrl"]).json()["records"]
    assert [r["Id"] for r in rest] == many[2000:]
    assert rest[0]["LastName"] == "Renamed"  # values are read when the page is served


def test_query_all_returns_deleted_rows_and_pages_through_query_locators(
    org: Org, sf: Salesforce, many: list[str]
) -> None:
    org.delete("Lead", many[:10])
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == 2490
    every = sf.query_all("SELECT Id, IsDeleted FROM Lead", include_deleted=True)["records"]
    assert len(every) == 2500
    assert sum(r["IsDeleted"] for r in every) == 10


def test_query_more_by_locator_id_and_dlt_doubled_path(api: Api, sf: Salesforce, many: list[str]) -> None:
    page = sf.query("SELECT Id FROM Lead")
    locator = page["nextRecordsUrl"].rsplit("/", 1)[1]
    assert len(sf.query_more(locator)["records"]) == 500
    assert len(sf.query_more(page["nextRecordsUrl"])["records"]) == 500  # dlt's "query//services/..." form
    assert len(api.get(f"/services/data/v59.0/queryAll/{locator}").json()["records"]) == 500


def test_unknown_or_exhausted_locator_is_invalid_query_locator(api: Api, many: list[str]) -> None:
    page = api.query("SELECT Id FROM Lead").json()
    base = page["nextRecordsUrl"].rsplit("-", 1)[0]
    for path in (base + "-2500", base + "-9999", "/services/data/v59.0/query/01g8d00000000ZZAAA-2000"):
        response = api.get(path)
        assert response.status_code == 400
        assert response.json() == [{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}]


def test_idle_cursor_expires_on_the_org_clock(org: Org, sf: Salesforce, many: list[str]) -> None:
    page = sf.query("SELECT Id FROM Lead")
    org.clock.advance(timedelta(minutes=16).total_seconds())
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query_more(page["nextRecordsUrl"], identifier_is_url=True)
    assert "INVALID_QUERY_LOCATOR" in str(caught.value)


def test_opening_more_cursors_than_allowed_releases_the_oldest(org: Org, api: Api, many: list[str]) -> None:
    org.set_options(max_open_cursors=2)
    first, second, third = (api.query("SELECT Id FROM Lead").json()["nextRecordsUrl"] for _ in range(3))
    assert api.get(first).status_code == 400
    assert api.get(second).status_code == 200
    assert api.get(third).status_code == 200


def test_count_query_over_http(api: Api, many: list[str]) -> None:
    assert api.query("SELECT COUNT() FROM Lead WHERE LastName LIKE 'L1%'").json() == {
        "totalSize": 1 + 10 + 100 + 1000,
        "done": True,
        "records": [],
    }


def test_empty_result(api: Api) -> None:
    assert api.query("SELECT Id FROM Lead").json() == {"totalSize": 0, "done": True, "records": []}
