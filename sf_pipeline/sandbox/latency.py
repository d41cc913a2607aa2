"""Latency profiles: how much server-side time the sandbox spends before it answers.

``none`` (the default) answers as fast as the sandbox can. ``salesforce`` adds time of the order
a production org takes, so that a benchmark compares REST paging and Bulk API 2.0 the way they
compare against a real org (the figures and where they come from are in the README's sandbox
section):

- a REST ``query``/``queryAll``/``nextRecordsUrl`` page: a fixed time per call plus a time per
  record (about 0.35 s for a full 2,000-record page);
- a Bulk API 2.0 query job: a fixed queueing and start-up time plus a time per record matched,
  spent while the job is ``InProgress``;
- a Bulk results download: a fixed time per call plus a time per megabyte of CSV.

The time is spent on the connection's own thread, so concurrent clients wait in parallel as
they would against a real org.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class LatencyProfile:
    name: str
    rest_page_fixed_seconds: float = 0.0
    rest_page_per_record_seconds: float = 0.0
    bulk_job_fixed_seconds: float = 0.0
    bulk_job_per_record_seconds: float = 0.0
    bulk_download_fixed_seconds: float = 0.0
    bulk_download_seconds_per_mb: float = 0.0

    def rest_page(self, records: int) -> float:
        return self.rest_page_fixed_seconds + self.rest_page_per_record_seconds * records

    def bulk_download(self, size_bytes: int) -> float:
        return self.bulk_download_fixed_seconds + self.bulk_download_seconds_per_mb * size_bytes / 1_000_000

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


PROFILES: dict[str, LatencyProfile] = {
    "none": LatencyProfile("none"),
    "salesforce": LatencyProfile(
        "salesforce",
        rest_page_fixed_seconds=0.15,
        rest_page_per_record_seconds=0.0001,  # 2,000 records: 0.15 s + 0.2 s = 0.35 s a page
        bulk_job_fixed_seconds=3.0,
        bulk_job_per_record_seconds=0.00002,  # 1,000,000 records: 3 s + 20 s in InProgress
        bulk_download_fixed_seconds=0.1,
        bulk_download_seconds_per_mb=0.05,  # about 20 MB/s of CSV
    ),
}
