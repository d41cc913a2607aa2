"""Bulk API 2.0: the per-integration API choice and the jobs runs have open.

Revision ID: 0003_bulkpipe
Revises: 0002_core
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_bulkpipe"
down_revision = "0002_core"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime()  # naive UTC (models.UTCDateTime)


def upgrade() -> None:
    with op.batch_alter_table("integrations") as batch:
        batch.add_column(sa.Column("api", sa.String(length=8), nullable=False, server_default="auto"))
    op.create_table(
        "bulk_query_jobs",
        sa.Column("job_id", sa.String(length=18), nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("object_name", sa.String(length=40), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(["integration_id"], ["integrations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id"),
    )
    op.create_index("ix_bulk_query_jobs_integration_id", "bulk_query_jobs", ["integration_id"])


def downgrade() -> None:
    op.drop_index("ix_bulk_query_jobs_integration_id", table_name="bulk_query_jobs")
    op.drop_table("bulk_query_jobs")
    with op.batch_alter_table("integrations") as batch:
        batch.drop_column("api")
