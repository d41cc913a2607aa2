"""A Python client for the sandbox's control API, for a sandbox running in another process.

    control = ControlClient("https://127.0.0.1:8443", secret=client_secret, verify=ca_bundle)
    [lead] = control.create("Lead", [{"LastName": "Ng", "Company": "Acme"}])
    control.advance_clock(3600)
    control.inject_fault("query_more", "drop")

Each method matches the ``Org`` method of the same name (see ``state``). Failures raise
``ControlError`` with the HTTP status and the sandbox's error body.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import requests

SECRET_HEADER = "X-Sandbox-Secret"


class ControlError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"control API answered {status}: {body}")
        self.status = status
        self.body = body


def _stamp(at: datetime | str | None) -> str | None:
    return at.isoformat() if isinstance(at, datetime) else at


class ControlClient:
    def __init__(self, base_url: str, *, secret: str, verify: str | bool = True, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.verify = verify
        self.session.headers[SECRET_HEADER] = secret

    def _call(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        response = self.session.request(
            method, f"{self.base_url}/__sandbox__/{path}", json=body, params=params, timeout=self.timeout
        )
        try:
            payload = response.json()
        except ValueError:
            payload = response.text
        if response.status_code >= 300:
            raise ControlError(response.status_code, payload)
        return payload

    # -- records ------------------------------------------------------------------------------------

    def create(
        self, sobject: str, records: Iterable[Mapping[str, Any]], *, at: datetime | str | None = None
    ) -> list[str]:
        created: list[str] = self._call("POST", f"records/{sobject}", {"records": list(records), "at": _stamp(at)})[
            "ids"
        ]
        return created

    def update(
        self,
        sobject: str,
        record_id: str,
        values: Mapping[str, Any],
        *,
        at: datetime | str | None = None,
        system_only: bool = False,
    ) -> None:
        self.update_many(sobject, {record_id: values}, at=at, system_only=system_only)

    def update_many(
        self,
        sobject: str,
        changes: Mapping[str, Mapping[str, Any]],
        *,
        at: datetime | str | None = None,
        system_only: bool = False,
    ) -> None:
        self._call(
            "POST",
            f"records/{sobject}/update",
            {
                "records": {k: dict(v) for k, v in changes.items()},
                "at": _stamp(at),
                "system_only": system_only,
            },
        )

    def delete(self, sobject: str, record_ids: Iterable[str], *, at: datetime | str | None = None) -> None:
        self._call("POST", f"records/{sobject}/delete", {"ids": list(record_ids), "at": _stamp(at)})

    def undelete(self, sobject: str, record_ids: Iterable[str], *, at: datetime | str | None = None) -> None:
        self._call("POST", f"records/{sobject}/undelete", {"ids": list(record_ids), "at": _stamp(at)})

    def purge(self, sobject: str, record_ids: Iterable[str]) -> None:
        """Hard delete, or empty from the Recycle Bin: no query returns the records again."""
        self._call("POST", f"records/{sobject}/purge", {"ids": list(record_ids)})

    def get(self, sobject: str, record_id: str) -> dict[str, Any]:
        record: dict[str, Any] = self._call("GET", f"records/{sobject}/{record_id}")
        return record

    def records(self, sobject: str, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._call(
            "GET", f"records/{sobject}", params={"include_deleted": "true" if include_deleted else "false"}
        )["records"]
        return found

    def touch_random(
        self, sobject: str, k: int, *, same_timestamp: bool = False, at: datetime | str | None = None
    ) -> list[str]:
        touched: list[str] = self._call(
            "POST", f"records/{sobject}/touch", {"k": k, "same_timestamp": same_timestamp, "at": _stamp(at)}
        )["ids"]
        return touched

    def convert_lead(self, lead_id: str, *, contact_id: str | None = None, at: datetime | str | None = None) -> str:
        contact: str = self._call("POST", f"leads/{lead_id}/convert", {"contact_id": contact_id, "at": _stamp(at)})[
            "contact_id"
        ]
        return contact

    def generate(self, records: int, *, seed: int = 0) -> dict[str, int]:
        created: dict[str, int] = self._call("POST", "generate", {"records": records, "seed": seed})["created"]
        return created

    def state(self) -> dict[str, Any]:
        summary: dict[str, Any] = self._call("GET", "state")
        return summary

    # -- clock --------------------------------------------------------------------------------------

    def clock(self) -> dict[str, Any]:
        now: dict[str, Any] = self._call("GET", "clock")
        return now

    def freeze_clock(self, at: datetime | str | None = None) -> dict[str, Any]:
        now: dict[str, Any] = self._call("POST", "clock", {"action": "freeze", "at": _stamp(at)})
        return now

    def unfreeze_clock(self) -> dict[str, Any]:
        now: dict[str, Any] = self._call("POST", "clock", {"action": "unfreeze"})
        return now

    def set_clock(self, at: datetime | str) -> dict[str, Any]:
        now: dict[str, Any] = self._call("POST", "clock", {"action": "set", "at": _stamp(at)})
        return now

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        now: dict[str, Any] = self._call("POST", "clock", {"action": "advance", "seconds": seconds})
        return now

    # -- schema -------------------------------------------------------------------------------------

    def rename_field(self, sobject: str, old: str, new: str) -> None:
        self._call("POST", f"fields/{sobject}/{old}", {"action": "rename", "new_name": new})

    def delete_field(self, sobject: str, name: str) -> None:
        self._call("POST", f"fields/{sobject}/{name}", {"action": "delete"})

    def set_field_readable(self, sobject: str, name: str, readable: bool) -> None:
        self._call("POST", f"fields/{sobject}/{name}", {"action": "readable", "readable": readable})

    def add_field(
        self,
        sobject: str,
        name: str,
        field_type: str,
        *,
        label: str | None = None,
        picklist_values: Iterable[str] = (),
    ) -> None:
        self._call(
            "POST",
            f"fields/{sobject}",
            {"name": name, "type": field_type, "label": label, "picklist_values": list(picklist_values)},
        )

    # -- tokens, quota, options ---------------------------------------------------------------------

    def issue_refresh_token(self) -> dict[str, str]:
        """A full token response (access_token, refresh_token, instance_url, id, ...)."""
        payload: dict[str, str] = self._call("POST", "tokens/refresh_token")
        return payload

    def revoke_all_tokens(self) -> None:
        self._call("POST", "tokens/revoke_all")

    def expire_sessions(self, *, after_requests: int = 0) -> None:
        self._call("POST", "sessions/expire", {"after_requests": after_requests})

    def api_usage(self) -> dict[str, int]:
        usage: dict[str, int] = self._call("GET", "quota")
        return usage

    def set_api_quota(self, *, max: int | None = None, used: int | None = None) -> dict[str, int]:
        usage: dict[str, int] = self._call("POST", "quota", {"max": max, "used": used})
        return usage

    def options(self) -> dict[str, Any]:
        current: dict[str, Any] = self._call("GET", "options")
        return current

    def set_options(self, **options: Any) -> dict[str, Any]:
        current: dict[str, Any] = self._call("POST", "options", options)
        return current

    # -- faults and counters ------------------------------------------------------------------------

    def inject_fault(
        self, endpoint: str, kind: str, *, count: int = 1, latency_ms: int = 0, status: int = 500
    ) -> dict[str, Any]:
        fault: dict[str, Any] = self._call(
            "POST",
            "faults",
            {"endpoint": endpoint, "kind": kind, "count": count, "latency_ms": latency_ms, "status": status},
        )
        return fault

    def faults(self) -> list[dict[str, Any]]:
        pending: list[dict[str, Any]] = self._call("GET", "faults")["faults"]
        return pending

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def counters(self) -> dict[str, int]:
        counts: dict[str, int] = self._call("GET", "counters")
        return counts

    def reset_counters(self) -> dict[str, int]:
        counts: dict[str, int] = self._call("DELETE", "counters")
        return counts

    # -- Bulk API 2.0 query jobs and latency ------------------------------------------------------

    def bulk_jobs(self) -> list[dict[str, Any]]:
        jobs: list[dict[str, Any]] = self._call("GET", "bulk/jobs")["jobs"]
        return jobs

    def fail_next_bulk_job(self, message: str) -> None:
        self._call("POST", "bulk/fail", {"message": message})

    def fail_bulk_job(self, job_id: str, message: str) -> dict[str, Any]:
        info: dict[str, Any] = self._call("POST", "bulk/fail", {"job_id": job_id, "message": message})
        return info

    def expire_bulk_locator(self, job_id: str, locator: str | None = None) -> None:
        self._call("POST", f"bulk/jobs/{job_id}/expire_locator", {"locator": locator})

    def bulk_settings(self) -> dict[str, Any]:
        current: dict[str, Any] = self._call("GET", "bulk/settings")
        return current

    def set_bulk_settings(self, **settings: float | int) -> dict[str, Any]:
        """``fixed_seconds``, ``per_record_seconds``, ``max_jobs``, ``jobs_used``, ``max_storage_mb``."""
        current: dict[str, Any] = self._call("POST", "bulk/settings", settings)
        return current

    def latency_profile(self) -> dict[str, Any]:
        current: dict[str, Any] = self._call("GET", "latency")
        return current

    def set_latency_profile(self, profile: str) -> dict[str, Any]:
        current: dict[str, Any] = self._call("POST", "latency", {"profile": profile})
        return current

    def close(self) -> None:
        self.session.close()
