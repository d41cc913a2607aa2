"""Users: indexes for what every sync asks after writing (drift, scope, pending conversion links).

Revision ID: 0006_users_indexes
Revises: 0005_runs
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_users_indexes"
down_revision = "0005_runs"
branch_labels = None
depends_on = None

DELETED_REASON = "deleted_reason IS NOT NULL"
PENDING = "converted_contact_id IS NOT NULL AND converted_to IS NULL"


def upgrade() -> None:
    op.create_index("ix_users_scope", "users", ["integration_id", "source_object", "in_scope", "deleted"])
    op.drop_index("ix_users_integration", table_name="users")
    op.create_index("ix_users_deleted_reason", "users", ["integration_id", "source_object"],
                    sqlite_where=sa.text(DELETED_REASON), postgresql_where=sa.text(DELETED_REASON))
    op.create_index("ix_users_conversion_pending", "users", ["integration_id", "source_object"],
                    sqlite_where=sa.text(PENDING), postgresql_where=sa.text(PENDING))


def downgrade() -> None:
    op.drop_index("ix_users_conversion_pending", table_name="users")
    op.drop_index("ix_users_deleted_reason", table_name="users")
    op.create_index("ix_users_integration", "users", ["integration_id", "source_object"])
    op.drop_index("ix_users_scope", table_name="users")
