"""Where sf_pipeline's services read the time: the system clock, a fixed instant, or a clock file.

Production uses the system clock. The Dagster resource's ``now`` pins one instant (tests).
``SF_PIPELINE_CLOCK_FILE`` names a file holding an ISO-8601 instant that is read on every call, so
one writer can move time for every process of a deployment at once: the daemon's dispatcher
(evaluated inside the gRPC code server) and each run it launches agree on "now". Rehearsals and
tests use it to play many minutes of schedule in a few seconds of each.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

CLOCK_FILE_ENV = "SF_PIPELINE_CLOCK_FILE"

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def parse_instant(text: str, *, source: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{source}: {text.strip()!r} is not an ISO-8601 time") from None
    if value.tzinfo is None:
        raise ValueError(f"{source}: {text.strip()!r} has no UTC offset")
    return value.astimezone(UTC)


def fixed_clock(instant: datetime) -> Clock:
    return lambda: instant


def file_clock(path: Path) -> Clock:
    def read() -> datetime:
        return parse_instant(path.read_text(), source=str(path))

    read()  # a missing or malformed file fails when the services are built, not mid-run
    return read


def write_clock_file(path: Path, instant: datetime) -> None:
    """Replace the file atomically, so a reader never sees a half-written time."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(instant.astimezone(UTC).isoformat())
    tmp.replace(path)


def clock_from(now: str | None, clock_file: str | None) -> Clock:
    if now:
        return fixed_clock(parse_instant(now, source="now"))
    if clock_file:
        return file_clock(Path(clock_file))
    return system_clock
