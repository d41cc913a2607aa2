"""The sandbox org, with no HTTP: records, clock, schema, tokens, quota, faults and counters.

Seeding and reading state in a test, with no HTTP round trips::

    org = Org()                                      # empty; or generator.populate(org, records=100)
    org.clock.freeze(datetime(2024, 1, 1, tzinfo=UTC))
    [lead] = org.create("Lead", [{"LastName": "Ng", "Company": "Acme", "Email": "ng@acme.test"}])
    org.update("Lead", lead, {"Email": "new@acme.test"}, at="2024-01-02T00:00:00Z")
    org.delete("Lead", [lead])                       # soft delete: IsDeleted, timestamps bumped
    org.get("Lead", lead)["IsDeleted"]               # -> True (stored form: see ``tables``)
    org.query("SELECT Id, Email FROM Lead")          # -> {"totalSize": ..., "done": True, "records": [...]}
    org.issue_refresh_token().refresh_token          # a refresh token for the approved user

Records get ``CreatedDate``/``LastModifiedDate``/``SystemModstamp`` from the org clock, truncated to
the second as Salesforce stores them, unless ``at=`` (or an explicit value for one of those
fields) says otherwise. Every method is thread-safe; the HTTP server serves this same object, so a
test can change the org between two requests of the code under test. The control API
(``/__sandbox__/...``, ``control.ControlClient``) exposes the same operations over HTTP.
"""

from __future__ import annotations

import random
import secrets
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sf_pipeline.sandbox import ids
from sf_pipeline.sandbox.auth import Auth, AuthSettings, ConnectedApp, Grant, User
from sf_pipeline.sandbox.bulk_jobs import BulkJob, BulkJobs
from sf_pipeline.sandbox.clock import OrgClock, format_datetime, parse_datetime
from sf_pipeline.sandbox.cursors import Cursors
from sf_pipeline.sandbox.errors import MalformedQuery, RequestLimitExceeded
from sf_pipeline.sandbox.faults import Counters, EndpointKind, Fault, FaultKind, Faults
from sf_pipeline.sandbox.field_values import coerce
from sf_pipeline.sandbox.latency import PROFILES, LatencyProfile
from sf_pipeline.sandbox.planner import Plan, compile_query
from sf_pipeline.sandbox.records_json import render_record_dicts
from sf_pipeline.sandbox.recycle_bin import empty_expired, note_deleted, purge_rows
from sf_pipeline.sandbox.schema import FieldDef, ObjectSchema, standard_schemas
from sf_pipeline.sandbox.soql import parse
from sf_pipeline.sandbox.tables import Table

Stamp = datetime | str | None
_TIMESTAMPS = ("CreatedDate", "LastModifiedDate", "SystemModstamp")
_PROTECTED = frozenset({"Id", "IsDeleted", "CreatedDate", "LastModifiedDate", "SystemModstamp", "Name"})
# Who created, last changed and owns a record: the API user, unless the caller says otherwise.
_USER_STAMPS = ("OwnerId", "CreatedById", "LastModifiedById")
DEFAULT_VERSION = "59.0"


@dataclass
class ApiQuota:
    """``DailyApiRequests``: every REST call uses one; at ``max`` calls are refused."""

    max: int = 1_000_000
    used: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> tuple[int, int]:
        with self._lock:
            if self.used >= self.max:
                raise RequestLimitExceeded("TotalRequests Limit exceeded.")
            self.used += 1
            return self.used, self.max

    def usage(self) -> tuple[int, int]:
        with self._lock:
            return self.used, self.max

    def set(self, *, max: int | None = None, used: int | None = None) -> tuple[int, int]:
        with self._lock:
            if max is not None:
                self.max = max
            if used is not None:
                self.used = used
            return self.used, self.max


@dataclass
class QuerySettings:
    batch_size: int = 2000  # page size when the client sends no Sforce-Query-Options; any 1..2000


class Org:
    def __init__(
        self,
        *,
        clock: OrgClock | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        username: str = "integration@sf-sandbox.example.com",
        password: str | None = None,
        seed: int | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self.revision = 0  # bumped by every change to records or schema
        self.clock = clock or OrgClock()
        self.random = random.Random(seed)
        self.org_id = ids.make_id(ids.KEY_PREFIXES["Organization"], 1)
        self.schemas: dict[str, ObjectSchema] = standard_schemas()
        self.tables: dict[str, Table] = {name: Table(s) for name, s in self.schemas.items()}
        self._derive_fields()
        user = User(
            user_id=ids.make_id(ids.KEY_PREFIXES["User"], 1),
            username=username,
            password=password or secrets.token_urlsafe(12),
            security_token=secrets.token_urlsafe(18),
            first_name="Integration",
            last_name="User",
            email="integration.user@sf-sandbox.example.com",
        )
        app = ConnectedApp(
            client_id=client_id or "3MVG9" + secrets.token_urlsafe(60).replace("-", "A").replace("_", "z"),
            client_secret=client_secret or secrets.token_hex(32).upper(),
        )
        self.auth = Auth(app=app, user=user, org_id=self.org_id, clock=self.clock)
        self.quota = ApiQuota()
        self.faults = Faults()
        self.counters = Counters()
        self.cursors = Cursors(self.clock)
        self.query_settings = QuerySettings()
        self.bulk = BulkJobs()
        self.latency: LatencyProfile = PROFILES["none"]

    # -- catalog (used by the SOQL planner) ---------------------------------------------------------

    def schema(self, sobject: str) -> ObjectSchema | None:
        lowered = sobject.lower()
        return next((s for name, s in self.schemas.items() if name.lower() == lowered), None)

    def table(self, sobject: str) -> Table:
        found = self.schema(sobject)
        if found is None:
            raise KeyError(f"no sObject {sobject}")
        return self.tables[found.name]

    # -- queries ------------------------------------------------------------------------------------

    def plan(self, soql: str) -> Plan:
        try:
            query = parse(soql)
            with self._lock:
                self.empty_recycle_bin_horizon()
                return compile_query(query, self, today=self.clock.now().date())
        except RecursionError:
            raise MalformedQuery("The query is nested too deeply") from None

    def query(self, soql: str, *, include_deleted: bool = False) -> dict[str, Any]:
        """The whole result as decoded Salesforce JSON, without paging (for in-process tests)."""
        plan = self.plan(soql)
        with self._lock:
            if plan.projection is None:
                return {"totalSize": plan.count(include_deleted=include_deleted), "done": True, "records": []}
            rows = plan.rows(include_deleted=include_deleted)
        records = render_record_dicts(plan.projection, rows, DEFAULT_VERSION)
        return {"totalSize": len(records), "done": True, "records": records}

    def run(self, plan: Plan, *, include_deleted: bool) -> list[int]:
        with self._lock:
            return plan.rows(include_deleted=include_deleted)

    def snapshot(self, plan: Plan, rows: Sequence[int]) -> list[list[Any]]:
        """The selected fields' current values for ``rows``, column by column (Bulk results)."""
        with self._lock:
            return [list(map(column.get, rows)) for column in plan.columns]

    def now_text(self) -> str:
        return format_datetime(self.clock.now().replace(microsecond=0))

    @property
    def user_id(self) -> str:
        return self.auth.user.user_id

    # -- Bulk API 2.0 query jobs (the jobs themselves: ``self.bulk``) ------------------------------

    def fail_next_bulk_job(self, message: str) -> None:
        """The next query job created ends ``Failed`` with ``errorMessage`` ``message``."""
        self.bulk.fail_next(message)

    def fail_bulk_job(self, job_id: str, message: str) -> BulkJob:
        return self.bulk.fail(self, job_id, message)

    def expire_bulk_locator(self, job_id: str, locator: str | None = None) -> None:
        """Results requests with ``locator`` (or any locator, with None) answer INVALID_QUERY_LOCATOR."""
        self.bulk.expire_locator(job_id, locator)

    def set_bulk_processing_time(
        self, *, fixed_seconds: float | None = None, per_record_seconds: float | None = None
    ) -> None:
        self.bulk.set_processing_time(fixed_seconds=fixed_seconds, per_record_seconds=per_record_seconds)

    def bulk_settings(self) -> dict[str, Any]:
        s = self.bulk.settings
        return {
            "fixed_seconds": s.fixed_seconds,
            "per_record_seconds": s.per_record_seconds,
            "limits": self.bulk.limits(),
        }

    def set_latency_profile(self, name: str) -> LatencyProfile:
        """``none`` (answer as fast as possible) or ``salesforce`` (server-side time of a real org's order)."""
        if name not in PROFILES:
            raise ValueError(f"unknown latency profile {name!r}; expected one of {', '.join(PROFILES)}")
        self.latency = PROFILES[name]
        self.bulk.set_processing_time(
            fixed_seconds=self.latency.bulk_job_fixed_seconds,
            per_record_seconds=self.latency.bulk_job_per_record_seconds,
        )
        return self.latency

    def count_rows(self, plan: Plan, *, include_deleted: bool) -> int:
        with self._lock:
            return plan.count(include_deleted=include_deleted)

    # -- records ------------------------------------------------------------------------------------

    def create(self, sobject: str, records: Iterable[Mapping[str, Any]], *, at: Stamp = None) -> list[str]:
        """Insert records (field names in any case); returns their Ids in order."""
        with self._lock:
            table = self.table(sobject)
            schema = self.schemas[table.sobject]
            stamp = self._stamp(at)
            created = []
            for values in records:
                stored = self._coerce_all(schema, table, values, creating=True)
                for name in _TIMESTAMPS:
                    stored.setdefault(name, stamp)
                for name in _USER_STAMPS:
                    if name in table.columns:
                        stored.setdefault(name, self.auth.user.user_id)
                stored["IsDeleted"] = bool(stored.get("IsDeleted", False))
                self._apply_defaults(schema, stored)
                row = table.append(stored)
                self.revision += 1
                created.append(table.ids[row])
            return created

    def bulk_load(self, sobject: str, columns: dict[str, list[Any]], count: int) -> list[str]:
        """Append ``count`` rows from whole columns already in stored form (for the generator)."""
        with self._lock:
            self.revision += 1
            return self.table(sobject).extend(columns, count)

    def update(
        self,
        sobject: str,
        record_id: str,
        values: Mapping[str, Any],
        *,
        at: Stamp = None,
        system_only: bool = False,
    ) -> None:
        """Change fields and bump LastModifiedDate and SystemModstamp (only SystemModstamp with
        ``system_only``, as when Salesforce itself touches a record)."""
        self.update_many(sobject, {record_id: values}, at=at, system_only=system_only)

    def update_many(
        self,
        sobject: str,
        changes: Mapping[str, Mapping[str, Any]],
        *,
        at: Stamp = None,
        system_only: bool = False,
    ) -> None:
        with self._lock:
            table = self.table(sobject)
            schema = self.schemas[table.sobject]
            stamp = self._stamp(at)
            planned = []
            for record_id, values in changes.items():
                row = self._row(table, record_id)
                stored = self._coerce_all(schema, table, values, creating=False)
                if not system_only:
                    stored.setdefault("LastModifiedDate", stamp)
                    if "LastModifiedById" in table.columns:
                        stored.setdefault("LastModifiedById", self.auth.user.user_id)
                stored.setdefault("SystemModstamp", stamp)
                planned.append((row, stored))
            for row, stored in planned:
                self._write(table, row, stored)

    def delete(self, sobject: str, record_ids: Iterable[str] | str, *, at: Stamp = None) -> None:
        self._set_deleted(sobject, record_ids, True, at)

    def undelete(self, sobject: str, record_ids: Iterable[str] | str, *, at: Stamp = None) -> None:
        self._set_deleted(sobject, record_ids, False, at)

    def _set_deleted(self, sobject: str, record_ids: Iterable[str] | str, deleted: bool, at: Stamp) -> None:
        if isinstance(record_ids, str):
            record_ids = [record_ids]
        with self._lock:
            table = self.table(sobject)
            stamp = self._stamp(at)
            rows = [self._row(table, rid) for rid in record_ids]
            for row in rows:
                self._write(table, row, {"IsDeleted": deleted, "LastModifiedDate": stamp, "SystemModstamp": stamp})
                note_deleted(table, row, stamp if deleted else None)

    def purge(self, sobject: str, record_ids: Iterable[str] | str) -> None:
        """Hard delete (or empty from the Recycle Bin): no query returns the records again."""
        if isinstance(record_ids, str):
            record_ids = [record_ids]
        with self._lock:
            table = self.table(sobject)
            rows = [self._row(table, rid) for rid in record_ids]
            self.revision += 1
            purge_rows(table, rows)

    def empty_recycle_bin_horizon(self) -> int:
        """Purge what has been in the Recycle Bin longer than 15 days by the org clock (run
        before every query, so moving the clock is enough)."""
        with self._lock:
            now = self.clock.now()
            purged = sum(empty_expired(table, now) for table in self.tables.values())
            if purged:
                self.revision += 1
            return purged

    def get(self, sobject: str, record_id: str) -> dict[str, Any]:
        """Every field of one record (deleted ones too), in stored form."""
        with self._lock:
            table = self.table(sobject)
            return table.record(self._row(table, record_id))

    def records(self, sobject: str, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        with self._lock:
            table = self.table(sobject)
            deleted = table.columns["IsDeleted"]
            return [table.record(r) for r in range(table.size)
                    if (include_deleted or not deleted[r]) and r not in table.purged]

    def count(self, sobject: str, *, include_deleted: bool = False) -> int:
        with self._lock:
            table = self.table(sobject)
            if include_deleted:
                return table.size - len(table.purged)
            return table.size - int(sum(table.columns["IsDeleted"][: table.size]))

    def touch_random(self, sobject: str, k: int, *, same_timestamp: bool = False, at: Stamp = None) -> list[str]:
        """Update ``k`` random live records as a user editing them would.

        With ``same_timestamp`` they all get one LastModifiedDate (``at`` or now); otherwise the
        j-th gets that time plus j seconds."""
        with self._lock:
            table = self.table(sobject)
            deleted = table.columns["IsDeleted"]
            live = [r for r in range(table.size) if not deleted[r]]
            rows = sorted(self.random.sample(live, min(k, len(live))))
            base = parse_datetime(self._stamp(at))
            for j, row in enumerate(rows):
                stamp = format_datetime(base if same_timestamp else base + timedelta(seconds=j))
                self._write(table, row, {"LastModifiedDate": stamp, "SystemModstamp": stamp})
            return [table.ids[r] for r in rows]

    def convert_lead(self, lead_id: str, *, contact_id: str | None = None, at: Stamp = None) -> str:
        """Convert a lead: it keeps existing with IsConverted, ConvertedContactId and ConvertedDate
        set. Without ``contact_id`` a contact is created from the lead. Returns the contact's Id."""
        with self._lock:
            lead = self.get("Lead", lead_id)
            if lead["IsConverted"]:
                raise ValueError(f"lead {lead_id} is already converted")
            if contact_id is None:
                copied = (
                    "FirstName",
                    "LastName",
                    "Salutation",
                    "Email",
                    "Phone",
                    "MobilePhone",
                    "Title",
                    "LeadSource",
                    "HasOptedOutOfEmail",
                    "Description",
                )
                [contact_id] = self.create("Contact", [{k: lead[k] for k in copied if k in lead}], at=at)
            else:
                self.get("Contact", contact_id)
            stamp = self._stamp(at)
            table = self.tables["Lead"]
            self._write(
                table,
                self._row(table, lead_id),
                {
                    "IsConverted": True,
                    "ConvertedContactId": contact_id,
                    "Status": "Closed - Converted",
                    "ConvertedDate": stamp[:10],
                    "LastModifiedDate": stamp,
                    "SystemModstamp": stamp,
                },
            )
            return contact_id

    def _row(self, table: Table, record_id: str) -> int:
        normal = ids.normalize(record_id)
        row = table.row_of(normal) if normal else None
        if row is None:
            raise KeyError(f"no {table.sobject} with Id {record_id}")
        return row

    def _write(self, table: Table, row: int, stored: Mapping[str, Any]) -> None:
        self.revision += 1
        for name, value in stored.items():
            table.columns[name][row] = value
        if table.sobject == "CampaignMember" and stored.get("Status") == "Responded":
            first = table.columns["FirstRespondedDate"]
            if first[row] is None:
                first[row] = table.columns["SystemModstamp"][row][:10]

    def _coerce_all(
        self, schema: ObjectSchema, table: Table, values: Mapping[str, Any], *, creating: bool
    ) -> dict[str, Any]:
        stored: dict[str, Any] = {}
        for name, value in values.items():
            f = schema.any_field(name)
            if f is None:
                raise KeyError(f"{schema.name} has no field {name}")
            if f.name in table.derived or f.name == "Id":
                raise ValueError(f"{schema.name}.{f.name} is computed by the org and cannot be set")
            if not creating and f.name in ("IsDeleted", "CreatedDate"):
                raise ValueError(f"{schema.name}.{f.name} cannot be updated")
            stored[f.name] = coerce(f, value)
        return stored

    def _apply_defaults(self, schema: ObjectSchema, stored: dict[str, Any]) -> None:
        for f in schema.all_fields():
            if f.default_picklist_value and stored.get(f.name) is None:
                stored[f.name] = f.default_picklist_value
        if schema.name == "CampaignMember" and stored.get("Status") == "Responded":
            stored.setdefault("FirstRespondedDate", stored["CreatedDate"][:10])

    def _stamp(self, at: Stamp) -> str:
        if at is None:
            # Salesforce keeps audit timestamps to the second.
            return format_datetime(self.clock.now().replace(microsecond=0))
        return format_datetime(parse_datetime(at) if isinstance(at, str) else at)

    def _derive_fields(self) -> None:
        for name in ("Lead", "Contact"):
            table = self.tables[name]
            first, last = table.columns["FirstName"], table.columns["LastName"]

            def full_name(row: int, first: list[Any] = first, last: list[Any] = last) -> str | None:
                f, la = first[row], last[row]
                return f"{f} {la}" if f and la else (la or f)

            table.derive("Name", full_name)
            for compound in self.schemas[name].all_fields():
                if compound.type == "address":
                    table.derive(compound.name, _address_getter(table, compound.name.removesuffix("Address")))
        self._derive_member_fields()

    def _derive_member_fields(self) -> None:
        """A campaign member's person fields are read through to its lead (or else its contact)."""
        members = self.tables["CampaignMember"]
        leads, contacts = self.tables["Lead"], self.tables["Contact"]
        lead_ids, contact_ids = members.columns["LeadId"], members.columns["ContactId"]
        statuses = members.columns["Status"]
        # member field -> (lead field, contact field); None where the person has no such field.
        copied: dict[str, tuple[str | None, str | None]] = {
            name: (name, name)
            for name in (
                "Email",
                "FirstName",
                "LastName",
                "Name",
                "Salutation",
                "Title",
                "Phone",
                "Fax",
                "MobilePhone",
                "Description",
                "DoNotCall",
                "HasOptedOutOfEmail",
                "HasOptedOutOfFax",
                "LeadSource",
            )
        }
        for part in ("Street", "City", "State", "PostalCode", "Country"):
            copied[part] = (part, "Mailing" + part)
        copied["CompanyOrAccount"] = ("Company", None)
        copied["LeadOrContactOwnerId"] = ("OwnerId", "OwnerId")
        booleans = {f.name for f in self.schemas["CampaignMember"].all_fields() if f.type == "boolean"}
        for name, (lead_field, contact_field) in copied.items():
            from_lead = leads.getter(lead_field) if lead_field else None
            from_contact = contacts.getter(contact_field) if contact_field else None
            missing = False if name in booleans else None

            def through(
                row: int,
                from_lead: Any = from_lead,
                from_contact: Any = from_contact,
                missing: Any = missing,
            ) -> Any:
                lead = lead_ids[row]
                if lead is not None:
                    r = leads.row_of(lead)
                    return missing if r is None or from_lead is None else from_lead(r)
                contact = contact_ids[row]
                r = None if contact is None else contacts.row_of(contact)
                return missing if r is None or from_contact is None else from_contact(r)

            members.derive(name, through)
        members.derive("HasResponded", lambda row: statuses[row] == "Responded")
        members.derive(
            "Type", lambda row: "Lead" if lead_ids[row] is not None else ("Contact" if contact_ids[row] else None)
        )
        members.derive("LeadOrContactId", lambda row: lead_ids[row] or contact_ids[row])

    # -- schema changes -----------------------------------------------------------------------------

    def rename_field(self, sobject: str, old: str, new: str) -> None:
        with self._lock:
            schema, f = self._changeable_field(sobject, old)
            self.revision += 1
            schema.rename(f.name, new)
            self.tables[schema.name].rename_column(f.name, new)

    def delete_field(self, sobject: str, name: str) -> None:
        with self._lock:
            schema, f = self._changeable_field(sobject, name)
            self.revision += 1
            schema.remove(f.name)
            self.tables[schema.name].drop_column(f.name)

    def add_field(
        self,
        sobject: str,
        name: str,
        field_type: str,
        *,
        label: str | None = None,
        picklist_values: Iterable[str] = (),
    ) -> None:
        """Add a custom field (``name`` should end in ``__c``); existing records hold null/false."""
        with self._lock:
            schema = self._schema(sobject)
            if schema.any_field(name) is not None:
                raise ValueError(f"{schema.name} already has a field named {name}")
            if field_type not in _ADDABLE_TYPES:
                raise ValueError(f"cannot add a field of type {field_type}")
            f = FieldDef(
                name,
                field_type,
                label or name.removesuffix("__c").replace("_", " "),
                length=_ADDABLE_TYPES[field_type],
                custom=True,
                picklist_values=tuple(picklist_values),
                filterable=field_type != "textarea",
                sortable=field_type not in ("textarea", "multipicklist"),
            )
            self.revision += 1
            schema.add(f)
            self.tables[schema.name].add_column(name, False if field_type == "boolean" else None)

    def set_field_readable(self, sobject: str, name: str, readable: bool) -> None:
        """Field-level security: an unreadable field vanishes from describe and from SOQL."""
        with self._lock:
            schema = self._schema(sobject)
            if schema.any_field(name) is None:
                raise KeyError(f"{schema.name} has no field {name}")
            self.revision += 1
            schema.set_readable(name, readable)

    def _schema(self, sobject: str) -> ObjectSchema:
        found = self.schema(sobject)
        if found is None:
            raise KeyError(f"no sObject {sobject}")
        return found

    def _changeable_field(self, sobject: str, name: str) -> tuple[ObjectSchema, FieldDef]:
        schema = self._schema(sobject)
        f = schema.any_field(name)
        if f is None:
            raise KeyError(f"{schema.name} has no field {name}")
        if f.name in _PROTECTED or f.name in self.tables[schema.name].derived:
            raise ValueError(f"{schema.name}.{f.name} is a system field and cannot be renamed or deleted")
        return schema, f

    # -- tokens, quota, faults ----------------------------------------------------------------------

    @property
    def client_id(self) -> str:
        return self.auth.app.client_id

    @property
    def client_secret(self) -> str:
        return self.auth.app.client_secret

    @property
    def username(self) -> str:
        return self.auth.user.username

    @property
    def password(self) -> str:
        return self.auth.user.password

    @property
    def settings(self) -> AuthSettings:
        return self.auth.settings

    def issue_refresh_token(self) -> Grant:
        """Tokens for the approved user, as if they had just consented in a browser."""
        return self.auth.issue_refresh_token()

    def revoke_all_tokens(self) -> None:
        self.auth.revoke_all()

    def expire_sessions(self, *, after_requests: int = 0) -> None:
        self.auth.expire_sessions(after_requests)

    def set_api_quota(self, *, max: int | None = None, used: int | None = None) -> tuple[int, int]:
        return self.quota.set(max=max, used=used)

    def api_usage(self) -> tuple[int, int]:
        return self.quota.usage()

    def inject_fault(
        self, endpoint: str, kind: str, *, count: int = 1, latency_ms: int = 0, status: int = 500
    ) -> Fault:
        fault = Fault(cast(EndpointKind, endpoint), cast(FaultKind, kind), count, latency_ms, status)
        return self.faults.inject(fault)

    def set_options(self, **options: Any) -> dict[str, Any]:
        """Switches: refresh_token_rotation, deny_consent, require_secret, session_timeout_seconds,
        batch_size, max_open_cursors, cursor_idle_seconds, callback_urls. Returns all of them."""
        with self._lock:
            s = self.auth.settings
            for key, value in options.items():
                if key in ("refresh_token_rotation", "deny_consent", "require_secret"):
                    setattr(s, key, bool(value))
                elif key == "session_timeout_seconds":
                    s.session_timeout = timedelta(seconds=float(value))
                elif key == "batch_size":
                    if not 1 <= int(value) <= 2000:
                        raise ValueError("batch_size must be between 1 and 2000")
                    self.query_settings.batch_size = int(value)
                elif key == "max_open_cursors":
                    self.cursors.max_open = max(1, int(value))
                elif key == "cursor_idle_seconds":
                    self.cursors.idle = timedelta(seconds=float(value))
                elif key == "callback_urls":
                    self.auth.app = ConnectedApp(self.client_id, self.client_secret, tuple(value))
                else:
                    raise KeyError(f"unknown option {key}")
            return self.options()

    def options(self) -> dict[str, Any]:
        s = self.auth.settings
        return {
            "refresh_token_rotation": s.refresh_token_rotation,
            "deny_consent": s.deny_consent,
            "require_secret": s.require_secret,
            "session_timeout_seconds": s.session_timeout.total_seconds(),
            "batch_size": self.query_settings.batch_size,
            "max_open_cursors": self.cursors.max_open,
            "cursor_idle_seconds": self.cursors.idle.total_seconds(),
            "callback_urls": list(self.auth.app.callback_urls),
        }

    def summary(self) -> dict[str, Any]:
        used, quota = self.api_usage()
        return {
            "now": format_datetime(self.clock.now()),
            "clock_frozen": self.clock.frozen,
            "records": {name: self.count(name) for name in self.tables},
            "deleted": {name: self.count(name, include_deleted=True) - self.count(name) for name in self.tables},
            "api_usage": {"used": used, "max": quota},
            "open_cursors": self.cursors.count(),
            "bulk_jobs": self.bulk.count(),
            "latency_profile": self.latency.name,
            "options": self.options(),
        }


_ADDRESS_PARTS = (
    ("city", "City"),
    ("country", "Country"),
    ("geocodeAccuracy", "GeocodeAccuracy"),
    ("latitude", "Latitude"),
    ("longitude", "Longitude"),
    ("postalCode", "PostalCode"),
    ("state", "State"),
    ("street", "Street"),
)


def _address_getter(table: Table, prefix: str) -> Any:
    """A compound address read from its components: REST's JSON object (keys in alphabetical
    order, as Salesforce sends them), or null when every component is null."""
    parts = [(key, table.getter(prefix + suffix)) for key, suffix in _ADDRESS_PARTS]

    def address(row: int) -> dict[str, Any] | None:
        value = {key: get(row) for key, get in parts}
        return value if any(v is not None for v in value.values()) else None

    return address


_ADDABLE_TYPES = {
    "string": 255,
    "email": 80,
    "phone": 40,
    "url": 255,
    "textarea": 32000,
    "picklist": 255,
    "multipicklist": 4099,
    "boolean": 0,
    "int": 0,
    "double": 0,
    "currency": 0,
    "percent": 0,
    "date": 0,
    "datetime": 0,
}
