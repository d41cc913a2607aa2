"""``sf-pipeline logs NAME``: the integration's log events, newest first, filtered by type and date."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

import typer
from rich.table import Table

from sf_pipeline.cli.output import console, print_json, when
from sf_pipeline.errors import UserError

EVENT_TYPES = ("sync_started", "sync_completed", "sync_failed", "records_imported", "records_updated", "health_check")


def parse_bound(value: str | None, *, option: str, end: bool) -> datetime | None:
    """A date (``2026-11-27``; as ``--until`` it includes that whole day) or an ISO-8601 datetime."""
    if value is None:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            moment = datetime.combine(day, time.min, tzinfo=UTC)
            return moment + timedelta(days=1) - timedelta(microseconds=1) if end else moment
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"{option}: '{value}' is not a date (YYYY-MM-DD) or ISO-8601 datetime") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_types(values: list[str] | None) -> list[str]:
    types = []
    for value in values or []:
        if value not in EVENT_TYPES:
            raise UserError(f"--type: unknown event type '{value}'; expected one of {', '.join(EVENT_TYPES)}")
        types.append(value)
    return types


def logs_command(
    name: Annotated[str, typer.Argument(help="The integration.")],
    type_: Annotated[list[str] | None, typer.Option("--type", help="Only this event type (repeatable).")] = None,
    since: Annotated[str | None, typer.Option(help="From this date or datetime (UTC).")] = None,
    until: Annotated[str | None, typer.Option(help="Up to this date (inclusive) or datetime (UTC).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many events.")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON list with stable keys.")] = False,
) -> None:
    """List an integration's sync log events, newest first."""
    if limit <= 0:
        raise UserError(f"--limit: must be a positive whole number, got {limit}")
    types = parse_types(type_)
    start = parse_bound(since, option="--since", end=False)
    stop = parse_bound(until, option="--until", end=True)
    if start and stop and start > stop:
        raise UserError("--since is after --until")
    from sf_pipeline.events import EventType, event_as_dict, list_events
    from sf_pipeline.storage.database import Database
    from sf_pipeline.storage.integrations import get_integration

    database = Database.from_settings()
    with database.session() as session:
        integration = get_integration(session, name)
        events = list_events(session, integration, types=[EventType(t) for t in types], since=start, until=stop,
                             limit=limit)
        rows = [event_as_dict(e) for e in events]
        stamps = [e.at for e in events]
    if as_json:
        print_json(rows)
        return
    database.dispose()
    table = Table(title=f"Logs of {name}")
    table.add_column("At", no_wrap=True)
    for column in ("Event", "Run", "Counts", "Duration", "Error / details"):
        table.add_column(column, overflow="fold")
    for row, at in zip(rows, stamps, strict=True):
        counts = ", ".join(f"{k} {v}" for k, v in row["counts"].items() if not isinstance(v, dict))
        duration = f"{row['duration_s']:.2f}s" if row["duration_s"] is not None else ""
        extra = row["error"] or ""
        if row["details"].get("warnings"):
            samples = row["details"]["warnings"]
            total = row["details"].get("warnings_total", len(samples))
            extra = f"{total} warnings, first {len(samples)} shown with --json; e.g. {samples[0]}"
        elif row["type"] == EventType.HEALTH_CHECK and not row["error"]:
            extra = f"{row['details'].get('check')} passed"
        colour = "red" if row["error"] else "default"
        table.add_row(when(at), f"[{colour}]{row['type']}[/]", (row["run_id"] or "")[:8], counts, duration, extra)
    console.print(table)
