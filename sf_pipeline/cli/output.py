"""How the CLI prints: Rich tables and colours on a terminal, one JSON document with ``--json``."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

from rich.console import Console

console = Console()
errors = Console(stderr=True)

STATUS_COLOURS = {"active": "green", "error": "red", "incomplete": "dark_orange", "inactive": "grey62"}


def badge(status: str) -> str:
    colour = STATUS_COLOURS.get(status, "white")
    return f"[bold {colour}]● {status.capitalize()}[/]"


def when(value: datetime | None) -> str:
    """A stored (UTC) time in the local time zone, to the second, e.g. ``2026-11-29 20:01:02 CET``."""
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def when_text(value: str | None) -> str:
    """``when`` for an ISO-8601 string (as the JSON rows carry them)."""
    return when(datetime.fromisoformat(value)) if value else "—"


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, default=str) + "\n")
    sys.stdout.flush()
