from __future__ import annotations

from bisect import bisect_right
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from questline.rules.conditions import Condition, references
from questline.rules.schemas import EVENT_TYPE, DefinitionBody

MAX_LEVEL = 1000


class Curve(BaseModel):
    """How much XP each level costs.

    - quadratic: going from level n to n+1 costs n² × base (seed: n² × 100)
    - geometric: costs base × factor^(n-1) (seed: × 1.3 per level)
    - linear: costs base + step × (n-1)
    - table: explicit total XP at which levels 2, 3, … start
    """

    model_config = ConfigDict(extra="forbid")

    type: Literal["quadratic", "geometric", "linear", "table"] = "quadratic"
    base: int = Field(default=100, ge=1, le=10_000_000)
    factor: float = Field(default=1.3, gt=1.0, le=10.0)
    step: int = Field(default=0, ge=0, le=10_000_000)
    thresholds: list[int] | None = Field(default=None, min_length=1, max_length=MAX_LEVEL)

    @model_validator(mode="after")
    def _table_shape(self) -> Curve:
        if self.type == "table":
            if not self.thresholds:
                raise ValueError("a table curve needs thresholds: the total XP at which levels 2, 3, … start")
            pairs = zip(self.thresholds, self.thresholds[1:], strict=False)
            if self.thresholds[0] <= 0 or any(b <= a for a, b in pairs):
                raise ValueError("thresholds must be positive and strictly increasing")
        elif self.thresholds is not None:
            raise ValueError(f"thresholds apply only to table curves, not {self.type}")
        return self

    def starts(self, max_level: int) -> list[int]:
        """Total XP at which each level starts: index 0 is level 1 (0 XP)."""
        if self.type == "table":
            assert self.thresholds is not None
            return [0, *self.thresholds][:max_level]
        starts, total = [0], 0
        for n in range(1, max_level):
            if self.type == "quadratic":
                cost = n * n * self.base
            elif self.type == "geometric":
                cost = round(self.base * self.factor ** (n - 1))
            else:
                cost = self.base + self.step * (n - 1)
            total += cost
            starts.append(total)
        return starts


class Reward(BaseModel):
    model_config = ConfigDict(extra="forbid")

    currency: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    amount: int = Field(ge=1, le=1_000_000_000)


class TrackDef(DefinitionBody):
    """An XP track (XP, RP, …) with its level curve."""

    name: str = Field(default="", max_length=100)
    curve: Curve = Field(default_factory=Curve)
    max_level: int = Field(default=100, ge=1, le=MAX_LEVEL)
    level_names: dict[int, str] = Field(default_factory=dict, max_length=MAX_LEVEL)
    level_up_reward: Reward | None = Field(default=None, description="posted through the ledger per level gained")

    @field_validator("level_names")
    @classmethod
    def _names_in_range(cls, value: dict[int, str]) -> dict[int, str]:
        for level in value:
            if not 1 <= level <= MAX_LEVEL:
                raise ValueError(f"level {level} is outside 1..{MAX_LEVEL}")
        return value

    def effective_max(self) -> int:
        if self.curve.type == "table":
            assert self.curve.thresholds is not None
            return min(self.max_level, len(self.curve.thresholds) + 1)
        return self.max_level


class XpRuleDef(DefinitionBody):
    """Events of a type (matching an optional filter) earn a fixed amount on a track."""

    track: str = Field(min_length=1, max_length=64)
    event_type: str = Field(pattern=EVENT_TYPE)
    filter: Condition | None = None
    amount: int = Field(ge=1, le=1_000_000)
    daily_cap: int | None = Field(default=None, ge=1, le=1_000_000_000, description="per player per local day")

    def references(self) -> list[tuple[str, str]]:
        return [("xp_track", self.track), *references(self.filter)]


class CombinedLevel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: int = Field(ge=1, le=MAX_LEVEL)
    name: str = Field(min_length=1, max_length=100)
    requires: dict[str, int] = Field(default_factory=dict, description="track key -> total XP needed")


class CombinedLevelDef(DefinitionBody):
    """A level reached by thresholds on several tracks at once (seed 000's XP + RP ladder)."""

    name: str = Field(default="", max_length=100)
    levels: list[CombinedLevel] = Field(min_length=1, max_length=MAX_LEVEL)

    @model_validator(mode="after")
    def _ordered(self) -> CombinedLevelDef:
        numbers = [lv.level for lv in self.levels]
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError("levels must be numbered 1, 2, 3, … in order")
        return self

    def references(self) -> list[tuple[str, str]]:
        return sorted({("xp_track", t) for lv in self.levels for t in lv.requires})

    def level_for(self, totals: dict[str, int]) -> int:
        reached = 1
        for lv in self.levels:
            if all(totals.get(track, 0) >= need for track, need in lv.requires.items()):
                reached = lv.level
            else:
                break
        return reached


class LevelInfo(BaseModel):
    level: int
    name: str | None
    total_xp: int
    xp_in_level: int
    xp_for_next_level: int | None
    xp_to_next_level: int | None
    progress_percent: int
    max_level: int
    xp_today: int


def level_info(track: TrackDef, total: int, xp_today: int) -> LevelInfo:
    starts = track.curve.starts(track.effective_max())
    level = min(bisect_right(starts, total), track.effective_max())
    start = starts[level - 1]
    nxt = starts[level] if level < len(starts) else None
    span = (nxt - start) if nxt is not None else None
    in_level = total - start
    percent = 100 if span is None else min(100, in_level * 100 // span)
    return LevelInfo(level=level, name=track.level_names.get(level), total_xp=total, xp_in_level=in_level,
                     xp_for_next_level=span, xp_to_next_level=(nxt - total) if nxt is not None else None,
                     progress_percent=percent, max_level=track.effective_max(), xp_today=xp_today)


class XpAward(BaseModel):
    model_config = ConfigDict(extra="forbid")

    track: str = Field(default="xp", min_length=1, max_length=64)
    amount: int = Field(ge=1, le=1_000_000)
    reason: str = Field(default="", max_length=200)


class XpAwardResult(BaseModel):
    player_id: str
    track: str
    xp_earned: int
    total_xp: int
    level: int
    level_up: bool
    levels_gained: list[int]
    points_awarded: dict[str, int]
    processed: bool


class LevelCount(BaseModel):
    level: int
    name: str | None = None
    players: int


class XpBucket(BaseModel):
    from_xp: int = Field(description="the bucket's lowest total XP")
    to_xp: int = Field(description="the bucket's highest total XP (inclusive)")
    players: int


class TrackDistribution(BaseModel):
    """How the players who earned XP on a track spread over its levels and over total XP."""

    track: str
    players: int
    levels: list[LevelCount] = Field(description="level 1 up to the highest level reached, zeros included")
    xp: list[XpBucket] = Field(description="equal-width buckets of total XP, lowest first")
