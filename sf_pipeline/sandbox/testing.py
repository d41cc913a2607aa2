"""Start a sandbox inside a test and get everything needed to point code at it.

    with serve_in_thread(records=50, seed=1) as sandbox:
        refresh_token = sandbox.issue_refresh_token()        # no browser needed
        run_pipeline(login_url=sandbox.login_url, client_id=sandbox.client_id,
                     client_secret=sandbox.client_secret, refresh_token=refresh_token,
                     ca_bundle=sandbox.ca_bundle)
        sandbox.org.touch_random("Lead", 10)                 # change the org between runs
        sandbox.control.inject_fault("query_more", "drop")   # same, over HTTP

``ca_bundle`` is the sandbox CA plus certifi's bundle: set it as ``REQUESTS_CA_BUNDLE`` (or a
session's ``verify``). The server is stopped and its port released when the block ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from sf_pipeline.sandbox.control import ControlClient
from sf_pipeline.sandbox.generator import populate
from sf_pipeline.sandbox.handlers import token_payload
from sf_pipeline.sandbox.server import SandboxServer
from sf_pipeline.sandbox.state import Org


class SalesforceHostAdapter(HTTPAdapter):
    """Sends requests for ``https://*.salesforce.com`` (login, test, My Domain) to the sandbox.

    simple-salesforce's login flows always build ``https://{domain}.salesforce.com`` URLs; mount
    this on a session passed as ``Salesforce(session=...)`` to log in against the sandbox."""

    def __init__(self, sandbox_url: str, **kwargs: Any) -> None:
        self.target = urlsplit(sandbox_url)
        super().__init__(**kwargs)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        parts = urlsplit(request.url or "")
        if (parts.hostname or "").endswith(".salesforce.com"):
            request.url = urlunsplit((self.target.scheme, self.target.netloc, parts.path, parts.query, parts.fragment))
        return super().send(request, *args, **kwargs)


@dataclass
class SandboxHandle:
    server: SandboxServer
    org: Org
    control: ControlClient

    @property
    def login_url(self) -> str:
        return self.server.url

    @property
    def instance_url(self) -> str:
        return self.server.url

    @property
    def ca_bundle(self) -> str | None:
        return str(self.server.ca_bundle) if self.server.ca_bundle else None

    @property
    def client_id(self) -> str:
        return self.org.client_id

    @property
    def client_secret(self) -> str:
        return self.org.client_secret

    @property
    def username(self) -> str:
        return self.org.username

    @property
    def password(self) -> str:
        return self.org.password

    def issue_refresh_token(self) -> str:
        """A refresh token for the approved user, as if they had consented in a browser."""
        return self.issue_tokens()["refresh_token"]

    def issue_tokens(self) -> dict[str, str]:
        """A whole token response: access_token, refresh_token, instance_url, id, signature, ..."""
        return token_payload(self.org, self.server.url, self.org.issue_refresh_token())

    def session(self) -> requests.Session:
        """A requests session that trusts the sandbox certificate.

        It ignores proxy and CA environment variables: requests lets ``REQUESTS_CA_BUNDLE`` override
        a session's ``verify``, which would make the sandbox certificate untrusted."""
        s = requests.Session()
        s.trust_env = False
        s.verify = self.ca_bundle or True
        return s

    def login_session(self) -> requests.Session:
        """A session whose ``*.salesforce.com`` requests reach the sandbox (for login flows)."""
        s = self.session()
        s.mount("https://", SalesforceHostAdapter(self.server.url))
        return s


@contextmanager
def serve_in_thread(
    org: Org | None = None,
    *,
    records: int = 0,
    seed: int = 0,
    port: int = 0,
    https: bool = True,
    latency_profile: str | None = None,
) -> Iterator[SandboxHandle]:
    """Serve ``org`` (or a new one with ``records`` generated Leads/Contacts) on 127.0.0.1.

    ``latency_profile="salesforce"`` makes it answer with a real org's server-side time (see
    ``latency``); by default the org's own profile stays (``none`` for a new org)."""
    org = org or Org(seed=seed)
    if latency_profile is not None:
        org.set_latency_profile(latency_profile)
    if records:
        populate(org, records=records, seed=seed)
    server = SandboxServer(org, port=port, https=https).start()
    control = ControlClient(
        server.url, secret=org.client_secret, verify=str(server.ca_bundle) if server.ca_bundle else True
    )
    try:
        yield SandboxHandle(server, org, control)
    finally:
        control.close()
        server.stop()
