"""The Recycle Bin's horizon and hard deletes, as Salesforce has them.

A soft-deleted record stays visible to ``queryAll`` (``IsDeleted = true``) while it is in the
Recycle Bin, which Salesforce empties after 15 days; a hard delete (or emptying the bin) removes it
at once. After that no query of any kind returns it and undelete is refused, so an incremental
sync can never learn of it: only comparing Ids can. The sandbox keeps rows in place (row order is
Id order, see ``tables``) and marks them purged instead; the planner skips purged rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sf_pipeline.sandbox.clock import format_datetime
from sf_pipeline.sandbox.tables import Table

RECYCLE_BIN_DAYS = 15


def note_deleted(table: Table, row: int, stamp: str | None) -> None:
    """Remember when a row went to the bin (``None``: it was undeleted)."""
    if stamp is None:
        table.deleted_at.pop(row, None)
    else:
        table.deleted_at[row] = stamp


def purge_rows(table: Table, rows: Iterable[int]) -> None:
    """Hard delete: the rows leave the bin (or skip it) and every query."""
    deleted = table.columns["IsDeleted"]
    for row in rows:
        deleted[row] = True
        table.purged.add(row)
        table.deleted_at.pop(row, None)


def empty_expired(table: Table, now: datetime) -> int:
    """Purge rows deleted more than ``RECYCLE_BIN_DAYS`` ago by the org clock; returns how many."""
    if not table.deleted_at:
        return 0
    horizon = format_datetime(now - timedelta(days=RECYCLE_BIN_DAYS))
    # Stored datetimes share one fixed-width UTC format, so they compare as text.
    expired = [row for row, stamp in table.deleted_at.items() if stamp < horizon]
    purge_rows(table, expired)
    return len(expired)
