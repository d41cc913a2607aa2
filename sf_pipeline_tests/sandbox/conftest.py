"""Fixtures: an org on a frozen clock, served over HTTPS, with clients that trust it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests
from simple_salesforce import Salesforce

from sf_pipeline.sandbox import Org, OrgClock, SandboxHandle, serve_in_thread

NOW = datetime(2024, 6, 15, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def org() -> Org:
    return Org(clock=OrgClock(NOW, frozen=True), seed=1)


@pytest.fixture
def sandbox(org: Org, monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxHandle]:
    with serve_in_thread(org) as handle:
        assert handle.ca_bundle
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", handle.ca_bundle)
        yield handle


@pytest.fixture
def token(sandbox: SandboxHandle) -> str:
    return sandbox.issue_tokens()["access_token"]


@pytest.fixture
def sf(sandbox: SandboxHandle, token: str) -> Salesforce:
    return Salesforce(instance_url=sandbox.instance_url, session_id=token, session=requests.Session())


class Api:
    """Raw HTTP against the sandbox's REST API."""

    def __init__(self, sandbox: SandboxHandle, token: str) -> None:
        self.base = sandbox.instance_url
        self.session = sandbox.session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return self.session.get(self.base + path, timeout=30, **kwargs)  # type: ignore[arg-type]

    def query(self, soql: str, *, all_rows: bool = False, **kwargs: object) -> requests.Response:
        resource = "queryAll" if all_rows else "query"
        return self.get(f"/services/data/v59.0/{resource}", params={"q": soql}, **kwargs)


@pytest.fixture
def api(sandbox: SandboxHandle, token: str) -> Api:
    return Api(sandbox, token)


def lead(**values: object) -> dict[str, object]:
    return {"LastName": "Doe", "Company": "Acme", **values}
