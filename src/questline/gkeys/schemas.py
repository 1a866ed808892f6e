"""G-Key and energy replies."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

KeyStatus = Literal["available", "locked", "cooloff"]


class KeyOut(BaseModel):
    category: str
    status: KeyStatus = Field(description="as of now: a cooloff that has ended shows as available")
    locked_campaign_id: str | None = None
    locked_at: datetime | None = None
    cooloff_until: datetime | None = None
    usage_count: int = 0
    last_used_at: datetime | None = None
    last_brand_id: str | None = None
    last_brand_cooloff_hours: int | None = None


class KeysSummary(BaseModel):
    total: int
    available: int
    locked: int
    cooloff: int


class KeysOut(BaseModel):
    streamer_id: str
    keys: list[KeyOut]
    summary: KeysSummary


class KeyDebug(BaseModel):
    """Why a key is in its state, and who could use it now."""

    streamer_id: str
    category: str
    key: KeyOut
    stored_status: KeyStatus | None = Field(description="what the row says (null: never used, not created yet)")
    usable_now: bool = Field(description="by a campaign of any brand")
    usable_by_brand: str | None = Field(description="the one brand that may use it now despite its cooloff")
    cooloff_remaining: str | None = Field(description="e.g. 29d 23h 59m")
    explanation: str


class UnlockOut(BaseModel):
    key: KeyOut
    previous_status: KeyStatus | None
    previous_campaign_id: str | None


class EnergyOut(BaseModel):
    streamer_id: str
    current: int
    maximum: int
    daily_used: int
    day: str = Field(description="the streamer's local date the counts are for")
    next_reset_at: datetime = Field(description="the streamer's next local midnight, in UTC")
    next_regen_at: datetime | None = Field(description="when one more pack comes back (apps that regenerate)")
    timezone: str
