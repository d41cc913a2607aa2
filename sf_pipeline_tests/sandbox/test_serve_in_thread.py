"""``serve_in_thread``: what other tests use to start a sandbox and point code at it."""

from __future__ import annotations

import socket
from pathlib import Path

import requests
from simple_salesforce import Salesforce

from sf_pipeline.sandbox import Org, serve_in_thread


def test_handle_gives_everything_a_pipeline_needs() -> None:
    with serve_in_thread(records=40, seed=5) as sandbox:
        assert sandbox.login_url == sandbox.instance_url
        assert sandbox.ca_bundle and sandbox.client_id and sandbox.client_secret
        refresh_token = sandbox.issue_refresh_token()
        response = sandbox.session().post(
            sandbox.login_url + "/services/oauth2/token",
            timeout=10,
            data={
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": sandbox.client_id,
                "client_secret": sandbox.client_secret,
            },
        )
        body = response.json()
        session = requests.Session()
        session.verify = sandbox.ca_bundle
        session.trust_env = False
        sf = Salesforce(instance_url=body["instance_url"], session_id=body["access_token"], session=session)
        assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == 40
        assert sandbox.org.count("Contact") == 40


def test_the_port_is_released_when_the_block_ends() -> None:
    with serve_in_thread() as sandbox:
        port = sandbox.server.port
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))


def test_an_existing_org_can_be_served_over_plain_http() -> None:
    org = Org()
    org.create("Lead", [{"LastName": "N", "Company": "C"}])
    with serve_in_thread(org, https=False) as sandbox:
        assert sandbox.instance_url.startswith("http://")
        assert sandbox.ca_bundle is None
        token = sandbox.issue_tokens()["access_token"]
        response = requests.get(
            sandbox.instance_url + "/services/data/v59.0/query",
            timeout=10,
            params={"q": "SELECT Id FROM Lead"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.json()["totalSize"] == 1


def test_bundle_trusts_the_sandbox_and_keeps_public_roots() -> None:
    with serve_in_thread() as sandbox:
        assert sandbox.ca_bundle
        text = Path(sandbox.ca_bundle).read_text()
        assert text.count("BEGIN CERTIFICATE") > 50  # the sandbox CA plus certifi's roots
        assert requests.get(sandbox.instance_url + "/services/data", verify=sandbox.ca_bundle, timeout=10).ok
        localhost = sandbox.instance_url.replace("127.0.0.1", "localhost")
        assert requests.get(localhost + "/services/data", verify=sandbox.ca_bundle, timeout=10).ok
