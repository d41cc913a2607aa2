"""The org clock (real time unless frozen, set or advanced) and Salesforce's timestamp text forms.

Datetimes are stored as Salesforce prints them, ``2024-01-01T00:00:00.000+0000`` (always UTC,
milliseconds, no colon in the offset). That text sorts like the instant it names, so stored
values compare and order as plain strings.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta


def format_datetime(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}+0000"


def parse_datetime(text: str) -> datetime:
    """Any ISO-8601 datetime (``Z``, ``+0000``, ``+00:00``; naive means UTC) as an aware UTC datetime."""
    parsed = datetime.fromisoformat(text.strip())
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_date(value: date) -> str:
    return f"{value:%Y-%m-%d}"


def epoch_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


class OrgClock:
    """Real time by default; ``freeze``, ``set`` and ``advance`` move the org's idea of now."""

    def __init__(self, start: datetime | None = None, *, frozen: bool = False) -> None:
        self._lock = threading.Lock()
        self._anchor_org = _aware(start) if start else datetime.now(UTC)
        self._anchor_real = time.monotonic()
        self._frozen = frozen

    @property
    def frozen(self) -> bool:
        return self._frozen

    def now(self) -> datetime:
        with self._lock:
            return self._now()

    def _now(self) -> datetime:
        if self._frozen:
            return self._anchor_org
        return self._anchor_org + timedelta(seconds=time.monotonic() - self._anchor_real)

    def _rebase(self, at: datetime) -> None:
        self._anchor_org = at
        self._anchor_real = time.monotonic()

    def freeze(self, at: datetime | None = None) -> datetime:
        with self._lock:
            self._rebase(_aware(at) if at else self._now())
            self._frozen = True
            return self._anchor_org

    def unfreeze(self) -> datetime:
        with self._lock:
            self._rebase(self._now())
            self._frozen = False
            return self._anchor_org

    def set(self, at: datetime) -> datetime:
        """Jump to ``at``; a running clock keeps running from there."""
        with self._lock:
            self._rebase(_aware(at))
            return self._anchor_org

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self._rebase(self._now() + timedelta(seconds=seconds))
            return self._anchor_org


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
