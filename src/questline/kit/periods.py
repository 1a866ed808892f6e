"""Calendar periods in a time zone: what "today", "this week" and "this month" mean for a player."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from types import MappingProxyType
from zoneinfo import ZoneInfo

# Every UTC offset in use is a whole number of quarter hours and zones change offset on a quarter
# hour, so all instants of one quarter hour share their local day, week and month.
_QUARTER = 900


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def period_keys(moment: datetime, tz: ZoneInfo) -> Mapping[str, str]:
    """The periods an instant falls in: ``all``, local day, ISO week (Monday start), month (read-only)."""
    return _keys(tz, int(moment.timestamp()) // _QUARTER)


@lru_cache(maxsize=4096)
def period_span(name: str, key: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants a local period (``day`` 2026-12-01, ``week`` 2026-W49, ``month`` 2026-12)
    starts and ends at in a time zone: local midnights, end excluded."""
    if name == "day":
        first = date.fromisoformat(key)
        after = first + timedelta(days=1)
    elif name == "week":
        iso_year, iso_week = key.split("-W")
        first = date.fromisocalendar(int(iso_year), int(iso_week), 1)
        after = first + timedelta(days=7)
    elif name == "month":
        year, month = (int(part) for part in key.split("-"))
        first = date(year, month, 1)
        after = date(year + month // 12, month % 12 + 1, 1)
    else:
        raise ValueError(f"no span for period {name!r}")
    return (datetime.combine(first, time(0), tzinfo=tz).astimezone(UTC),
            datetime.combine(after, time(0), tzinfo=tz).astimezone(UTC))


def overlaps(a: tuple[datetime, datetime], b: tuple[datetime, datetime]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


@lru_cache(maxsize=65536)
def _keys(tz: ZoneInfo, quarter: int) -> Mapping[str, str]:
    local = datetime.fromtimestamp(quarter * _QUARTER, UTC).astimezone(tz)
    year, week, _ = local.isocalendar()
    return MappingProxyType({"all": "all", "day": local.strftime("%Y-%m-%d"), "week": f"{year}-W{week:02d}",
                             "month": local.strftime("%Y-%m")})
