"""The control API over HTTP (``ControlClient``), as a test in another process would use it."""

from __future__ import annotations

import pytest
import requests
from simple_salesforce import Salesforce

from sf_pipeline.sandbox import ControlClient, ControlError, SandboxHandle


def test_control_api_needs_the_client_secret(sandbox: SandboxHandle) -> None:
    assert sandbox.ca_bundle
    stranger = ControlClient(sandbox.instance_url, secret="wrong", verify=sandbox.ca_bundle)
    with pytest.raises(ControlError) as caught:
        stranger.state()
    assert caught.value.status == 401
    anonymous = sandbox.session().get(sandbox.instance_url + "/__sandbox__/state", timeout=10)
    assert anonymous.status_code == 401


def test_records_round_trip_through_the_control_api(sandbox: SandboxHandle, sf: Salesforce) -> None:
    control = sandbox.control
    a, b = control.create(
        "Lead",
        [{"LastName": "A", "Company": "C"}, {"LastName": "B", "Company": "C"}],
        at="2024-01-01T00:00:00Z",
    )
    control.update("Lead", a, {"Email": "a@c.test"}, at="2024-02-01T00:00:00Z")
    control.delete("Lead", [b], at="2024-03-01T00:00:00Z")
    assert control.get("Lead", a)["LastModifiedDate"] == "2024-02-01T00:00:00.000+0000"
    assert control.get("Lead", b)["IsDeleted"] is True
    assert [r["Id"] for r in control.records("Lead")] == [a]
    assert [r["Id"] for r in control.records("Lead", include_deleted=True)] == [a, b]
    control.undelete("Lead", [b])
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == 2
    touched = control.touch_random("Lead", 2, same_timestamp=True, at="2024-05-05T00:00:00Z")
    assert sorted(touched) == [a, b]
    contact = control.convert_lead(a)
    assert control.get("Lead", a)["ConvertedContactId"] == contact
    assert control.state()["records"] == {"Lead": 2, "Contact": 1, "Campaign": 0, "CampaignMember": 0}


def test_control_errors_name_the_problem(sandbox: SandboxHandle) -> None:
    with pytest.raises(ControlError) as missing:
        sandbox.control.get("Lead", "00Q8d0000000009EAA")
    assert missing.value.status == 404
    with pytest.raises(ControlError) as bad:
        sandbox.control.create("Lead", [{"NumberOfEmployees": "many"}])
    assert bad.value.status == 400
    assert "NumberOfEmployees" in bad.value.body[0]["message"]


def test_clock_control(sandbox: SandboxHandle) -> None:
    control = sandbox.control
    assert control.clock() == {"now": "2024-06-15T12:00:00.000+0000", "frozen": True}
    assert control.advance_clock(3600)["now"] == "2024-06-15T13:00:00.000+0000"
    assert control.set_clock("2025-01-01T00:00:00Z")["now"] == "2025-01-01T00:00:00.000+0000"
    assert control.unfreeze_clock()["frozen"] is False
    assert control.freeze_clock("2030-01-01T00:00:00+01:00") == {
        "now": "2029-12-31T23:00:00.000+0000",
        "frozen": True,
    }
    [lead] = control.create("Lead", [{"LastName": "N", "Company": "C"}])
    assert control.get("Lead", lead)["CreatedDate"] == "2029-12-31T23:00:00.000+0000"


def test_tokens_sessions_quota_and_options(sandbox: SandboxHandle) -> None:
    control = sandbox.control
    tokens = control.issue_refresh_token()
    assert tokens["instance_url"] == sandbox.instance_url and tokens["refresh_token"]
    session = sandbox.session()
    session.headers["Authorization"] = f"Bearer {tokens['access_token']}"
    limits_url = sandbox.instance_url + "/services/data/v59.0/limits"
    assert session.get(limits_url, timeout=10).status_code == 200
    control.expire_sessions(after_requests=1)
    assert session.get(limits_url, timeout=10).status_code == 200
    assert session.get(limits_url, timeout=10).status_code == 401
    assert control.set_api_quota(max=10, used=10) == {"used": 10, "max": 10}
    assert control.api_usage() == {"used": 10, "max": 10}
    options = control.set_options(refresh_token_rotation=True, batch_size=300)
    assert options["refresh_token_rotation"] is True and options["batch_size"] == 300
    assert control.options() == options
    with pytest.raises(ControlError):
        control.set_options(nonsense=True)


def test_faults_and_counters_over_http(sandbox: SandboxHandle, sf: Salesforce) -> None:
    control = sandbox.control
    fault = control.inject_fault("limits", "status", status=503, count=2)
    assert fault == {"endpoint": "limits", "kind": "status", "remaining": 2, "latency_ms": 0, "status": 503}
    assert len(control.faults()) == 1
    control.clear_faults()
    assert control.faults() == []
    sf.limits()
    assert control.counters()["limits"] == 1
    assert control.reset_counters()["limits"] == 0


def test_fields_and_generation_over_http(sandbox: SandboxHandle, sf: Salesforce) -> None:
    control = sandbox.control
    assert control.generate(20, seed=4) == {"Lead": 20, "Contact": 20, "CampaignMember": 4, "Campaign": 3}
    control.set_field_readable("Lead", "Phone", False)
    assert "Phone" not in {f["name"] for f in sf.Lead.describe()["fields"]}
    control.set_field_readable("Lead", "Phone", True)
    assert sf.query("SELECT COUNT() FROM Lead WHERE Phone != null")["totalSize"] > 0


def test_unknown_control_paths_are_not_found(sandbox: SandboxHandle) -> None:
    response = requests.get(
        sandbox.instance_url + "/__sandbox__/nope",
        verify=sandbox.ca_bundle,
        timeout=10,
        headers={"X-Sandbox-Secret": sandbox.client_secret},
    )
    assert response.status_code == 404
