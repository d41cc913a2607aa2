"""Reconciliation: users' scope, delete reason and conversion links; integrations' reconcile
schedule and latest drift.

Revision ID: 0004_reconcile
Revises: 0003_bulkpipe
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004_reconcile"
down_revision = "0003_bulkpipe"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
UTC_TIME = sa.DateTime()  # naive UTC (models.UTCDateTime)


def upgrade() -> None:
    # batch_alter_table: SQLite cannot add constraints in place; on PostgreSQL it is plain ALTERs.
    with op.batch_alter_table("users") as batch:
        # The upsert never names these columns: new rows take the server defaults.
        batch.add_column(sa.Column("in_scope", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("deleted_reason", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("converted_at", UTC_TIME, nullable=True))
        batch.add_column(sa.Column("converted_contact_id", sa.String(length=18), nullable=True))
        batch.add_column(sa.Column("converted_to", sa.String(length=255), nullable=True))
    with op.batch_alter_table("integrations") as batch:
        batch.add_column(sa.Column("reconcile_every_days", sa.Integer(), nullable=False, server_default="7"))
        batch.add_column(sa.Column("last_reconciled_at", UTC_TIME, nullable=True))
        batch.add_column(sa.Column("drift", JSON, nullable=True))
        batch.add_column(sa.Column("drift_at", UTC_TIME, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("integrations") as batch:
        for name in ("drift_at", "drift", "last_reconciled_at", "reconcile_every_days"):
            batch.drop_column(name)
    with op.batch_alter_table("users") as batch:
        for name in ("converted_to", "converted_contact_id", "converted_at", "deleted_reason", "in_scope"):
            batch.drop_column(name)
