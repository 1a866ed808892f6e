"""Link analytics shapes."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field


class LinkStats(BaseModel):
    clicks: int = Field(description="human clicks, each visitor counted once a day per link")
    unique_visitors: int = Field(description="distinct visitors per day, summed over the days (visitors are not "
                                             "followed from one day to the next)")
    joins: int = Field(description="joins that presented a click id of these links")
    conversion: float = Field(description="joins / unique_visitors (0 without visitors)")


class DayStats(LinkStats):
    day: date
    filtered: int = Field(description="requests not counted: bots, prefetches and repeats")


class MemberStats(LinkStats):
    member_code: str | None = Field(description="None: the community's own link")
    player_id: str | None


class LinkAnalytics(BaseModel):
    community_id: str
    slug: str
    link: str | None
    first_day: date
    last_day: date
    totals: LinkStats
    filtered: int
    by_day: list[DayStats]
    by_member: list[MemberStats]
