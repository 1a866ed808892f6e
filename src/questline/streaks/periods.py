"""Streak periods as numbers: local days (``2026-03-10``) and ISO weeks (``2026-W11``).

A period key is what ``kit.periods.period_keys`` gives for an instant in the player's time
zone; its index makes "the next period" and "how many periods were missed" plain arithmetic.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Cadence = Literal["daily", "weekly"]


def period_of(periods: Mapping[str, str], cadence: Cadence) -> str:
    """The streak period of an event, from its ``view.periods``."""
    return periods["day"] if cadence == "daily" else periods["week"]


def fits(period: str, cadence: Cadence) -> bool:
    """Whether a stored period key is of this cadence's kind."""
    return ("-W" in period) == (cadence == "weekly")


def index_of(period: str, cadence: Cadence) -> int:
    if cadence == "daily":
        return date.fromisoformat(period).toordinal()
    year, week = period.split("-W")
    # Mondays have ordinals 7k + 1, so consecutive ISO weeks get consecutive k.
    return date.fromisocalendar(int(year), int(week), 1).toordinal() // 7


def first_day(index: int, cadence: Cadence) -> date:
    return date.fromordinal(index) if cadence == "daily" else date.fromordinal(index * 7 + 1)


def key_at(index: int, cadence: Cadence) -> str:
    day = first_day(index, cadence)
    if cadence == "daily":
        return day.isoformat()
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def starts_at(index: int, cadence: Cadence, tz: ZoneInfo) -> datetime:
    """The UTC instant at which a period begins: local midnight (Monday's, for weeks)."""
    local = datetime.combine(first_day(index, cadence), time(0), tzinfo=tz)
    return local.astimezone(UTC)


def local_today(now: datetime, tz: ZoneInfo) -> date:
    return now.astimezone(tz).date()


def iso_week_of(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def days_between(first: int, last: int) -> list[str]:
    """Daily keys for the indexes ``first .. last`` inclusive (empty when first > last)."""
    return [(date.fromordinal(first) + timedelta(days=i)).isoformat() for i in range(max(0, last - first + 1))]
