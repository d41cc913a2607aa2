"""Relative date literals (TODAY, LAST_N_DAYS:n, THIS_MONTH, ...) as day ranges on the org clock.

Each literal names a range of whole days ``[start, end)`` in the org's time zone, which for the
sandbox is UTC. ``= LITERAL`` means inside the range, ``< LITERAL`` before its start and
``> LITERAL`` after its end. Weeks start on Sunday (Salesforce's default, US locale).
"""

from __future__ import annotations

from datetime import date, timedelta


def _month_start(day: date, shift: int = 0) -> date:
    index = day.year * 12 + day.month - 1 + shift
    return date(index // 12, index % 12 + 1, 1)


def _quarter_start(day: date, shift: int = 0) -> date:
    first = _month_start(day, -((day.month - 1) % 3))
    return _month_start(first, 3 * shift)


def _week_start(day: date, shift: int = 0) -> date:
    return day - timedelta(days=(day.weekday() + 1) % 7) + timedelta(weeks=shift)


def day_range(name: str, n: int, today: date) -> tuple[date, date]:
    one = timedelta(days=1)
    match name:
        case "YESTERDAY":
            return today - one, today
        case "TODAY":
            return today, today + one
        case "TOMORROW":
            return today + one, today + 2 * one
        case "LAST_WEEK" | "THIS_WEEK" | "NEXT_WEEK":
            shift = {"LAST_WEEK": -1, "THIS_WEEK": 0, "NEXT_WEEK": 1}[name]
            return _week_start(today, shift), _week_start(today, shift + 1)
        case "LAST_MONTH" | "THIS_MONTH" | "NEXT_MONTH":
            shift = {"LAST_MONTH": -1, "THIS_MONTH": 0, "NEXT_MONTH": 1}[name]
            return _month_start(today, shift), _month_start(today, shift + 1)
        case "LAST_QUARTER" | "THIS_QUARTER" | "NEXT_QUARTER":
            shift = {"LAST_QUARTER": -1, "THIS_QUARTER": 0, "NEXT_QUARTER": 1}[name]
            return _quarter_start(today, shift), _quarter_start(today, shift + 1)
        case "LAST_YEAR" | "THIS_YEAR" | "NEXT_YEAR":
            year = today.year + {"LAST_YEAR": -1, "THIS_YEAR": 0, "NEXT_YEAR": 1}[name]
            return date(year, 1, 1), date(year + 1, 1, 1)
        # LAST_N_DAYS:n counts today plus the n days before it; NEXT_N_DAYS:n starts tomorrow.
        case "LAST_N_DAYS":
            return today - n * one, today + one
        case "LAST_90_DAYS":
            return today - 90 * one, today + one
        case "NEXT_N_DAYS":
            return today + one, today + (n + 1) * one
        case "NEXT_90_DAYS":
            return today + one, today + 91 * one
        case "N_DAYS_AGO":
            return today - n * one, today - (n - 1) * one
        case "LAST_N_WEEKS":
            return _week_start(today, -n), _week_start(today)
        case "NEXT_N_WEEKS":
            return _week_start(today, 1), _week_start(today, n + 1)
        case "LAST_N_MONTHS":
            return _month_start(today, -n), _month_start(today)
        case "NEXT_N_MONTHS":
            return _month_start(today, 1), _month_start(today, n + 1)
        case "LAST_N_YEARS":
            return date(today.year - n, 1, 1), date(today.year, 1, 1)
        case "NEXT_N_YEARS":
            return date(today.year + 1, 1, 1), date(today.year + n + 1, 1, 1)
    raise ValueError(f"unknown date literal {name}")
