"""Leaderboard definitions (scoring, period, scope) and the shapes of reads."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from questline.gating.schemas import Requirement
from questline.players.schemas import check_timezone
from questline.rules.conditions import FIELD_PATH, Condition, references
from questline.rules.schemas import EVENT_TYPE, DefinitionBody

ScoreOperator = Literal["best", "set", "increment", "sum"]
BoardPeriod = Literal["all", "day", "week", "month", "custom"]
Order = Literal["desc", "asc"]
ATTRIBUTE = r"^[A-Za-z0-9_.-]{1,64}$"
# Scores are exact integers; Redis keeps them as doubles, exact up to 2**53.
MAX_SCORE = 2**53


class ScoringFields(BaseModel):
    """What a board ranks by: a stat of the pipeline, or a number on an event (or a count of events).

    The value each matching event brings is the event's ``field`` (times ``scale``), 1 when no
    field is named; for a stat, the stat's all-time value after the event (``set``/``best``) or
    how much the event moved it (``sum``/``increment``). The operator folds it into the score:
    ``sum`` adds the value, ``increment`` adds 1, ``best`` keeps the best value seen (highest on
    ``desc`` boards, lowest on ``asc``), ``set`` keeps the latest.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    stat: str | None = Field(default=None, min_length=1, max_length=64, description="rank by this stat")
    event_type: str | None = Field(default=None, pattern=EVENT_TYPE, description="or by events of this type")
    field: str | None = Field(default=None, pattern=FIELD_PATH, description="the event's number, e.g. data.score")
    filter: Condition | None = None
    operator: ScoreOperator = "sum"
    scale: int = Field(default=1, ge=1, le=1_000_000, description="multiply the event's number before rounding")
    order: Order = Field(default="desc", description="desc: highest first; asc: lowest first (e.g. times)")
    min_score: int | None = Field(default=None, ge=-MAX_SCORE, le=MAX_SCORE,
                                  description="players below this score are not ranked")

    @model_validator(mode="after")
    def _one_source(self) -> ScoringFields:
        if (self.stat is None) == (self.event_type is None):
            raise ValueError("rank by exactly one of: stat, event_type")
        if self.stat is not None and self.field is not None:
            raise ValueError("field applies to event_type scoring; a stat already says what it counts")
        if self.event_type is not None and self.operator in ("best", "set") and self.field is None:
            raise ValueError(f"operator {self.operator!r} needs a field (e.g. data.score)")
        return self

    def scoring_references(self) -> list[tuple[str, str]]:
        refs = references(self.filter)
        return [("stat", self.stat), *refs] if self.stat else refs


class Scoring(ScoringFields):
    """Scoring on its own (a competition's)."""


class GlobalScope(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["global"] = "global"


class PartitionScope(BaseModel):
    """One board per value of a player trait (a gym, a community, an age bracket), as the server key
    or an admin set it (``traits`` of the player's account); a player cannot move themself."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["partition"] = "partition"
    attribute: str = Field(pattern=ATTRIBUTE, description="the player trait that names the group, e.g. gym")


class FriendsScope(BaseModel):
    """Each player sees themself among their friends."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["friends"] = "friends"


Scope = Annotated[GlobalScope | PartitionScope | FriendsScope, Field(discriminator="type")]


class LeaderboardDef(ScoringFields, DefinitionBody):
    """A ranked board over a period, in the definition's time zone."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    name: str | None = Field(default=None, max_length=200)
    period: BoardPeriod = Field(default="all", description="all, day, week (ISO, Monday), month, or custom")
    timezone: str = Field(default="UTC", max_length=64, description="where days, weeks and months begin and end")
    starts_at: AwareDatetime | None = Field(default=None, description="events before this do not count")
    ends_at: AwareDatetime | None = Field(default=None, description="events from this instant on do not count")
    scope: Scope = Field(default_factory=GlobalScope)
    gating: Requirement | None = Field(
        default=None, description="who may score (communities, whitelist, level, completed challenges): "
                                  "events of other players do not count")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return check_timezone(value)

    @model_validator(mode="after")
    def _window(self) -> LeaderboardDef:
        if self.period == "custom" and (self.starts_at is None or self.ends_at is None):
            raise ValueError("a custom period needs starts_at and ends_at")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self

    def references(self) -> list[tuple[str, str]]:
        return self.scoring_references() + (self.gating.references() if self.gating else [])


# Reads ----------------------------------------------------------------------------------------


class RankedEntry(BaseModel):
    rank: int = Field(description="competitive position; a player hidden from you keeps theirs")
    player_id: str | None = Field(description="null when the player shows as anonymous")
    display_name: str
    score: int
    reached_at: datetime
    is_me: bool = False


class BoardHead(BaseModel):
    board: str
    name: str | None
    scope: str
    partition: str | None
    period: str
    period_key: str
    timezone: str
    order: Order
    resets_at: datetime | None = Field(description="when this period ends and a clean board starts")
    ranked: int = Field(description="players ranked in this period (and partition)")


class BoardPage(BoardHead):
    items: list[RankedEntry]
    next_cursor: str | None = None
    me: RankedEntry | None = Field(default=None, description="the viewer's own place, when ranked")


class BoardSummary(BaseModel):
    board: str
    name: str | None
    scope: str
    period: str
    period_key: str
    timezone: str
    resets_at: datetime | None


class ArchivePage(BaseModel):
    board: str
    period_key: str
    partition: str | None
    archived_at: datetime
    items: list[RankedEntry]
    next_cursor: str | None = None


class FriendsOut(BaseModel):
    player_id: str
    friends: list[str]
