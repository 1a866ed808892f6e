from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from questline.players.schemas import PlayerOut
from questline.progression.schemas import LevelInfo
from questline.streaks.schemas import StreakOut


class PointsSummary(BaseModel):
    currency: str
    balance: int
    lifetime_earned: int
    lifetime_spent: int


class TitleOut(BaseModel):
    title: str
    source: Literal["achievement", "battle_pass", "referral_milestone"]
    reference: str = Field(description="the achievement key, season:track:tier, or milestone tier that gave it")
    earned_at: datetime


class Profile(BaseModel):
    player: PlayerOut
    levels: dict[str, LevelInfo]
    combined_levels: dict[str, dict[str, Any]]
    balances: dict[str, PointsSummary]
    streaks: dict[str, StreakOut]
    titles: list[TitleOut] = Field(description="titles earned from achievements, pass tiers and referral "
                                               "milestones, oldest first")
    config_version: int
