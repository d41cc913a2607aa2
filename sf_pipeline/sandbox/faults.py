"""Injected faults and request counters, per endpoint kind.

A fault applies to the next ``count`` requests of one endpoint kind:

- ``latency``: wait ``latency_ms`` before answering normally;
- ``status``: answer ``status`` (500 ``UNKNOWN_EXCEPTION`` or 503 ``SERVER_UNAVAILABLE``);
- ``drop``: send the headers and half the body, then close the connection;
- ``query_timeout``: answer 400 ``QUERY_TIMEOUT``, as a real org does for a slow query;
- ``truncate``: answer normally but cut the body short in the middle of a record, with a
  ``Content-Length`` that matches the cut body (so the client sees a clean 200 whose CSV ends
  mid-row and holds fewer records than ``Sforce-NumberOfRecords`` says).

Endpoint kinds: ``query`` (query and queryAll), ``query_more`` (nextRecordsUrl pages), ``describe``
(global and per object), ``record`` (``sobjects/X/{Id}``), ``limits``, ``bulk_job`` (Bulk API 2.0
query jobs: create, list, info, abort, delete), ``bulk_results`` (their CSV results), ``token``, ``identity``,
``authorize``, ``revoke`` and ``versions``.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

EndpointKind = Literal[
    "query",
    "query_more",
    "describe",
    "record",
    "limits",
    "bulk_job",
    "bulk_results",
    "token",
    "identity",
    "authorize",
    "revoke",
    "versions",
    "control",
    "unknown",
]
FaultKind = Literal["latency", "status", "drop", "query_timeout", "truncate"]
ENDPOINT_KINDS: tuple[str, ...] = get_args(EndpointKind)
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)


@dataclass
class Fault:
    endpoint: EndpointKind
    kind: FaultKind
    remaining: int = 1
    latency_ms: int = 0
    status: int = 500

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[Fault] = []

    def inject(self, fault: Fault) -> Fault:
        if fault.endpoint not in ENDPOINT_KINDS or fault.endpoint in ("control", "unknown"):
            raise ValueError(f"unknown endpoint kind {fault.endpoint!r}")
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {fault.kind!r}")
        if fault.kind == "status" and fault.status not in (500, 503):
            raise ValueError("status faults are 500 or 503")
        if fault.remaining < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._pending.append(fault)
        return fault

    def take(self, endpoint: EndpointKind) -> Fault | None:
        """The first pending fault for ``endpoint``, using up one of its requests."""
        with self._lock:
            for fault in self._pending:
                if fault.endpoint == endpoint:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._pending.remove(fault)
                    return fault
        return None

    def pending(self) -> list[Fault]:
        with self._lock:
            return [Fault(**asdict(f)) for f in self._pending]

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()


class Counters:
    """Requests received per endpoint kind (every request, faulted or refused ones included)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def incr(self, endpoint: EndpointKind) -> None:
        with self._lock:
            self._counts[endpoint] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {k: self._counts.get(k, 0) for k in ENDPOINT_KINDS}

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
