"""CampaignMember users carry their parent Lead's or Contact's fields through relationships."""

from __future__ import annotations

import json
from pathlib import Path

from sf_pipeline.sandbox.testing import SandboxHandle
from sf_pipeline_tests.harness import cli, pipeline

SPEC = """
name: {name}
project_id: 42
login_url: {login_url}
objects:
  CampaignMember: {{}}
mappings:
  - {{field: Status, property: member_status}}
  - {{field: Lead.Email, property: lead_email, object: CampaignMember}}
  - {{field: Contact.Email, property: contact_email, object: CampaignMember}}
  - {{field: Lead.HasOptedOutOfEmail, property: unsubscribed, object: CampaignMember}}
"""


def test_campaign_members_map_parent_fields_and_preview_counts_them(
    small_sandbox: SandboxHandle, database_url: str, tmp_path: Path
) -> None:
    org = small_sandbox.org
    leads = {r["Id"]: r for r in org.records("Lead")}
    contacts = {r["Id"]: r for r in org.records("Contact")}
    members = org.records("CampaignMember")
    with pipeline(small_sandbox, database_url, tmp_path, spec=SPEC) as p:
        preview = cli(p, "integration", "preview", "acme", "--json", env={"REQUESTS_CA_BUNDLE": small_sandbox.ca_bundle
                                                                             or ""})
        assert preview.exit_code == 0, preview.stdout
        assert json.loads(preview.stdout) == {"CampaignMember": len(members)}
        summary = p.sync()
        assert summary["created"] == len(members) > 0
        users = p.users()
        for member in members:
            data = users[f"sf_acme_CampaignMember_{member['Id']}"]["data"]
            lead = leads.get(member["LeadId"] or "")
            contact = contacts.get(member["ContactId"] or "")
            assert data.get("lead_email") == (lead["Email"] if lead and lead["Email"] else None)
            assert data.get("contact_email") == (contact["Email"] if contact and contact["Email"] else None)
            assert data.get("unsubscribed") == (lead["HasOptedOutOfEmail"] if lead else None)
            assert data.get("member_status") == (member["Status"] or None)
