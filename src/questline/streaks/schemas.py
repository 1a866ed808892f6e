"""Streak definitions (the ``streak`` kind) and the API's request/response models."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from questline.progression.schemas import Reward
from questline.rules.conditions import Condition, references
from questline.rules.schemas import EVENT_TYPE, DefinitionBody

MAX_MILESTONE = 100_000
MAX_FREEZES = 100
MAX_REST_DAYS_PER_WEEK = 2
REST_DAY_HORIZON_DAYS = 366


class Milestone(BaseModel):
    """Reaching ``at`` consecutive periods announces ``streak.milestone`` and pays ``reward`` once per streak."""

    model_config = ConfigDict(extra="forbid")

    at: int = Field(ge=1, le=MAX_MILESTONE)
    reward: Reward | None = None


class FreezeSettings(BaseModel):
    """A freeze covers one missed period; it is used up automatically when a gap needs it."""

    model_config = ConfigDict(extra="forbid")

    max_held: int = Field(default=0, ge=0, le=MAX_FREEZES, description="how many a player may hold at once")
    cost: int = Field(default=0, ge=0, le=1_000_000_000, description="price of one freeze; 0: not for sale")
    currency: str = Field(default="points", pattern=r"^[a-z][a-z0-9_]{0,31}$")

    @model_validator(mode="after")
    def _buyable_needs_room(self) -> FreezeSettings:
        if self.cost > 0 and self.max_held == 0:
            raise ValueError("freezes with a cost need max_held of at least 1")
        return self


class FreezeGrant(BaseModel):
    """Events of a type (matching an optional filter) give the player freezes, up to ``max_held``."""

    model_config = ConfigDict(extra="forbid")

    event_type: str = Field(pattern=EVENT_TYPE)
    filter: Condition | None = None
    count: int = Field(default=1, ge=1, le=MAX_FREEZES)


class StreakDef(DefinitionBody):
    """Consecutive periods (days or ISO weeks, in the player's time zone) with qualifying activity."""

    name: str = Field(default="", max_length=100)
    event_types: list[str] = Field(min_length=1, max_length=50, description="events that count as activity")
    filter: Condition | None = Field(default=None, description="only events matching this count")
    cadence: Literal["daily", "weekly"] = "daily"
    milestones: list[Milestone] = Field(default_factory=list, max_length=100)
    freezes: FreezeSettings = Field(default_factory=FreezeSettings)
    freeze_grants: list[FreezeGrant] = Field(default_factory=list, max_length=20)
    rest_days_per_week: int = Field(default=0, ge=0, le=MAX_REST_DAYS_PER_WEEK,
                                    description="days a player may schedule off per ISO week (daily streaks)")

    @field_validator("event_types")
    @classmethod
    def _types(cls, value: list[str]) -> list[str]:
        import re

        for item in value:
            if not re.match(EVENT_TYPE, item):
                raise ValueError(f"{item!r} is not an event type")
        if len(set(value)) != len(value):
            raise ValueError("event_types lists a type twice")
        return value

    @field_validator("milestones", mode="before")
    @classmethod
    def _plain_numbers(cls, value: Any) -> Any:
        # [7, 30, 100] is shorthand for milestones without rewards.
        if isinstance(value, list):
            return [{"at": item} if isinstance(item, int) and not isinstance(item, bool) else item for item in value]
        return value

    @model_validator(mode="after")
    def _consistent(self) -> StreakDef:
        marks = [m.at for m in self.milestones]
        if marks != sorted(set(marks)):
            raise ValueError("milestones must be strictly increasing")
        if self.cadence == "weekly" and self.rest_days_per_week:
            raise ValueError("rest days apply to daily streaks only")
        if self.freeze_grants and self.freezes.max_held == 0:
            raise ValueError("freeze_grants need freezes.max_held of at least 1")
        return self

    def references(self) -> list[tuple[str, str]]:
        refs = references(self.filter)
        for grant in self.freeze_grants:
            refs += references(grant.filter)
        return refs

    def currencies(self) -> set[str]:
        found = {m.reward.currency for m in self.milestones if m.reward is not None}
        if self.freezes.cost > 0:
            found.add(self.freezes.currency)
        return found


# API ------------------------------------------------------------------------------------------


class Price(BaseModel):
    currency: str
    amount: int


class StreakOut(BaseModel):
    key: str
    name: str
    cadence: Literal["daily", "weekly"]
    current: int
    longest: int
    started_period: str | None = Field(description="the first period of the current streak")
    last_active_period: str | None
    active_this_period: bool = Field(description="activity already counted in the player's current day/week")
    breaks_at: datetime | None = Field(description="when the streak breaks without more activity "
                                                   "(after any freezes and rest days are used)")
    freezes_available: int
    max_freezes: int
    freeze_price: Price | None = Field(description="null: freezes are not for sale")
    rest_days_per_week: int
    rest_days: list[date] = Field(description="scheduled rest days from the start of this ISO week on")
    milestones: list[int]
    next_milestone: int | None


class PlayerStreaks(BaseModel):
    player_id: str
    timezone: str
    streaks: list[StreakOut]


class FreezePurchase(BaseModel):
    player_id: str
    streak: str
    freezes_available: int
    max_freezes: int
    price: Price
    transaction_id: str
    balance: int | None = Field(description="the player's balance in the price's currency afterwards")


class RestDaysIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: list[date] = Field(max_length=120, description="local dates (YYYY-MM-DD) in the future; at most "
                                                         "rest_days_per_week per ISO week. Replaces the future ones.")
