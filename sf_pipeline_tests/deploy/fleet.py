"""Many integrations against one sandbox org, each with its own frequency and schedule phase.

One sandbox org stands in for every integration's org. An org may belong to only one integration,
so after each connect the stored org id is replaced by a distinct stand-in; everything else
(tokens, describe, queries) is the real flow against the sandbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sf_pipeline.connect import connect
from sf_pipeline.salesforce.oauth import ClientCredentials, RefreshTokenImport
from sf_pipeline.sandbox.testing import SandboxHandle
from sf_pipeline.secrets import Cipher
from sf_pipeline.storage.database import Database
from sf_pipeline.storage.integrations import get_integration
from sf_pipeline_tests.harness import apply

SPEC = """
name: {name}
project_id: {project_id}
login_url: {login_url}
frequency_minutes: {frequency}
objects:
  Lead: {{}}
mappings:
  - {{field: Email, property: email}}
  - {{field: FirstName, property: first_name}}
  - {{field: LastName, property: last_name}}
"""


@dataclass(frozen=True)
class Member:
    name: str
    frequency_minutes: int
    # Minutes after the simulated start at which its next sync is due.
    due_in_minutes: int

    def due_minutes(self, horizon: int) -> list[int]:
        """Every minute in [0, horizon] at which a sync is due, if each runs when due."""
        return list(range(self.due_in_minutes, horizon + 1, self.frequency_minutes))


def plan(frequencies: Sequence[int]) -> list[Member]:
    """Spread the integrations' phases over their intervals, deterministically."""
    return [Member(f"int-{i:05d}", f, (7 * i + 3) % f) for i, f in enumerate(frequencies)]


def connect_fleet(sandbox: SandboxHandle, database: Database, cipher: Cipher, members: Sequence[Member]) -> None:
    for i, member in enumerate(members):
        authorizer = RefreshTokenImport(
            login_url=sandbox.login_url,
            client=ClientCredentials(sandbox.client_id, sandbox.client_secret),
            refresh_token=sandbox.issue_refresh_token(),
        )
        connect(database, cipher, member.name, authorizer, project_id=1000 + i)
        apply(database, cipher, SPEC.format(name=member.name, project_id=1000 + i, login_url=sandbox.login_url,
                                            frequency=member.frequency_minutes), member.name)
        with database.session() as session:
            integration = get_integration(session, member.name)
            stand_in = f"00Dsim{i:012d}"
            integration.org_id = stand_in
            assert integration.credential is not None
            integration.credential.org_id = stand_in


def set_schedule(database: Database, members: Sequence[Member], start: datetime) -> None:
    """As if each integration had last synced one interval before its next due time."""
    with database.session() as session:
        for member in members:
            integration = get_integration(session, member.name)
            assert integration.status == "active", (member.name, integration.status)
            last = start + timedelta(minutes=member.due_in_minutes - member.frequency_minutes)
            integration.sync_requested_at = None
            integration.activated_at = last
            integration.last_attempt_at = last
