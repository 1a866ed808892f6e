"""Calendar periods in a time zone: what "today", "this week" and "this month" mean for a player."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def period_keys(moment: datetime, tz: ZoneInfo) -> dict[str, str]:
    """The periods an instant falls in: ``all``, local day, ISO week (Monday start), month."""
    local = moment.astimezone(tz)
    year, week, _ = local.isocalendar()
    return {"all": "all", "day": local.strftime("%Y-%m-%d"), "week": f"{year}-W{week:02d}",
            "month": local.strftime("%Y-%m")}
