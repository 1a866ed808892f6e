"""The referral program definition and the API's shapes."""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from questline.ledger.schemas import CURRENCY_PATTERN
from questline.players.schemas import PLAYER_ID_PATTERN
from questline.rules.schemas import DefinitionBody

Status = Literal["pending", "signed_up", "converted", "paid_client", "churned"]
RewardedStatus = Literal["signed_up", "converted", "paid_client"]
Tier = Literal["bronze", "silver", "gold", "platinum", "diamond"]
Review = Literal["none", "pending", "approved", "rejected"]
STATUS_ORDER: tuple[str, ...] = ("pending", "signed_up", "converted", "paid_client", "churned")
PROGRAM_KEY = "default"
CODE_PATTERN = r"^[A-Za-z0-9]{1,12}-[A-Za-z0-9]{2,10}-[A-Za-z0-9]{4,8}$"


class SideRewards(BaseModel):
    """Points to each side of a referral when it reaches a status."""

    model_config = ConfigDict(extra="forbid")

    referrer: int = Field(default=0, ge=0, le=1_000_000_000)
    referee: int = Field(default=0, ge=0, le=1_000_000_000)


class Milestone(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tier: Tier
    name: str = Field(min_length=1, max_length=100)
    referrals: int = Field(ge=1, le=1_000_000, description="counted referrals (signed up, not fraud) needed")
    conversions: int | None = Field(default=None, ge=1, le=1_000_000, description="of which converted, optionally")
    points: int = Field(default=0, ge=0, le=1_000_000_000)
    badge: str | None = Field(default=None, min_length=1, max_length=64,
                              description="an achievement's key: the achievement is granted when the milestone "
                                          "is reached")
    title: str | None = Field(default=None, min_length=1, max_length=100)


# Seed 003's referral_milestones (1 pt = $0.001). Their badge_achievement_id is nullable and the seed
# rows set none: a program that wants badges lists its milestones with achievement keys.
DEFAULT_MILESTONES = [
    Milestone(tier="bronze", name="Bronze Recruiter", referrals=1, points=500),
    Milestone(tier="silver", name="Silver Recruiter", referrals=5, points=3000),
    Milestone(tier="gold", name="Gold Recruiter", referrals=10, points=8000),
    Milestone(tier="platinum", name="Platinum Recruiter", referrals=25, points=25000),
    Milestone(tier="diamond", name="Diamond Recruiter", referrals=50, points=75000),
]


def _default_rewards() -> dict[RewardedStatus, SideRewards]:
    # Seed 003: 500 to each side at signup, a 2,000 point conversion bonus to the referrer.
    return {"signed_up": SideRewards(referrer=500, referee=500), "converted": SideRewards(referrer=2000)}


class ReferralProgramDef(DefinitionBody):
    """The app's referral program (key ``default``): rewards per status, milestones, fraud limits."""

    currency: str = Field(default="points", pattern=CURRENCY_PATTERN)
    code_word: str = Field(default="REF", pattern=r"^[A-Z0-9]{2,10}$",
                           description="the middle of every code: NAME-<code_word>-X7Y2")
    link: str | None = Field(default=None, max_length=300, description="e.g. https://example.com/join?ref={code}")
    sharing_message: str | None = Field(default=None, max_length=500, description="may contain {code} and {link}")
    rewards: dict[RewardedStatus, SideRewards] = Field(default_factory=_default_rewards)
    milestones: list[Milestone] = Field(default_factory=lambda: list(DEFAULT_MILESTONES), max_length=5)
    max_referrals_per_ip: int = Field(default=3, ge=1, le=1000, description="more from one IP in the window: flagged")
    ip_window_days: int = Field(default=7, ge=1, le=365)

    @model_validator(mode="after")
    def _shape(self) -> ReferralProgramDef:
        tiers = [m.tier for m in self.milestones]
        if len(set(tiers)) != len(tiers):
            raise ValueError("each milestone tier may appear once")
        counts = [m.referrals for m in self.milestones]
        if counts != sorted(counts):
            raise ValueError("milestones must be listed in increasing order of referrals")
        if self.link is not None and "{code}" not in self.link:
            raise ValueError("link must contain {code}")
        return self

    def references(self) -> list[tuple[str, str]]:
        return sorted({("achievement", m.badge) for m in self.milestones if m.badge is not None})


# API shapes -----------------------------------------------------------------------------------


def _ip(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IPv4 or IPv6 address") from exc


class CodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ip: str | None = Field(default=None, max_length=45, description="server key only: the referrer's IP")
    device_fingerprint: str | None = Field(default=None, min_length=1, max_length=255,
                                           description="server key only: the referrer's device")

    @field_validator("ip")
    @classmethod
    def _valid_ip(cls, value: str | None) -> str | None:
        return _ip(value)


class CodeOut(BaseModel):
    player_id: str
    code: str
    referral_url: str | None
    sharing_message: str | None
    created_at: datetime


class TrackIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: str = Field(pattern=CODE_PATTERN, description="the referrer's code, any case")
    referred_player_id: str = Field(pattern=PLAYER_ID_PATTERN)
    ip: str | None = Field(default=None, max_length=45)
    device_fingerprint: str | None = Field(default=None, min_length=1, max_length=255)
    email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    status: Literal["pending", "signed_up"] = Field(default="signed_up",
                                                    description="pending: invited or clicked, not signed up yet")
    attribution: dict[str, str] | None = Field(default=None, max_length=10,
                                               description="e.g. utm_source, utm_medium, utm_campaign, landing_page")

    @field_validator("ip")
    @classmethod
    def _valid_ip(cls, value: str | None) -> str | None:
        return _ip(value)

    @field_validator("attribution")
    @classmethod
    def _short(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value and any(len(k) > 50 or len(v) > 500 for k, v in value.items()):
            raise ValueError("attribution keys are limited to 50 and values to 500 characters")
        return value


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["signed_up", "converted", "paid_client", "churned"]
    revenue: int | None = Field(default=None, strict=True, ge=0, le=1_000_000_000_000,
                                description="revenue the referee generated so far, in minor units")


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=500)


class MilestoneOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    tier: str
    name: str
    referrals: int
    points: int
    badge: str | None
    title: str | None
    awarded_at: datetime


class ReferralOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    code: str
    referrer_id: str
    referee_id: str
    status: Status
    flagged: bool
    fraud_reasons: list[str]
    review: Review
    reviewed_by: str | None
    review_note: str | None
    email_domain: str | None
    ip: str | None
    attribution: dict[str, Any] | None
    revenue: int
    referrer_points: int
    referee_points: int
    created_at: datetime
    updated_at: datetime
    signed_up_at: datetime | None
    converted_at: datetime | None
    paid_client_at: datetime | None
    churned_at: datetime | None
    milestones: list[MilestoneOut] = Field(default_factory=list, description="milestones this change reached")


class ReferralSummary(BaseModel):
    player_id: str
    code: str | None
    referral_url: str | None
    counted: int = Field(description="referrals that count for milestones: signed up, not held for fraud review")
    conversions: int
    by_status: dict[str, int]
    milestones: list[MilestoneOut]
    next_milestone: Milestone | None
