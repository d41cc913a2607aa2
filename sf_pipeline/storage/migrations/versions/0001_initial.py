"""Initial schema: integrations and their configuration, credentials, sync state and runs, logs,
health results, and Spotzee's users.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the model column types: a migration must not change when the models do.
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_TIME = sa.DateTime()  # naive UTC (models.UTCDateTime)


def _integration_fk(ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["integration_id"], ["integrations.id"], ondelete=ondelete)


def upgrade() -> None:
    op.create_table(
        "integrations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("login_url", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("frequency_minutes", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.String(length=18), nullable=True),
        sa.Column("objects_saved", sa.Boolean(), nullable=False),
        sa.Column("mappings_saved", sa.Boolean(), nullable=False),
        sa.Column("sync_requested_at", UTC_TIME, nullable=True),
        sa.Column("full_sync_requested", sa.Boolean(), nullable=False),
        sa.Column("last_synced_at", UTC_TIME, nullable=True),
        sa.Column("last_attempt_at", UTC_TIME, nullable=True),
        sa.Column("activated_at", UTC_TIME, nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("retry_after", UTC_TIME, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("org_id"),
    )
    op.create_index("ix_integrations_project_id", "integrations", ["project_id"])

    op.create_table(
        "credentials",
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("client_secret_enc", sa.Text(), nullable=False),
        sa.Column("refresh_token_enc", sa.Text(), nullable=False),
        sa.Column("access_token_enc", sa.Text(), nullable=True),
        sa.Column("instance_url", sa.String(length=255), nullable=True),
        sa.Column("identity_url", sa.String(length=255), nullable=True),
        sa.Column("org_id", sa.String(length=18), nullable=True),
        sa.Column("user_id", sa.String(length=18), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        _integration_fk(),
        sa.PrimaryKeyConstraint("integration_id"),
    )

    op.create_table(
        "integration_objects",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("object_name", sa.String(length=40), nullable=False),
        sa.Column("match", sa.String(length=8), nullable=False),
        sa.Column("rules", JSON, nullable=False),
        _integration_fk(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("integration_id", "object_name"),
    )

    op.create_table(
        "field_mappings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=255), nullable=False),
        sa.Column("property", sa.String(length=255), nullable=False),
        sa.Column("object_name", sa.String(length=40), nullable=True),
        sa.Column("type", sa.String(length=16), nullable=True),
        _integration_fk(),
        sa.PrimaryKeyConstraint("id"),
    )

    op.create_table(
        "sync_state",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("object_name", sa.String(length=40), nullable=False),
        sa.Column("watermark", UTC_TIME, nullable=True),
        sa.Column("config_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("fields", JSON, nullable=True),
        sa.Column("last_full_sync_at", UTC_TIME, nullable=True),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        _integration_fk(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("integration_id", "object_name"),
    )

    op.create_table(
        "sync_runs",
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("full", sa.Boolean(), nullable=False),
        sa.Column("started_at", UTC_TIME, nullable=False),
        sa.Column("finished_at", UTC_TIME, nullable=True),
        sa.Column("total", sa.Integer(), nullable=True),
        sa.Column("fetched", sa.Integer(), nullable=False),
        sa.Column("counts", JSON, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        _integration_fk(),
        sa.PrimaryKeyConstraint("run_id"),
    )
    op.create_index("ix_sync_runs_integration_id", "sync_runs", ["integration_id"])

    op.create_table(
        "log_events",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("counts", JSON, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("details", JSON, nullable=False),
        _integration_fk(),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_log_events_integration_at", "log_events", ["integration_id", "at"])

    op.create_table(
        "health_results",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("check_name", sa.String(length=32), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("details", JSON, nullable=False),
        _integration_fk(),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_health_results_integration_at", "health_results", ["integration_id", "at"])

    op.create_table(
        "users",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=64), nullable=True),
        sa.Column("timezone", sa.String(length=50), nullable=True),
        sa.Column("locale", sa.String(length=255), nullable=True),
        sa.Column("data", JSON, nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=True),
        sa.Column("source_object", sa.String(length=40), nullable=True),
        sa.Column("source_id", sa.String(length=18), nullable=True),
        sa.Column("source_modified_at", UTC_TIME, nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("content_hash", sa.String(length=32), nullable=True),
        _integration_fk(ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "external_id", name="uq_users_project_external_id"),
    )
    op.create_index("ix_users_integration", "users", ["integration_id", "source_object"])


def downgrade() -> None:
    for table in (
        "users",
        "health_results",
        "log_events",
        "sync_runs",
        "sync_state",
        "field_mappings",
        "integration_objects",
        "credentials",
        "integrations",
    ):
        op.drop_table(table)
