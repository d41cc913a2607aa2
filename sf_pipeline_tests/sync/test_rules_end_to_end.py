"""Sync rules reach Salesforce as SOQL that means exactly what the admin wrote: a hostile value
(quotes, backslashes, an injected ``OR``) matches only records holding that literal value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sf_pipeline.sandbox.testing import SandboxHandle
from sf_pipeline_tests.harness import apply, pipeline

HOSTILE = ["x' OR Id != null", "O'Brien", "back\\slash", "quote\"d", "100%_done", "new\nline", "' OR ''='"]

SPEC = """
name: acme
project_id: 42
login_url: {login_url}
objects:
  Lead:
    match: all
    rules:
      - {{field: LastName, operator: {operator}, value: {value}}}
mappings:
  - {{field: LastName, property: last_name}}
"""


def spec(login_url: str, operator: str, value: str) -> str:
    return SPEC.format(login_url=login_url, operator=operator, value=json.dumps(value))


@pytest.mark.parametrize("operator", ["equals", "contains", "starts_with"])
def test_a_hostile_rule_value_matches_only_what_it_literally_says(
    operator: str, small_sandbox: SandboxHandle, database_url: str, tmp_path: Path
) -> None:
    small_sandbox.org.create("Lead", [{"LastName": v, "Company": "Hostile Inc", "Email": "h@x.example"}
                                      for v in HOSTILE])
    names = [r["LastName"] for r in small_sandbox.org.records("Lead")]
    with pipeline(small_sandbox, database_url, tmp_path) as p:
        for value in HOSTILE:
            apply(p.database, p.services.cipher, spec(small_sandbox.login_url, operator, value), "acme")
            before = set(p.users())
            summary = p.sync()  # a changed rule makes the next run full: it reads every match
            lowered = value.lower()
            if operator == "equals":
                expected = [n for n in names if n is not None and n.lower() == lowered]
            elif operator == "contains":
                expected = [n for n in names if n is not None and lowered in n.lower()]
            else:
                expected = [n for n in names if n is not None and n.lower().startswith(lowered)]
            assert value in expected
            assert summary["fetched"] == len(expected), (value, summary)
            new_users = [u for k, u in p.users().items() if k not in before]
            assert all(u["data"]["last_name"] in expected for u in new_users)
