"""Integrations: a configurable incremental lookback (``lookback_minutes``, 10 by default, as
before), and no ``retry_after`` (the dispatcher's backoff comes from ``consecutive_failures`` and
the last attempt; nothing ever read the column).

Revision ID: 0002_core
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_core"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE (SQLite >= 3.35 has DROP COLUMN): a batch rebuild would drop and recreate
    # ``integrations``, which every other table references with ON DELETE CASCADE.
    op.execute("ALTER TABLE integrations DROP COLUMN retry_after")
    op.add_column("integrations", sa.Column("lookback_minutes", sa.Integer(), nullable=False, server_default="10"))


def downgrade() -> None:
    op.execute("ALTER TABLE integrations DROP COLUMN lookback_minutes")
    op.add_column("integrations", sa.Column("retry_after", sa.DateTime(), nullable=True))
