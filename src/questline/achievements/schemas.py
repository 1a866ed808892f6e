"""Achievement definitions (the ``achievement`` kind) and the API's response models."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from questline.progression.schemas import Reward
from questline.rules.conditions import (
    METRIC_NAME,
    AllCondition,
    AnyCondition,
    Condition,
    LevelCondition,
    MetricCondition,
    NotCondition,
    Period,
    StatCondition,
    references,
)
from questline.rules.schemas import DefinitionBody

Rarity = Literal["common", "rare", "epic", "legendary", "mythic"]
RARITIES: tuple[str, ...] = ("common", "rare", "epic", "legendary", "mythic")
STREAK_METRICS = ("current", "longest")
MAX_TARGET = 1_000_000_000_000


class Unlocks(BaseModel):
    """What the achievement unlocks besides points: shown to the player, applied by the game."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=100, description='e.g. "Legendary Warrior"')
    cosmetic: str | None = Field(default=None, min_length=1, max_length=100, description='e.g. "golden_border"')


class ProgressSpec(BaseModel):
    """What to show as current/target: one stat (in a period), metric or level."""

    model_config = ConfigDict(extra="forbid")

    stat: str | None = Field(default=None, min_length=1, max_length=64)
    period: Period = "all"
    metric: str | None = Field(default=None, min_length=1, max_length=100, pattern=METRIC_NAME)
    level: str | None = Field(default=None, min_length=1, max_length=64)
    target: int = Field(ge=1, le=MAX_TARGET)

    @model_validator(mode="after")
    def _one_source(self) -> ProgressSpec:
        given = [name for name in ("stat", "metric", "level") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("progress names exactly one of stat, metric, level")
        if self.period != "all" and self.stat is None:
            raise ValueError("period applies to stat progress only")
        return self


def metrics_in(condition: object) -> list[str]:
    """Every metric a condition reads."""
    if isinstance(condition, AllCondition | AnyCondition):
        items = condition.all if isinstance(condition, AllCondition) else condition.any
        return [m for c in items for m in metrics_in(c)]
    if isinstance(condition, NotCondition):
        return metrics_in(condition.not_)
    if isinstance(condition, MetricCondition):
        return [condition.metric]
    return []


def streak_of_metric(metric: str) -> str | None:
    """``streak.<key>.current`` -> key; None for other metrics."""
    parts = metric.split(".")
    if parts[0] != "streak":
        return None
    if len(parts) != 3 or parts[2] not in STREAK_METRICS:
        raise ValueError(f"{metric!r}: streak metrics are streak.<key>.current or streak.<key>.longest")
    return parts[1]


class AchievementDef(DefinitionBody):
    """An achievement: unlocked once per player, the first time ``criteria`` holds after an event.

    Without ``criteria`` it is grant-only: never unlocked by events or backfill, only granted
    (``POST /v1/players/{id}/achievements/{key}/grant``, a battle pass tier's badge, a referral
    milestone's badge).
    """

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    category: str = Field(default="general", pattern=r"^[a-z][a-z0-9_]{0,49}$")
    rarity: Rarity = "common"
    points_reward: Reward | None = Field(default=None, description="posted through the ledger once, on unlock")
    unlocks: Unlocks = Field(default_factory=Unlocks)
    is_secret: bool = Field(default=False, description="name and description hidden from players until unlocked")
    is_visible: bool = Field(default=True, description="false: left out of player-facing lists (retired)")
    sort_order: int = Field(default=0, ge=-1_000_000, le=1_000_000)
    criteria: Condition | None = Field(default=None,
                                       description="a condition on stats, levels, metrics (streak.<key>.current, …) "
                                                   "and the event being processed; absent: grant-only (never "
                                                   "unlocked by events, only granted)")
    progress: ProgressSpec | None = Field(default=None, description="current/target to display; derived from a "
                                                                    "single gte/gt criterion when omitted")

    @model_validator(mode="after")
    def _metrics_named_well(self) -> AchievementDef:
        for metric in metrics_in(self.criteria):
            streak_of_metric(metric)
        if self.progress is not None and self.progress.metric is not None:
            streak_of_metric(self.progress.metric)
        if self.progress is not None and self.criteria is None:
            raise ValueError("progress needs criteria: a grant-only achievement shows 0/1 until granted")
        return self

    @property
    def grant_only(self) -> bool:
        return self.criteria is None

    def progress_spec(self) -> ProgressSpec | None:
        if self.progress is not None:
            return self.progress
        c = self.criteria
        if c is None:
            return None
        if not isinstance(c, StatCondition | MetricCondition | LevelCondition) or c.op not in ("gte", "gt", "eq"):
            return None
        if isinstance(c.value, bool) or not isinstance(c.value, int | float):
            return None
        target = int(c.value) + (1 if c.op == "gt" else 0)
        if target < 1:
            return None
        if isinstance(c, StatCondition):
            return ProgressSpec(stat=c.stat, period=c.period, target=target)
        if isinstance(c, MetricCondition):
            return ProgressSpec(metric=c.metric, target=target)
        return ProgressSpec(level=c.level, target=target)

    def references(self) -> list[tuple[str, str]]:
        refs = references(self.criteria)
        metrics = metrics_in(self.criteria)
        if self.progress is not None:
            if self.progress.stat is not None:
                refs.append(("stat", self.progress.stat))
            if self.progress.level is not None:
                refs.append(("level", self.progress.level))
            if self.progress.metric is not None:
                metrics.append(self.progress.metric)
        for metric in metrics:
            streak = streak_of_metric(metric)
            if streak is not None:
                refs.append(("streak", streak))
        return sorted(set(refs))


# API ------------------------------------------------------------------------------------------


class Progress(BaseModel):
    current: int
    target: int
    percent: int


class Badge(BaseModel):
    version: int
    content_type: str
    url: str
    thumbnail_url: str | None = Field(description="256×256 PNG; null for SVG badges (they scale themselves)")
    width: int | None
    height: int | None
    bytes: int
    sha256: str
    uploaded_at: datetime


class AchievementOut(BaseModel):
    key: str
    name: str
    description: str
    category: str
    rarity: Rarity
    points_reward: Reward | None
    title_unlock: str | None
    cosmetic_unlock: str | None
    is_secret: bool
    is_visible: bool
    sort_order: int
    badge: Badge | None
    unlocked_count: int
    rarity_percent: float = Field(description="share of the app's players (every player it has seen) who have it")


class Catalog(BaseModel):
    total_players: int
    achievements: list[AchievementOut]


class PlayerAchievementOut(BaseModel):
    key: str
    name: str
    description: str
    category: str
    rarity: Rarity
    points_reward: Reward | None
    title_unlock: str | None
    cosmetic_unlock: str | None
    is_secret: bool
    hidden: bool = Field(description="a secret not yet unlocked: name and description are masked")
    badge: Badge | None
    unlocked: bool
    unlocked_at: datetime | None
    progress: Progress
    rarity_percent: float


class PlayerAchievements(BaseModel):
    player_id: str
    total: int
    unlocked: int
    achievements: list[PlayerAchievementOut]


class GrantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, min_length=1, max_length=500,
                               description="why it is granted; recorded in the announcement")


class GrantOut(PlayerAchievementOut):
    granted: bool = Field(description="true if this call awarded it; false if the player already had it")
