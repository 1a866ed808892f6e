"""Requests and replies for brands, streamers, their sign-in and wallets, and the marketplace settings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from questline.kit.ids import ID_PATTERN
from questline.players.schemas import PLAYER_ID_PATTERN, check_timezone

CATEGORY_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
DEFAULT_CATEGORIES = ["gaming", "sports", "entertainment", "technology", "lifestyle"]
Platform = Literal["twitch", "youtube", "tiktok", "other"]
Verification = Literal["pending", "verified", "rejected"]
MemberRole = Literal["owner", "member"]
PaymentMethod = Literal["bank", "paypal", "stripe"]
Category = Annotated[str, Field(pattern=CATEGORY_PATTERN, description="a marketplace category, e.g. gaming")]
Email = Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Password = Annotated[str, Field(min_length=10, max_length=200, description="at least 10 characters")]
Country = Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2, e.g. DE")]
ShortText = Annotated[str, Field(max_length=200)]
Count = Annotated[int, Field(strict=True, ge=0, le=10_000_000_000)]
AccountId = Annotated[str, Field(pattern=ID_PATTERN)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


# Settings -------------------------------------------------------------------------------------

class SignupReward(Strict):
    track: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    amount: int = Field(strict=True, ge=1, le=1_000_000)


class MarketSettings(Strict):
    """One app's marketplace rules; an app that never set them gets these defaults."""

    categories: list[Category] = Field(default_factory=lambda: list(DEFAULT_CATEGORIES), min_length=1,
                                       max_length=50, description="G-Key categories (one key per streamer each)")
    energy_max: int = Field(default=10, strict=True, ge=1, le=1000, description="energy packs per streamer")
    energy_regen_minutes: int | None = Field(default=None, strict=True, ge=1, le=1440,
                                             description="regain one pack every this many minutes (off: null)")
    default_cooloff_hours: int = Field(default=720, strict=True, ge=0, le=24 * 366,
                                       description="a campaign's G-Key cooloff unless it sets its own")
    commission_bps: int = Field(default=1000, strict=True, ge=0, le=10_000,
                                description="the platform's share of each earning, in basis points (1000 = 10%)")
    signup_rewards: list[SignupReward] = Field(
        default_factory=lambda: [SignupReward(track="xp", amount=10), SignupReward(track="rp", amount=5)],
        max_length=10, description="XP paid once to each new streamer through progression (tracks must exist)")
    impressions_per_minute: int = Field(default=100_000, strict=True, ge=1, le=100_000_000,
                                        description="at most this many impressions per participation and minute")
    overlay_impressions_per_minute: int = Field(default=60, strict=True, ge=1, le=100_000,
                                                description="of which at most this many from the overlay page")

    @field_validator("categories")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        return _unique(value)

    @model_validator(mode="after")
    def _overlay_within_total(self) -> MarketSettings:
        if self.overlay_impressions_per_minute > self.impressions_per_minute:
            raise ValueError("overlay_impressions_per_minute cannot exceed impressions_per_minute")
        return self


# Sign-in --------------------------------------------------------------------------------------

class LoginIn(Strict):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=200)


class AccountToken(BaseModel):
    token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_at: datetime
    role: Literal["brand", "streamer"]
    account_id: str = Field(description="the brand's or streamer's id")
    member_id: str | None = Field(default=None, description="the brand member who signed in")


# Brands ---------------------------------------------------------------------------------------

class ContactPerson(Strict):
    name: ShortText = ""
    position: ShortText = ""
    phone: str = Field(default="", max_length=40)


class Billing(Strict):
    address: str = Field(default="", max_length=500)
    tax_id: str = Field(default="", max_length=64)
    country: Country | None = None


class BudgetRange(Strict):
    min: int = Field(default=0, strict=True, ge=0, le=10**12)
    max: int = Field(default=0, strict=True, ge=0, le=10**12)

    @model_validator(mode="after")
    def _ordered(self) -> BudgetRange:
        if self.max and self.max < self.min:
            raise ValueError("max must be at least min (or 0: no upper bound)")
        return self


class MarketingPreferences(Strict):
    target_demographics: list[ShortText] = Field(default_factory=list, max_length=50)
    content_categories: list[Category] = Field(default_factory=list, max_length=50)
    budget_range: BudgetRange = Field(default_factory=BudgetRange, description="minor units")


class MemberIn(Strict):
    email: Email
    password: Password
    name: ShortText = ""
    role: MemberRole = "member"


class BrandIn(Strict):
    company_name: str = Field(min_length=1, max_length=200)
    industry: str = Field(min_length=1, max_length=100)
    contact_person: ContactPerson = Field(default_factory=ContactPerson)
    billing: Billing = Field(default_factory=Billing)
    marketing_preferences: MarketingPreferences = Field(default_factory=MarketingPreferences)
    owner: MemberIn = Field(description="the first member, who signs in for the brand (role owner)")


class BrandPatch(Strict):
    company_name: str | None = Field(default=None, min_length=1, max_length=200)
    industry: str | None = Field(default=None, min_length=1, max_length=100)
    contact_person: ContactPerson | None = None
    billing: Billing | None = None
    marketing_preferences: MarketingPreferences | None = None


class MemberOut(BaseModel):
    id: str
    brand_id: str
    email: str
    name: str
    role: MemberRole
    created_at: datetime
    removed_at: datetime | None


class BrandOut(BaseModel):
    id: str
    company_name: str
    industry: str
    contact_person: ContactPerson
    billing: Billing
    marketing_preferences: MarketingPreferences
    created_at: datetime
    updated_at: datetime


# Streamers ------------------------------------------------------------------------------------

class PlatformIn(Strict):
    """What a streamer says about a channel; changing it sends the channel back to review."""

    name: Platform
    username: str = Field(min_length=1, max_length=100)
    channel_url: str = Field(default="", max_length=500, pattern=r"^(|https?://\S+)$")


class PlatformFacts(Strict):
    """What the platform's server or admins know about a channel's audience (targeting reads these)."""

    followers: Count = 0
    average_viewers: Count = 0
    peak_viewers: Count = 0
    content_categories: list[Category] = Field(default_factory=list, max_length=20)


class PlatformOut(BaseModel):
    name: Platform
    username: str
    channel_url: str
    followers: int
    average_viewers: int
    peak_viewers: int
    content_categories: list[str]
    verification_status: Verification
    verification_reason: str | None = None


class Demographics(Strict):
    primary_country: Country | None = None
    languages: list[Annotated[str, Field(pattern=r"^[a-z]{2,3}$")]] = Field(default_factory=list, max_length=20)
    audience_age_ranges: list[Annotated[str, Field(pattern=r"^\d{1,2}(-\d{1,2}|\+)$")]] = Field(
        default_factory=list, max_length=10)
    audience_interests: list[ShortText] = Field(default_factory=list, max_length=50)


class BankDetailsIn(Strict):
    account_holder: str = Field(min_length=1, max_length=200)
    account_details: str = Field(min_length=4, max_length=200, description="IBAN, account number or e-mail")
    preferred_payment_method: PaymentMethod = "bank"


class BankDetailsOut(BaseModel):
    account_holder: str
    account_details: str = Field(description="masked: only the last four characters show")
    preferred_payment_method: PaymentMethod


class StreamerIn(Strict):
    email: Email
    password: Password
    display_name: str = Field(min_length=1, max_length=200)
    player_id: str | None = Field(default=None, pattern=PLAYER_ID_PATTERN, description=(
        "the app's own id for this person as a player (server key or admin only); default: the streamer id"))
    timezone: str | None = Field(default=None, max_length=64, description="IANA, for energy resets at local midnight")
    content_categories: list[Category] = Field(default_factory=list, max_length=20)
    platforms: list[PlatformIn] = Field(default_factory=list, max_length=10)
    bank_details: BankDetailsIn | None = None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else check_timezone(value)

    @field_validator("platforms")
    @classmethod
    def _one_per_platform(cls, value: list[PlatformIn]) -> list[PlatformIn]:
        if len({p.name for p in value}) != len(value):
            raise ValueError("each platform appears once")
        return value


class StreamerPatch(Strict):
    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    content_categories: list[Category] | None = Field(default=None, max_length=20)
    platforms: list[PlatformIn] | None = Field(default=None, max_length=10)
    bank_details: BankDetailsIn | None = None
    password: Password | None = None

    @field_validator("platforms")
    @classmethod
    def _one_per_platform(cls, value: list[PlatformIn] | None) -> list[PlatformIn] | None:
        if value is not None and len({p.name for p in value}) != len(value):
            raise ValueError("each platform appears once")
        return value


class AudienceIn(Strict):
    """Trusted facts (server key or app admin): demographics and each channel's numbers."""

    demographics: Demographics | None = None
    platforms: dict[Platform, PlatformFacts] = Field(default_factory=dict)


class VerificationIn(Strict):
    status: Verification
    reason: str | None = Field(default=None, max_length=500)


class StreamerOut(BaseModel):
    id: str
    player_id: str
    email: str
    display_name: str
    content_categories: list[str]
    platforms: list[PlatformOut]
    demographics: Demographics
    bank_details: BankDetailsOut | None
    created_at: datetime
    updated_at: datetime
