"""Calendar periods in a time zone: what "today", "this week" and "this month" mean for a player."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
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


@lru_cache(maxsize=65536)
def _keys(tz: ZoneInfo, quarter: int) -> Mapping[str, str]:
    local = datetime.fromtimestamp(quarter * _QUARTER, UTC).astimezone(tz)
    year, week, _ = local.isocalendar()
    return MappingProxyType({"all": "all", "day": local.strftime("%Y-%m-%d"), "week": f"{year}-W{week:02d}",
                             "month": local.strftime("%Y-%m")})
