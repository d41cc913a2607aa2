"""Bulk API 2.0 job journal: a job is known by its integration and its Id.

Salesforce Ids are unique within an org, not across orgs, and two integrations may be connected to
different orgs whose jobs carry the same Id (every sandbox org numbers its jobs from one). Keyed by
the Id alone, the second integration's run failed to write its job down. The rows (jobs killed runs
left open) are copied over, so the next run still aborts them.

Revision ID: 0007_bulk_jobs_key
Revises: 0006_users_indexes
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_bulk_jobs_key"
down_revision = "0006_users_indexes"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime()  # naive UTC (models.UTCDateTime)
COLUMNS = "job_id, integration_id, run_id, object_name, created_at"


def _create(name: str, *key: str) -> None:
    op.create_table(
        name,
        sa.Column("job_id", sa.String(length=18), nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("object_name", sa.String(length=40), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(["integration_id"], ["integrations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint(*key),
    )


def _replace(*key: str) -> None:
    # A new table and a copy, the same on SQLite (which cannot alter a primary key) and PostgreSQL.
    _create("bulk_query_jobs_next", *key)
    op.execute(f"INSERT INTO bulk_query_jobs_next ({COLUMNS}) SELECT {COLUMNS} FROM bulk_query_jobs")
    op.drop_table("bulk_query_jobs")
    op.rename_table("bulk_query_jobs_next", "bulk_query_jobs")


def upgrade() -> None:
    op.drop_index("ix_bulk_query_jobs_integration_id", table_name="bulk_query_jobs")
    _replace("integration_id", "job_id")  # the key's first column serves lookups by integration


def downgrade() -> None:
    # Going back to the Id alone, a job Id two integrations share keeps one row.
    op.execute("DELETE FROM bulk_query_jobs WHERE EXISTS (SELECT 1 FROM bulk_query_jobs AS other "
               "WHERE other.job_id = bulk_query_jobs.job_id AND other.integration_id < bulk_query_jobs.integration_id)")
    _replace("job_id")
    op.create_index("ix_bulk_query_jobs_integration_id", "bulk_query_jobs", ["integration_id"])
