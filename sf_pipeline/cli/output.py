"""How the CLI prints: Rich tables and colours on a terminal, one JSON document with ``--json``."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

from rich.console import Console

console = Console()
errors = Console(stderr=True)

STATUS_COLOURS = {"active": "green", "error": "red", "incomplete": "dark_orange", "inactive": "grey62"}


def badge(status: str) -> str:
    colour = STATUS_COLOURS.get(status, "white")
    return f"[bold {colour}]● {status.capitalize()}[/]"


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, default=str) + "\n")
    sys.stdout.flush()
