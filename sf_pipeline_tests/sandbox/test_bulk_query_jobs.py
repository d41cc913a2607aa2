"""Bulk API 2.0 query jobs, driven over HTTPS with plain ``requests`` as Salesforce documents them:
create a job, poll its info, page through ``results`` by ``Sforce-Locator``, abort and delete."""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sf_pipeline.sandbox import Org, SandboxHandle, populate
from sf_pipeline_tests.sandbox.conftest import Api, lead

V = "/services/data/v59.0"
JOBS = V + "/jobs/query"

LEAD_FIELDS = [
    "Id",
    "FirstName",
    "LastName",
    "Company",
    "Email",
    "Description",
    "Street",
    "City",
    "Latitude",
    "AnnualRevenue",
    "NumberOfEmployees",
    "Score__c",
    "HasOptedOutOfEmail",
    "IsConverted",
    "Birthdate__c",
    "Interests__c",
    "CreatedDate",
    "LastModifiedDate",
    "OwnerId",
    "IsDeleted",
]
LEAD_SOQL = f"SELECT {', '.join(LEAD_FIELDS)} FROM Lead"


class Bulk:
    """The calls a client makes, each one HTTP request with a Bearer token."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.session = api.session

    def url(self, path: str) -> str:
        return self.api.base + path

    def create(self, soql: str, **options: str) -> requests.Response:
        body = {"operation": options.pop("operation", "query"), "query": soql, **options}
        return self.session.post(self.url(JOBS), json=body, timeout=30)

    def create_job(self, soql: str, **options: str) -> dict[str, Any]:
        response = self.create(soql, **options)
        assert response.status_code == 200, response.text
        created: dict[str, Any] = response.json()
        return created

    def info(self, job_id: str) -> dict[str, Any]:
        response = self.session.get(self.url(f"{JOBS}/{job_id}"), timeout=30)
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    def results(self, job_id: str, **params: str | int) -> requests.Response:
        return self.session.get(
            self.url(f"{JOBS}/{job_id}/results"), params=params, headers={"Accept": "text/csv"}, timeout=30
        )

    def pages(self, job_id: str, max_records: int) -> Iterator[requests.Response]:
        locator: str | None = None
        while True:
            params: dict[str, str | int] = {"maxRecords": max_records}
            if locator is not None:
                params["locator"] = locator
            page = self.results(job_id, **params)
            assert page.status_code == 200, page.text
            yield page
            locator = page.headers["Sforce-Locator"]
            if locator == "null":
                return


@pytest.fixture
def bulk(api: Api) -> Bulk:
    return Bulk(api)


@pytest.fixture
def people(org: Org) -> list[str]:
    """Generated leads plus hand-made ones with every awkward value a CSV can hold."""
    populate(org, records=40, seed=5)
    return org.create(
        "Lead",
        [
            lead(
                FirstName="Zoë",
                LastName='O"Brien',
                Company="Ünïcødé GmbH, Köln",
                Description='Line one\nLine two, with "quotes"\r\nand 日本語',
                Street="500 Oracle Parkway\nBuilding 3",
                City="東京",
                Latitude=35.6762,
                AnnualRevenue=12500000.0,
                NumberOfEmployees=250,
                Score__c=99.5,
                HasOptedOutOfEmail=True,
                Birthdate__c="1980-02-29",
                Interests__c=["Webinars", "Events"],
                Email="zoe@example.org",
            ),
            lead(LastName="Nulls", Company="Empty Inc"),
        ],
    )


def _csv_text(value: Any) -> str | None:
    """How Salesforce writes a REST JSON value in Bulk CSV (None stays None: an empty field)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.endswith("+0000"):
        return value[:-5] + "Z"
    return str(value)


def _expected_csv(header: list[str], rows: list[list[str | None]], delimiter: str = ",", eol: str = "\n") -> str:
    """The exact CSV text: every value in double quotes with quotes doubled, nulls empty and unquoted."""

    def quote(v: str | None) -> str:
        return "" if v is None else '"' + v.replace('"', '""') + '"'

    lines = [delimiter.join(quote(h) for h in header)]
    lines += [delimiter.join(quote(v) for v in row) for row in rows]
    return "".join(line + eol for line in lines)


def _rest_rows(api: Api, soql: str, fields: list[str], *, all_rows: bool = False) -> list[list[str | None]]:
    answer = api.query(soql, all_rows=all_rows).json()
    assert answer["done"]
    rows = []
    for record in answer["records"]:
        row = []
        for name in fields:
            value: Any = record
            for part in name.split("."):
                value = None if value is None else value[part]
            row.append(_csv_text(value))
        rows.append(row)
    return rows


def _wait_complete(bulk: Bulk, job_id: str) -> dict[str, Any]:
    info = bulk.info(job_id)
    assert info["state"] == "JobComplete", info
    return info


# -- states and paging -------------------------------------------------------------------------------


def test_job_moves_upload_complete_in_progress_job_complete_as_its_processing_time_passes(
    org: Org, bulk: Bulk, people: list[str]
) -> None:
    org.set_bulk_processing_time(fixed_seconds=3600)
    created = bulk.create_job("SELECT Id FROM Lead")
    assert created["state"] == "UploadComplete"
    assert created["id"].startswith("750") and len(created["id"]) == 18
    assert {k: created[k] for k in ("operation", "object", "concurrencyMode", "contentType", "apiVersion")} == {
        "operation": "query",
        "object": "Lead",
        "concurrencyMode": "Parallel",
        "contentType": "CSV",
        "apiVersion": 59.0,
    }
    assert created["lineEnding"] == "LF" and created["columnDelimiter"] == "COMMA"
    assert created["createdById"] == org.user_id

    running = bulk.info(created["id"])
    assert running["state"] == "InProgress"
    assert running["jobType"] == "V2Query"
    assert "errorMessage" not in running
    early = bulk.results(created["id"])
    assert early.status_code == 400
    assert early.json()[0]["errorCode"] == "INVALIDJOB"

    org.set_bulk_processing_time(fixed_seconds=0)
    done = bulk.info(created["id"])
    assert done["state"] == "JobComplete"
    assert done["numberRecordsProcessed"] == org.count("Lead") == 42
    assert done["retries"] == 0
    assert isinstance(done["totalProcessingTime"], int)


def test_processing_time_grows_with_the_records_the_query_matches(org: Org, people: list[str]) -> None:
    org.set_bulk_processing_time(fixed_seconds=0, per_record_seconds=3600)
    empty = org.bulk.create(org, "query", "SELECT Id FROM Lead WHERE LastName = 'nobody'", api_version="59.0")
    full = org.bulk.create(org, "query", "SELECT Id FROM Lead", api_version="59.0")
    assert org.bulk.get(org, empty.id).state == "JobComplete"
    assert org.bulk.get(org, full.id).state == "InProgress"
    assert full.due - full.created_at == pytest.approx(3600 * 42)


def test_results_page_by_locator_with_max_records_and_locators_can_be_read_again(
    org: Org, bulk: Bulk, people: list[str]
) -> None:
    job = bulk.create_job("SELECT Id, LastName FROM Lead")
    _wait_complete(bulk, job["id"])
    pages = list(bulk.pages(job["id"], max_records=10))
    assert [int(p.headers["Sforce-NumberOfRecords"]) for p in pages] == [10, 10, 10, 10, 2]
    assert pages[-1].headers["Sforce-Locator"] == "null"
    assert all(p.headers["Content-Type"].startswith("text/csv") for p in pages)
    ids = []
    for page in pages:
        rows = list(csv.reader(io.StringIO(page.text)))
        assert rows[0] == ["Id", "LastName"]  # every page is a whole CSV with its own header row
        assert len(rows) - 1 == int(page.headers["Sforce-NumberOfRecords"])
        ids += [r[0] for r in rows[1:]]
    assert sorted(ids) == sorted(r["Id"] for r in org.records("Lead"))

    second_locator = pages[0].headers["Sforce-Locator"]
    again = bulk.results(job["id"], locator=second_locator, maxRecords=10)
    assert again.text == pages[1].text
    assert again.headers["Sforce-Locator"] == pages[1].headers["Sforce-Locator"]


def test_results_are_a_snapshot_taken_when_the_job_completed(org: Org, bulk: Bulk, people: list[str]) -> None:
    job = bulk.create_job(f"SELECT Id, LastName FROM Lead WHERE Id = '{people[1]}'")
    _wait_complete(bulk, job["id"])
    org.update("Lead", people[1], {"LastName": "Changed"})
    assert bulk.results(job["id"]).text == f'"Id","LastName"\n"{people[1]}","Nulls"\n'


# -- CSV values against the REST answer -------------------------------------------------------------


def test_csv_holds_exactly_the_rest_values_for_the_same_query(api: Api, bulk: Bulk, people: list[str]) -> None:
    job = bulk.create_job(LEAD_SOQL)
    _wait_complete(bulk, job["id"])
    body = "".join(page.text for page in bulk.pages(job["id"], max_records=1000))
    expected_rows = _rest_rows(api, LEAD_SOQL, LEAD_FIELDS)
    assert body == _expected_csv(LEAD_FIELDS, expected_rows)

    by_id = {row[0]: row for row in expected_rows}
    special = dict(zip(LEAD_FIELDS, by_id[people[0]], strict=True))
    assert special["Description"] == 'Line one\nLine two, with "quotes"\r\nand 日本語'
    assert special["HasOptedOutOfEmail"] == "true" and special["IsConverted"] == "false"
    assert special["AnnualRevenue"] == "12500000.0" and special["NumberOfEmployees"] == "250"
    assert special["Interests__c"] == "Webinars;Events"
    assert special["CreatedDate"] is not None and special["CreatedDate"].endswith(".000Z")
    nulls = dict(zip(LEAD_FIELDS, by_id[people[1]], strict=True))
    assert nulls["Email"] is None and nulls["Description"] is None and nulls["Latitude"] is None
    # A null is an empty field with no quotes, so it differs from an empty string.
    line = next(raw for raw in body.split("\n") if raw.startswith(f'"{people[1]}"'))
    assert '"Nulls","Empty Inc",,,' in line


def test_csv_parent_fields_are_columns_named_by_their_relationship_path(
    org: Org, api: Api, bulk: Bulk, people: list[str]
) -> None:
    fields = ["Id", "Status", "Lead.Email", "Lead.HasOptedOutOfEmail", "Contact.Email", "Campaign.Name"]
    soql = f"SELECT {', '.join(fields)} FROM CampaignMember"
    job = bulk.create_job(soql)
    _wait_complete(bulk, job["id"])
    pages = [page.text for page in bulk.pages(job["id"], max_records=3)]
    header = '"' + '","'.join(fields) + '"\n'
    assert len(pages) > 1 and all(page.startswith(header) for page in pages)
    rows = _rest_rows(api, soql, fields)
    assert len(rows) == org.count("CampaignMember") > 0
    assert any(row[2] is not None for row in rows) and any(row[4] is not None for row in rows)
    assert header + "".join(page.removeprefix(header) for page in pages) == _expected_csv(fields, rows)


def test_delimiter_and_line_ending_follow_the_job(api: Api, bulk: Bulk, people: list[str]) -> None:
    soql = "SELECT Id, LastName, Company, Description FROM Lead"
    for delimiter, char in (("PIPE", "|"), ("TAB", "\t"), ("SEMICOLON", ";"), ("CARET", "^"), ("BACKQUOTE", "`")):
        job = bulk.create_job(soql, columnDelimiter=delimiter, lineEnding="CRLF")
        assert job["columnDelimiter"] == delimiter and job["lineEnding"] == "CRLF"
        _wait_complete(bulk, job["id"])
        body = bulk.results(job["id"]).content.decode("utf-8")
        expected = _expected_csv(
            ["Id", "LastName", "Company", "Description"],
            _rest_rows(api, soql, ["Id", "LastName", "Company", "Description"]),
            char,
            "\r\n",
        )
        assert body == expected


def test_query_all_includes_deleted_records_and_query_does_not(
    org: Org, api: Api, bulk: Bulk, people: list[str]
) -> None:
    org.delete("Lead", [people[1]])
    live = bulk.create_job("SELECT Id, IsDeleted FROM Lead")
    every = bulk.create_job("SELECT Id, IsDeleted FROM Lead", operation="queryAll")
    assert every["operation"] == "queryAll"
    live_body = bulk.results(_wait_complete(bulk, live["id"])["id"]).text
    all_body = bulk.results(_wait_complete(bulk, every["id"])["id"]).text
    assert people[1] not in live_body
    assert f'"{people[1]}","true"' in all_body
    assert all_body == _expected_csv(
        ["Id", "IsDeleted"], _rest_rows(api, "SELECT Id, IsDeleted FROM Lead", ["Id", "IsDeleted"], all_rows=True)
    )


def test_gzip_body_when_the_client_accepts_it(bulk: Bulk, people: list[str]) -> None:
    job = bulk.create_job("SELECT Id, Description FROM Lead")
    _wait_complete(bulk, job["id"])
    url = bulk.url(f"{JOBS}/{job['id']}/results")
    plain = bulk.session.get(url, headers={"Accept-Encoding": "identity"}, timeout=30)
    assert "Content-Encoding" not in plain.headers
    zipped = bulk.session.get(url, headers={"Accept-Encoding": "gzip"}, timeout=30, stream=True)
    assert zipped.headers["Content-Encoding"] == "gzip"
    raw = zipped.raw.read(decode_content=False)
    assert len(raw) < len(plain.content)
    assert gzip.decompress(raw) == plain.content


# -- SOQL Bulk API 2.0 rejects ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("soql", "code", "message"),
    [
        ("SELECT COUNT() FROM Lead", "INVALIDJOB", "COUNT()"),
        ("SELECT MAX(AnnualRevenue) FROM Lead", "INVALIDJOB", "MAX()"),
        ("SELECT LeadSource FROM Lead GROUP BY LeadSource", "INVALIDJOB", "GROUP BY"),
        ("SELECT Id FROM Lead LIMIT 5 OFFSET 10", "INVALIDJOB", "OFFSET"),
        ("SELECT TYPEOF Owner WHEN User THEN Email END FROM Lead", "INVALIDJOB", "TYPEOF"),
        ("SELECT Id, Address FROM Lead", "API_ERROR", "Selecting compound data not supported in Bulk Query"),
        ("SELECT Id, MailingAddress FROM Contact", "API_ERROR", "Selecting compound data not supported in Bulk Query"),
        (
            "SELECT Id, (SELECT Id FROM CampaignMembers) FROM Lead",
            "API_ERROR",
            "Aggregate Relationships not supported in Bulk V2 Query with CSV content type.",
        ),
    ],
)
def test_soql_bulk_cannot_run_is_refused_with_salesforce_error(
    org: Org, bulk: Bulk, people: list[str], soql: str, code: str, message: str
) -> None:
    before = org.bulk.limits()["DailyBulkV2QueryJobs"]["Remaining"]
    response = bulk.create(soql)
    assert response.status_code == 400
    [error] = response.json()
    assert error["errorCode"] == code
    assert message in error["message"]
    assert org.bulk.limits()["DailyBulkV2QueryJobs"]["Remaining"] == before


def test_compound_components_and_child_to_parent_paths_are_accepted(bulk: Bulk, people: list[str]) -> None:
    for soql in (
        "SELECT Id, Street, City, State, PostalCode, Country, Latitude, Longitude, GeocodeAccuracy FROM Lead",
        "SELECT Id, MailingStreet, MailingCity, MailingLatitude FROM Contact",
        "SELECT Id, Lead.Email, Lead.Address FROM CampaignMember WHERE Lead.Email != null ORDER BY Id LIMIT 5",
    ):
        response = bulk.create(soql)
        if "Lead.Address" in soql:
            assert response.status_code == 400  # a compound field is refused through a parent too
            continue
        assert response.status_code == 200, response.text


def test_unknown_fields_and_bad_options_are_refused(bulk: Bulk, people: list[str]) -> None:
    unknown = bulk.create("SELECT Id, Nope__c FROM Lead")
    assert unknown.status_code == 400 and unknown.json()[0]["errorCode"] == "INVALID_FIELD"
    for options in (
        {"operation": "insert"},
        {"columnDelimiter": "COLON"},
        {"lineEnding": "CR"},
        {"contentType": "JSON"},
    ):
        response = bulk.create("SELECT Id FROM Lead", **options)
        assert response.status_code == 400, options
        assert response.json()[0]["errorCode"] == "INVALIDJOB"


# -- limits, abort, delete, listing -----------------------------------------------------------------


def test_jobs_and_storage_count_against_daily_bulk_limits_and_every_call_uses_an_api_request(
    org: Org, api: Api, bulk: Bulk, people: list[str]
) -> None:
    before = api.get(V + "/limits").json()
    job = bulk.create_job("SELECT Id, Description FROM Lead")
    _wait_complete(bulk, job["id"])
    assert bulk.results(job["id"]).status_code == 200
    after = api.get(V + "/limits").json()
    assert after["DailyBulkV2QueryJobs"]["Remaining"] == before["DailyBulkV2QueryJobs"]["Remaining"] - 1
    assert after["DailyBulkV2QueryFileStorageMB"]["Remaining"] < before["DailyBulkV2QueryFileStorageMB"]["Remaining"]
    assert after["DailyBulkV2QueryJobs"]["Max"] == 10000
    assert after["DailyBulkV2QueryFileStorageMB"]["Max"] == 976562
    # create, info, results, and the second limits call itself
    used = before["DailyApiRequests"]["Remaining"] - after["DailyApiRequests"]["Remaining"]
    assert used == 4

    org.bulk.set_limits(max_jobs=5, jobs_used=5)
    refused = bulk.create("SELECT Id FROM Lead")
    assert refused.status_code == 400
    assert refused.json() == [
        {"message": "Max bulk v2 query jobs (5) per 24 hrs has been reached", "errorCode": "LIMIT_EXCEEDED"}
    ]


def test_results_storage_running_out_fails_the_job(org: Org, bulk: Bulk, people: list[str]) -> None:
    org.bulk.set_limits(max_storage_mb=0)
    job = bulk.create_job("SELECT Id FROM Lead")
    info = bulk.info(job["id"])
    assert info["state"] == "Failed"
    assert "Max bulk v2 query result size stored" in info["errorMessage"]


def test_abort_then_delete_a_job(org: Org, bulk: Bulk, people: list[str]) -> None:
    org.set_bulk_processing_time(fixed_seconds=3600)
    job = bulk.create_job("SELECT Id FROM Lead")
    url = bulk.url(f"{JOBS}/{job['id']}")
    running_delete = bulk.session.delete(url, timeout=30)
    assert running_delete.status_code == 400 and running_delete.json()[0]["errorCode"] == "INVALIDJOBSTATE"
    aborted = bulk.session.patch(url, json={"state": "Aborted"}, timeout=30)
    assert aborted.status_code == 200 and aborted.json()["state"] == "Aborted"
    assert bulk.info(job["id"])["state"] == "Aborted"
    assert bulk.results(job["id"]).status_code == 400
    again = bulk.session.patch(url, json={"state": "Aborted"}, timeout=30)
    assert again.status_code == 400 and again.json()[0]["errorCode"] == "INVALIDJOBSTATE"
    deleted = bulk.session.delete(url, timeout=30)
    assert deleted.status_code == 204 and deleted.content == b""
    gone = bulk.session.get(url, timeout=30)
    assert gone.status_code == 404 and gone.json()[0]["errorCode"] == "NOT_FOUND"


def test_only_aborted_is_a_state_a_client_can_set(bulk: Bulk, people: list[str]) -> None:
    job = bulk.create_job("SELECT Id FROM Lead")
    response = bulk.session.patch(bulk.url(f"{JOBS}/{job['id']}"), json={"state": "JobComplete"}, timeout=30)
    assert response.status_code == 400 and response.json()[0]["errorCode"] == "INVALIDJOBSTATE"


def test_job_list_pages_with_next_records_url(org: Org, bulk: Bulk, people: list[str]) -> None:
    org.bulk.settings.list_page_size = 2
    created = [bulk.create_job("SELECT Id FROM Lead")["id"] for _ in range(5)]
    seen, url, pages = [], JOBS, 0
    while url:
        page = bulk.session.get(bulk.url(url), timeout=30).json()
        pages += 1
        seen += [job["id"] for job in page["records"]]
        assert all(job["jobType"] == "V2Query" for job in page["records"])
        assert page["done"] == (page["nextRecordsUrl"] is None)
        url = page["nextRecordsUrl"]
    assert seen == created and pages == 3


# -- the control API's faults -----------------------------------------------------------------------


def test_control_api_fails_the_next_job_or_one_by_id(
    org: Org, sandbox: SandboxHandle, bulk: Bulk, people: list[str]
) -> None:
    sandbox.control.fail_next_bulk_job("InternalServerError : simulated")
    failed = bulk.create_job("SELECT Id FROM Lead")
    info = bulk.info(failed["id"])
    assert info["state"] == "Failed" and info["errorMessage"] == "InternalServerError : simulated"
    assert bulk.results(failed["id"]).status_code == 400
    assert bulk.info(bulk.create_job("SELECT Id FROM Lead")["id"])["state"] == "JobComplete"

    org.set_bulk_processing_time(fixed_seconds=3600)
    running = bulk.create_job("SELECT Id FROM Lead")
    assert sandbox.control.fail_bulk_job(running["id"], "boom")["state"] == "Failed"
    assert bulk.info(running["id"])["errorMessage"] == "boom"


def test_control_api_expires_one_results_locator(sandbox: SandboxHandle, bulk: Bulk, people: list[str]) -> None:
    job = bulk.create_job("SELECT Id FROM Lead")
    _wait_complete(bulk, job["id"])
    first = bulk.results(job["id"], maxRecords=10)
    second_locator = first.headers["Sforce-Locator"]
    second = bulk.results(job["id"], maxRecords=10, locator=second_locator)
    sandbox.control.expire_bulk_locator(job["id"], second_locator)
    expired = bulk.results(job["id"], maxRecords=10, locator=second_locator)
    assert expired.status_code == 400
    assert expired.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"
    later = bulk.results(job["id"], maxRecords=10, locator=second.headers["Sforce-Locator"])
    assert later.status_code == 200
    bogus = bulk.results(job["id"], locator="not-a-locator")
    assert bogus.status_code == 400 and bogus.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


@pytest.mark.parametrize(("status", "code"), [(500, "UNKNOWN_EXCEPTION"), (503, "SERVER_UNAVAILABLE")])
def test_status_faults_on_bulk_calls(
    sandbox: SandboxHandle, bulk: Bulk, people: list[str], status: int, code: str
) -> None:
    sandbox.control.inject_fault("bulk_job", "status", status=status)
    refused = bulk.create("SELECT Id FROM Lead")
    assert refused.status_code == status and refused.json()[0]["errorCode"] == code
    job = bulk.create_job("SELECT Id FROM Lead")
    _wait_complete(bulk, job["id"])
    sandbox.control.inject_fault("bulk_results", "status", status=status)
    assert bulk.results(job["id"]).status_code == status
    assert bulk.results(job["id"]).status_code == 200


def test_dropped_connection_during_a_results_download(sandbox: SandboxHandle, bulk: Bulk, people: list[str]) -> None:
    job = bulk.create_job("SELECT Id, Description FROM Lead")
    _wait_complete(bulk, job["id"])
    sandbox.control.inject_fault("bulk_results", "drop")
    with pytest.raises(requests.exceptions.RequestException):
        bulk.results(job["id"]).content  # noqa: B018
    assert bulk.results(job["id"]).status_code == 200


@pytest.mark.parametrize("encoding", ["gzip", "identity"])
def test_truncated_results_end_mid_record_with_fewer_rows_than_announced(
    sandbox: SandboxHandle, bulk: Bulk, people: list[str], encoding: str
) -> None:
    job = bulk.create_job("SELECT Id, LastName, Company FROM Lead")
    _wait_complete(bulk, job["id"])
    sandbox.control.inject_fault("bulk_results", "truncate")
    url = bulk.url(f"{JOBS}/{job['id']}/results")
    cut = bulk.session.get(url, headers={"Accept-Encoding": encoding}, timeout=30)
    assert cut.status_code == 200
    whole = bulk.session.get(url, headers={"Accept-Encoding": encoding}, timeout=30)
    assert whole.content.startswith(cut.content) and len(cut.content) < len(whole.content)
    assert not cut.content.endswith(b"\n")
    complete_rows = cut.content.count(b"\n") - 1
    assert complete_rows < int(cut.headers["Sforce-NumberOfRecords"]) == 42


def test_bulk_calls_count_per_endpoint(org: Org, bulk: Bulk, people: list[str]) -> None:
    org.counters.reset()
    job = bulk.create_job("SELECT Id FROM Lead")
    bulk.info(job["id"])
    bulk.results(job["id"])
    counts = org.counters.snapshot()
    assert counts["bulk_job"] == 2 and counts["bulk_results"] == 1


def test_results_with_another_api_version_than_the_job_answer_409(bulk: Bulk, people: list[str]) -> None:
    job = bulk.create_job("SELECT Id FROM Lead")
    _wait_complete(bulk, job["id"])
    other = bulk.session.get(bulk.url(f"/services/data/v60.0/jobs/query/{job['id']}/results"), timeout=30)
    assert other.status_code == 409
    assert "59.0" in other.json()[0]["message"]


def test_used_up_api_quota_and_expired_session_refuse_bulk_polls(org: Org, bulk: Bulk, people: list[str]) -> None:
    job = bulk.create_job("SELECT Id FROM Lead")
    used, quota = org.api_usage()
    org.set_api_quota(used=quota)
    refused = bulk.session.get(bulk.url(f"{JOBS}/{job['id']}"), timeout=30)
    assert refused.status_code == 403 and refused.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    org.set_api_quota(used=used)
    org.expire_sessions()
    expired = bulk.session.get(bulk.url(f"{JOBS}/{job['id']}/results"), timeout=30)
    assert expired.status_code == 401 and expired.json()[0]["errorCode"] == "INVALID_SESSION_ID"


def test_a_job_matching_nothing_has_a_header_only_page_and_no_next_locator(
    sandbox: SandboxHandle, bulk: Bulk, people: list[str]
) -> None:
    job = bulk.create_job("SELECT Id, Email FROM Lead WHERE LastName = 'nobody'")
    assert _wait_complete(bulk, job["id"])["numberRecordsProcessed"] == 0
    page = bulk.results(job["id"], maxRecords=10)
    assert page.text == '"Id","Email"\n'
    assert page.headers["Sforce-NumberOfRecords"] == "0" and page.headers["Sforce-Locator"] == "null"
    listed = {j["id"]: j for j in sandbox.control.bulk_jobs()}
    assert listed[job["id"]]["state"] == "JobComplete" and listed[job["id"]]["numberRecordsProcessed"] == 0
