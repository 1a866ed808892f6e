"""Campaign, participation, impression, completion and analytics requests and replies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from questline.kit.ids import ID_PATTERN
from questline.ledger.schemas import FIAT_PATTERN, MAX_AMOUNT
from questline.sponsors.schemas import Category, Country, Platform

Status = Literal["draft", "pending_review", "active", "paused", "rejected", "completed", "cancelled"]
ParticipationStatus = Literal["active", "paused", "left", "completed", "removed"]
CompletionReason = Literal["impression_target_reached", "budget_exhausted", "time_expired", "manual", "cancelled"]
Money = Annotated[int, Field(strict=True, gt=0, le=MAX_AMOUNT, description="minor units (cents for USD)")]
StreamerRef = Annotated[str, Field(pattern=ID_PATTERN, description="a streamer's id (str_…)")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Targeting(Strict):
    """Who may join; read from trusted facts only (verified channels, audience numbers set by the platform)."""

    categories: list[Category] = Field(default_factory=list, max_length=20,
                                       description="the streamer's verified channels stream one of these")
    platforms: list[Platform] = Field(default_factory=list, description="a verified channel on one of these")
    min_followers: int = Field(default=0, strict=True, ge=0, le=10_000_000_000)
    countries: list[Country] = Field(default_factory=list, max_length=250)


class CampaignIn(Strict):
    brand_id: str | None = Field(default=None, pattern=ID_PATTERN,
                                 description="the brand (the server key and admins name it; a brand token: its own)")
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    categories: list[Category] = Field(default_factory=list, max_length=10,
                                       description="G-Key categories a streamer may join with (none: any)")
    currency: str = Field(pattern=FIAT_PATTERN, description="e.g. USD")
    budget: Money
    rate_per_mille: Money = Field(description="paid per 1,000 impressions, in minor units")
    impression_target: int | None = Field(default=None, strict=True, gt=0, le=10**15,
                                          description="default: what the budget buys at the rate")
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    gkey_cooloff_hours: int | None = Field(default=None, strict=True, ge=0, le=24 * 366,
                                           description="default: the app's default_cooloff_hours (720)")
    targeting: Targeting = Field(default_factory=Targeting)

    @model_validator(mode="after")
    def _window(self) -> CampaignIn:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class CampaignPatch(Strict):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    categories: list[Category] | None = Field(default=None, max_length=10)
    budget: Money | None = None
    rate_per_mille: Money | None = None
    impression_target: int | None = Field(default=None, strict=True, gt=0, le=10**15)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    gkey_cooloff_hours: int | None = Field(default=None, strict=True, ge=0, le=24 * 366)
    targeting: Targeting | None = None


class CampaignOut(BaseModel):
    id: str
    brand_id: str
    title: str
    description: str
    categories: list[str]
    currency: str
    budget: int
    rate_per_mille: int
    impression_target: int
    starts_at: datetime | None
    ends_at: datetime | None
    gkey_cooloff_hours: int
    targeting: Targeting
    status: Status
    rejection_reason: str | None
    commission_bps: int | None
    impressions: int
    spent: int = Field(description="gross, paid out of the budget")
    remaining: int = Field(description="budget not yet spent")
    submitted_at: datetime | None
    approved_at: datetime | None
    completed_at: datetime | None
    completion_reason: str | None
    created_at: datetime
    updated_at: datetime


class Reason(Strict):
    reason: str = Field(min_length=3, max_length=500)


class JoinIn(Strict):
    streamer_id: StreamerRef | None = Field(default=None, description="required for the server key and admins")


class ParticipationOut(BaseModel):
    id: str
    campaign_id: str
    streamer_id: str
    brand_id: str
    status: ParticipationStatus
    gkey_category: str
    impressions: int
    earned: int = Field(description="the streamer's earnings (after the platform's commission), minor units")
    pending: int = Field(description="earned but not yet released (until the campaign completes)")
    joined_at: datetime
    paused_at: datetime | None
    ended_at: datetime | None
    removal_reason: str | None


class Joined(ParticipationOut):
    overlay_url: str = Field(description="the browser source for OBS and the like; shown here and on rotation only")
    energy_remaining: int


class OverlayRotated(BaseModel):
    participation_id: str
    overlay_url: str


# Impressions ----------------------------------------------------------------------------------

class ImpressionIn(Strict):
    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+$",
                    description="your id for this impression record; a repeat is counted once")
    streamer_id: StreamerRef
    count: int = Field(default=1, strict=True, ge=1, le=100_000, description="impressions this record stands for")


class ImpressionBatch(Strict):
    impressions: list[ImpressionIn] = Field(min_length=1, max_length=1000)


class OverlayImpression(Strict):
    id: str = Field(min_length=8, max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+$")


class OverlayBatch(Strict):
    impressions: list[OverlayImpression] = Field(min_length=1, max_length=60)


class RefusedImpression(BaseModel):
    id: str
    streamer_id: str | None = None
    code: str
    reason: str


class ImpressionResult(BaseModel):
    accepted: int = Field(description="impressions counted by this batch")
    duplicates: list[str] = Field(description="ids counted before")
    refused: list[RefusedImpression]
    paid_gross: int
    paid_fee: int
    paid_net: int
    campaign_status: Status
    completion_reason: str | None = None


# Completion -----------------------------------------------------------------------------------

class Criteria(BaseModel):
    impressions: int
    impression_target: int
    target_progress: float = Field(description="impressions / target")
    spent: int
    budget: int
    spent_ratio: float = Field(description="spent / budget; 0.95 completes")
    ends_at: datetime | None
    time_left_seconds: int | None


class CompletionCheck(BaseModel):
    campaign_id: str
    status: Status
    completed_now: bool
    reason: str | None
    criteria: Criteria


class CompletionRun(BaseModel):
    checked: int
    completed: list[CompletionCheck]


class JobStatus(BaseModel):
    name: str
    every_seconds: int
    last_run_at: datetime | None
    last_result: str | None


class CompletionStatus(BaseModel):
    job: JobStatus
    active: int
    paused: int
    completed_last_24h: int
    nearest: list[CompletionCheck] = Field(description="active campaigns closest to a completion criterion")


# Analytics ------------------------------------------------------------------------------------

class TimelinePoint(BaseModel):
    at: datetime
    impressions: int
    spent: int


class Participants(BaseModel):
    total: int
    active: int
    paused: int
    left: int
    completed: int
    removed: int


class Forecast(BaseModel):
    pace_per_hour: float = Field(description="impressions per hour over the last 24 hours")
    projected_completion_at: datetime | None
    projected_reason: str | None
    hours_to_target: float | None
    hours_to_budget: float | None


class Metrics(BaseModel):
    campaign_id: str
    status: Status
    currency: str
    budget: int
    spent: int
    commission: int
    paid_to_streamers: int
    remaining: int
    impressions: int
    impression_target: int
    effective_rate_per_mille: int | None = Field(description="spent × 1000 / impressions, minor units")
    participants: Participants
    timeline: list[TimelinePoint]
    forecast: Forecast


class CampaignPerformance(BaseModel):
    campaign_id: str
    title: str
    brand_id: str
    currency: str
    status: ParticipationStatus
    impressions: int
    earned: int
    pending: int
    joined_at: datetime


class MonthPerformance(BaseModel):
    month: str = Field(description="in the streamer's time zone, YYYY-MM")
    currency: str
    impressions: int
    earned: int


class Performance(BaseModel):
    streamer_id: str
    timezone: str
    campaigns: list[CampaignPerformance]
    months: list[MonthPerformance]


Granularity = Literal["hour", "day"]
