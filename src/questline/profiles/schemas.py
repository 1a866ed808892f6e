from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from questline.players.schemas import PlayerOut
from questline.progression.schemas import LevelInfo
from questline.streaks.schemas import StreakOut


class PointsSummary(BaseModel):
    currency: str
    balance: int
    lifetime_earned: int
    lifetime_spent: int


class Profile(BaseModel):
    player: PlayerOut
    levels: dict[str, LevelInfo]
    combined_levels: dict[str, dict[str, Any]]
    balances: dict[str, PointsSummary]
    streaks: dict[str, StreakOut]
    config_version: int
