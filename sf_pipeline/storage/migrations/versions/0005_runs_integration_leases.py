"""Integration leases: the one run allowed to sync an integration, with its worker and heartbeat.

Revision ID: 0005_runs
Revises: 0004_reconcile
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_runs"
down_revision = "0004_reconcile"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime()  # naive UTC (models.UTCDateTime)


def upgrade() -> None:
    op.create_table(
        "integration_leases",
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("acquired_at", UTC_TIME, nullable=True),
        sa.Column("heartbeat_at", UTC_TIME, nullable=True),
        sa.ForeignKeyConstraint(["integration_id"], ["integrations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("integration_id"),
    )


def downgrade() -> None:
    op.drop_table("integration_leases")
