"""Which Salesforce API extracts an object: REST ``queryAll`` pages or a Bulk API 2.0 job.

REST returns at most 2,000 records a call, each a server round trip; a Bulk API 2.0 job is
processed server-side and downloaded in pages of up to 50,000 records, but costs a job, a few
status polls and the job's processing time before the first record arrives. So Bulk pays off for
large results only (Salesforce's guidance: "more than 2,000 records"; the threshold here is
higher because a small job's fixed cost is several round trips). With a production org's
latencies (see ``sf_pipeline.sandbox.latency``: a 2,000-record REST page about 0.35 s, a Bulk job
about 3 s before its first record plus its download), REST is the faster path up to about 20,000
records, hence 25,000.

Per integration, ``api:`` in the integration file:

- ``auto`` (default): a full sync uses Bulk; an incremental one uses Bulk when its estimate is
  above ``BULK_THRESHOLD``. The estimate is the ``totalSize`` of the REST ``queryAll`` for the
  same SOQL, which Salesforce computes as ``COUNT()`` of that query and returns with the first
  page: when the result is small that page is already the start of the REST extract, so choosing
  costs no extra call.
- ``rest``: always REST.
- ``bulk``: always a Bulk job first.

Whatever was chosen, a Bulk job that cannot be created (an unsupported query, say), ends
``Failed`` or cannot be read falls back to REST for that object, logged with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from sf_pipeline.sync.plan import ObjectPlan

ApiSetting = Literal["auto", "rest", "bulk"]
Api = Literal["rest", "bulk"]
API_SETTINGS: tuple[str, ...] = get_args(ApiSetting)
BULK_THRESHOLD = 25_000


@dataclass(frozen=True)
class ApiChoice:
    api: Api
    reason: str


def choose_up_front(setting: str, plan: ObjectPlan) -> ApiChoice | None:
    """The choice when it needs no estimate; ``None`` when it does (an incremental run under auto)."""
    if setting == "rest":
        return ApiChoice("rest", "api: rest")
    if setting == "bulk":
        return ApiChoice("bulk", "api: bulk")
    if setting != "auto":
        raise ValueError(f"unknown api setting {setting!r}; expected one of {', '.join(API_SETTINGS)}")
    if plan.full:
        return ApiChoice("bulk", "full sync")
    return None


def choose_by_estimate(estimate: int, threshold: int = BULK_THRESHOLD) -> ApiChoice:
    if estimate > threshold:
        return ApiChoice("bulk", f"incremental estimate {estimate:,} > {threshold:,} records")
    return ApiChoice("rest", f"incremental estimate {estimate:,} <= {threshold:,} records")
