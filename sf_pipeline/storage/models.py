"""The application database: integrations, their configuration and credentials, sync state,
log events, health results, and Spotzee's ``users`` table.

Times are stored as naive UTC and handed back timezone-aware (``UTCDateTime``) so SQLite and
PostgreSQL behave the same. The schema is owned by the Alembic migrations in ``migrations/``;
these classes must stay in step with them.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType, list[Any]: JSONType}


class IntegrationStatus(enum.StrEnum):
    INCOMPLETE = "incomplete"
    ACTIVE = "active"
    ERROR = "error"
    INACTIVE = "inactive"


class Integration(Base):
    __tablename__ = "integrations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # The name is the integration's id everywhere: Dagster partition key, CLI argument, external IDs.
    name: Mapped[str] = mapped_column(String(63), unique=True)
    project_id: Mapped[int] = mapped_column(Integer, index=True)
    login_url: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default=IntegrationStatus.INCOMPLETE.value)
    frequency_minutes: Mapped[int] = mapped_column(Integer, default=60)
    # Which Salesforce API extracts records: auto (Bulk API 2.0 for large results), rest or bulk.
    api: Mapped[str] = mapped_column(String(8), default="auto", server_default="auto")
    # One Salesforce org belongs to one integration (and so one project): unique when known.
    org_id: Mapped[str | None] = mapped_column(String(18), unique=True, nullable=True)
    objects_saved: Mapped[bool] = mapped_column(Boolean, default=False)
    mappings_saved: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set when a sync should run at the next dispatcher tick (initial sync on activation).
    sync_requested_at: Mapped[datetime | None] = mapped_column(nullable=True)
    full_sync_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    last_synced_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(nullable=True)
    activated_at: Mapped[datetime | None] = mapped_column(nullable=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    # How far below the watermark incremental runs start reading (records that commit late).
    lookback_minutes: Mapped[int] = mapped_column(Integer, default=10, server_default="10")
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Reconciliation (an Id-only comparison with the org) runs at least this often.
    reconcile_every_days: Mapped[int] = mapped_column(Integer, default=7, server_default="7")
    last_reconciled_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # The latest per-object drift (org count under the rules minus in-scope, not-deleted users).
    drift: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    drift_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    objects: Mapped[list[ObjectConfig]] = relationship(
        back_populates="integration", cascade="all, delete-orphan", order_by="ObjectConfig.object_name"
    )
    mappings: Mapped[list[FieldMapping]] = relationship(
        back_populates="integration", cascade="all, delete-orphan", order_by="FieldMapping.position"
    )
    credential: Mapped[Credential | None] = relationship(
        back_populates="integration", cascade="all, delete-orphan", uselist=False
    )


class ObjectConfig(Base):
    """One selected Salesforce object with its sync rules (conditions joined by one combinator)."""

    __tablename__ = "integration_objects"
    __table_args__ = (UniqueConstraint("integration_id", "object_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id", ondelete="CASCADE"))
    object_name: Mapped[str] = mapped_column(String(40))
    match: Mapped[str] = mapped_column(String(8), default="all")  # all = AND, any = OR
    # [{"field": ..., "operator": ..., "value": ...}, ...]
    rules: Mapped[list[Any]] = mapped_column(default=list)

    integration: Mapped[Integration] = relationship(back_populates="objects")


class FieldMapping(Base):
    """A Salesforce field (``Email``, or ``Lead.Email`` on CampaignMember) mapped to a user property.

    ``object_name`` limits the mapping to one object; when null it applies to every selected object
    that has the field."""

    __tablename__ = "field_mappings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    field: Mapped[str] = mapped_column(String(255))
    property: Mapped[str] = mapped_column(String(255))
    object_name: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # The property's declared type (string, number, boolean, date, array); null: the field's own.
    type: Mapped[str | None] = mapped_column(String(16), nullable=True)

    integration: Mapped[Integration] = relationship(back_populates="mappings")


class Credential(Base):
    """OAuth credentials. Every secret column holds Fernet ciphertext, never plaintext."""

    __tablename__ = "credentials"

    integration_id: Mapped[int] = mapped_column(
        ForeignKey("integrations.id", ondelete="CASCADE"), primary_key=True
    )
    client_id: Mapped[str] = mapped_column(String(255))
    client_secret_enc: Mapped[str] = mapped_column(Text)
    refresh_token_enc: Mapped[str] = mapped_column(Text)
    access_token_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    instance_url: Mapped[str | None] = mapped_column(String(255), nullable=True)
    identity_url: Mapped[str | None] = mapped_column(String(255), nullable=True)
    org_id: Mapped[str | None] = mapped_column(String(18), nullable=True)
    user_id: Mapped[str | None] = mapped_column(String(18), nullable=True)
    # Bumped on every token write: concurrent refreshers compare-and-swap on it.
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    integration: Mapped[Integration] = relationship(back_populates="credential")


class SyncState(Base):
    """Per-object incremental state. The watermark moves only when a whole run succeeds."""

    __tablename__ = "sync_state"
    __table_args__ = (UniqueConstraint("integration_id", "object_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id", ondelete="CASCADE"))
    object_name: Mapped[str] = mapped_column(String(40))
    watermark: Mapped[datetime | None] = mapped_column(nullable=True)
    # Fingerprint of the rules and mapped fields the watermark was reached with: a change forces
    # the next run to be full, so records that newly match arrive even if they did not change.
    config_fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The fields the watermark was reached with: the field-mappings check compares them to describe.
    fields: Mapped[list[Any] | None] = mapped_column(nullable=True)
    last_full_sync_at: Mapped[datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SyncRun(Base):
    """One sync attempt (a Dagster run), with live progress for ``sf-pipeline sync``."""

    __tablename__ = "sync_runs"

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="started")  # started/succeeded/failed
    full: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    fetched: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class BulkQueryJob(Base):
    """A Bulk API 2.0 job a run created and has not finished with. A row left behind means the run
    was killed: the next run aborts the job (its results are never read by anyone else). Keyed by
    integration and Id: Ids are unique within an org, and integrations may use different orgs."""

    __tablename__ = "bulk_query_jobs"

    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id", ondelete="CASCADE"),
                                                primary_key=True)
    job_id: Mapped[str] = mapped_column(String(18), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64))
    object_name: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LogEvent(Base):
    """What the Logs tab shows: sync_started, sync_completed, sync_failed, records_imported,
    records_updated, health_check. Warnings ride along in ``details``."""

    __tablename__ = "log_events"
    __table_args__ = (Index("ix_log_events_integration_at", "integration_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class HealthResult(Base):
    __tablename__ = "health_results"
    __table_args__ = (Index("ix_health_results_integration_at", "integration_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id", ondelete="CASCADE"))
    check_name: Mapped[str] = mapped_column(String(32))
    passed: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class User(Base):
    """A Spotzee user. ``email``, ``phone``, ``timezone`` and ``locale`` are first-class; every
    other mapped property lives in ``data``. The ``source_*`` columns are the sync's bookkeeping."""

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("project_id", "external_id", name="uq_users_project_external_id"),
        # Every sync counts an object's in-scope, live users (drift) and asks whether any is out of
        # scope: with these two columns in the index both are answered from the index alone.
        Index("ix_users_scope", "integration_id", "source_object", "in_scope", "deleted"),
        # Rare rows every sync looks for: partial indexes keep those lookups independent of the
        # number of users.
        Index("ix_users_deleted_reason", "integration_id", "source_object",
              sqlite_where=text("deleted_reason IS NOT NULL"), postgresql_where=text("deleted_reason IS NOT NULL")),
        Index("ix_users_conversion_pending", "integration_id", "source_object",
              sqlite_where=text("converted_contact_id IS NOT NULL AND converted_to IS NULL"),
              postgresql_where=text("converted_contact_id IS NOT NULL AND converted_to IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(Integer)
    external_id: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    timezone: Mapped[str | None] = mapped_column(String(50), nullable=True)
    locale: Mapped[str | None] = mapped_column(String(255), nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    integration_id: Mapped[int | None] = mapped_column(
        ForeignKey("integrations.id", ondelete="SET NULL"), nullable=True
    )
    source_object: Mapped[str | None] = mapped_column(String(40), nullable=True)
    source_id: Mapped[str | None] = mapped_column(String(18), nullable=True)
    source_modified_at: Mapped[datetime | None] = mapped_column(nullable=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    # Digest of the mapped values last written: the diff compares digests, not whole rows.
    content_hash: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # False once reconciliation finds the record still in Salesforce but outside the sync rules;
    # true again when it matches them again. Users are flagged, never removed.
    # Server default only: the upsert never names it, so a new user starts in scope.
    in_scope: Mapped[bool] = mapped_column(Boolean, server_default=true())
    # Why ``deleted`` is set when reconciliation set it: "purged" (gone from Salesforce, past
    # the Recycle Bin) or "deleted" (in the Recycle Bin); null when a sync saw IsDeleted.
    deleted_reason: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # A converted Lead's user: when, the Contact's Id, and that Contact's user (same integration).
    converted_at: Mapped[datetime | None] = mapped_column(nullable=True)
    converted_contact_id: Mapped[str | None] = mapped_column(String(18), nullable=True)
    converted_to: Mapped[str | None] = mapped_column(String(255), nullable=True)


class IntegrationLease(Base):
    """Who may sync an integration right now: at most one run (see ``sf_pipeline.leases``).

    The row is kept when released (``run_id`` NULL), so taking the lease is always an UPDATE that
    the database applies atomically on SQLite and PostgreSQL alike."""

    __tablename__ = "integration_leases"

    integration_id: Mapped[int] = mapped_column(
        ForeignKey("integrations.id", ondelete="CASCADE"), primary_key=True
    )
    run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    acquired_at: Mapped[datetime | None] = mapped_column(nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(nullable=True)


# The upsert's staging table on PostgreSQL: a change chunk is COPYed here, then merged into
# ``users`` by one INSERT ... SELECT. Temporary (each session its own), dropped when the chunk's
# transaction commits; never part of the schema the migrations own, hence its own MetaData.
USERS_STAGE_COLUMNS = ("external_id", "email", "phone", "timezone", "locale", "data", "source_object", "source_id",
                       "source_modified_at", "deleted", "content_hash")
users_stage = Table(
    "sf_pipeline_users_stage",
    MetaData(),
    Column("ord", BigInteger),
    Column("id", BigInteger),
    *(Column(name, DateTime if name == "source_modified_at" else Boolean if name == "deleted" else Text)
      for name in USERS_STAGE_COLUMNS),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)
