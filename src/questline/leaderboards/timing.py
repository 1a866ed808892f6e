"""When a board's periods begin and end, in the board's own time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

CUSTOM = "custom"


def period_key(period: str, moment: datetime, tz: ZoneInfo) -> str:
    """The key of the period an instant falls in: ``all``, ``custom``, or a local day/week/month.

    The same keys as ``kit.periods.period_keys`` (stats use those), computed for one period only.
    """
    if period == "all":
        return "all"
    if period == CUSTOM:
        return CUSTOM
    local = moment.astimezone(tz)
    if period == "day":
        return f"{local.year:04d}-{local.month:02d}-{local.day:02d}"
    if period == "month":
        return f"{local.year:04d}-{local.month:02d}"
    year, week, _ = local.isocalendar()
    return f"{year}-W{week:02d}"


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def next_reset(period: str, moment: datetime, tz: ZoneInfo, ends_at: datetime | None = None) -> datetime | None:
    """When the period containing ``moment`` ends: the next local midnight, Monday or 1st."""
    local = moment.astimezone(tz).date()
    if period == "day":
        return _local_midnight(local + timedelta(days=1), tz)
    if period == "week":
        return _local_midnight(local + timedelta(days=7 - local.weekday()), tz)
    if period == "month":
        first = local.replace(day=1)
        return _local_midnight((first + timedelta(days=32)).replace(day=1), tz)
    if period == CUSTOM:
        return ends_at
    return None
