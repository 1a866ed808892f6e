"""Challenge (and quest) definitions, and what the challenge routes take and return.

A challenge is one definition of kind ``challenge``: what the player must do (one or more
objectives over their events), when (a recurrence in the player's time zone, optional dates),
who may take it (a minimum level, required achievements and challenges, and the shared
``gating`` requirement: community membership, a whitelist), what it pays (XP on a
track and points in a currency, from the definition only), and how it completes (at once, or by
a claim an admin approves).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from questline.fulfilment.schemas import InGameReward, TokenReward
from questline.gating.schemas import Requirement
from questline.kit.jsonvalue import JsonObject
from questline.rules.conditions import FIELD_PATH, Condition, references
from questline.rules.schemas import DEFINITION_KEY, EVENT_TYPE, DefinitionBody

CATEGORY = r"^[a-z][a-z0-9_]{0,49}$"
CURRENCY = r"^[a-z][a-z0-9_]{0,31}$"
MAX_WINDOW_SECONDS = 31 * 86_400
MAX_COOLDOWN_SECONDS = 366 * 86_400
MAX_VERIFICATION_BYTES = 8 * 1024

Recurrence = Literal["daily", "weekly", "monthly", "one_time", "event"]
ObjectiveType = Literal["count", "value", "exists", "time_window"]
CompletionMode = Literal["auto", "claim"]
Difficulty = Literal["easy", "medium", "hard", "legendary"]
ValueOp = Literal["eq", "ne", "gt", "gte", "lt", "lte", "exists"]
Aggregate = Literal["sum", "max", "min", "last"]
Scalar = int | float | str | bool
_ORDERED = ("gt", "gte", "lt", "lte")

# Which list a challenge appears in on GET /v1/players/{id}/challenges.
GROUP_OF: dict[str, str] = {"daily": "daily", "weekly": "weekly", "monthly": "monthly", "one_time": "special",
                            "event": "special"}
# Which of the event's periods (EventView.periods) a recurrence completes once in.
PERIOD_OF: dict[str, str | None] = {"daily": "day", "weekly": "week", "monthly": "month", "one_time": None,
                                    "event": None}
ONCE = "once"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class XpReward(_Strict):
    track: str = Field(min_length=1, max_length=64, description="an xp_track key")
    amount: int = Field(ge=1, le=1_000_000)


class PointsReward(_Strict):
    currency: str = Field(pattern=CURRENCY, description="a currency of the app, e.g. points")
    amount: int = Field(ge=1, le=1_000_000_000)


class Rewards(_Strict):
    xp: XpReward | None = None
    points: PointsReward | None = None
    # Given outside the ledger: each a fulfilment record made with the completion (once per period).
    webhook: JsonObject | None = Field(default=None, description="a reward your server delivers (signed call to "
                                                                 "the app's webhook fulfilment target)")
    in_game: InGameReward | None = Field(default=None, description="an item the game server grants (signed call "
                                                                   "to the in_game fulfilment target)")
    token: TokenReward | None = Field(default=None, description="a token transfer to the player's wallet")


class MinLevel(_Strict):
    track: str = Field(min_length=1, max_length=64, description="an xp_track or combined_level key")
    level: int = Field(ge=1, le=1000)


class Objective(_Strict):
    """One thing to do, judged on the player's events of one type in the current period.

    - ``count``: ``target`` matching events.
    - ``value``: the ``aggregate`` (sum, max, min, last) of ``field`` over matching events
      compared with ``op`` (default gte) to ``target``: "run 5000 m this week", "score 1000 once".
    - ``exists``: one matching event (whose ``field``, if given, passes ``op``/``target``).
    - ``time_window``: ``target`` matching events within any ``window_seconds``.
    """

    type: ObjectiveType
    event_type: str = Field(pattern=EVENT_TYPE)
    filter: Condition | None = Field(default=None, description="which events of the type count")
    field: str | None = Field(default=None, pattern=FIELD_PATH, description="value and exists: e.g. data.minutes")
    op: ValueOp | None = Field(default=None, description="value and exists: how field compares with target")
    aggregate: Aggregate | None = Field(default=None, description="value: how events combine (default sum)")
    target: Scalar | None = None
    window_seconds: int | None = Field(default=None, description="time_window: the window's length")
    label: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _fits_type(self) -> Objective:
        kind = self.type
        if kind in ("count", "time_window"):
            for name in ("field", "op", "aggregate"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name}: not used by a {kind} objective (only value and exists take it)")
            if isinstance(self.target, bool) or not isinstance(self.target, int) or not 1 <= self.target <= 100_000:
                raise ValueError(f"target: a {kind} objective needs a whole number of events from 1 to 100000")
        if kind == "time_window":
            if self.window_seconds is None:
                raise ValueError("window_seconds: a time_window objective needs the window's length in seconds")
            if not 1 <= self.window_seconds <= MAX_WINDOW_SECONDS:
                raise ValueError(f"window_seconds: must be 1 to {MAX_WINDOW_SECONDS} (31 days)")
            if self.target is not None and isinstance(self.target, int) and self.target > 1000:
                raise ValueError("target: a time_window objective counts at most 1000 events")
        elif self.window_seconds is not None:
            raise ValueError(f"window_seconds: only time_window objectives take it, not {kind}")
        if kind == "value":
            self._check_value()
        if kind == "exists":
            self._check_exists()
        return self

    def _check_value(self) -> None:
        if self.field is None:
            raise ValueError("field: a value objective needs the field to aggregate, e.g. data.minutes")
        op = self.op or "gte"
        if op == "exists":
            raise ValueError("op: a value objective compares with eq, ne, gt, gte, lt or lte")
        if self.target is None:
            raise ValueError("target: a value objective needs the value to reach")
        aggregate = self.aggregate or "sum"
        numeric = isinstance(self.target, int | float) and not isinstance(self.target, bool)
        if aggregate != "last" and not numeric:
            raise ValueError(f"target: aggregate {aggregate!r} needs a number (use aggregate last for text)")
        if op in _ORDERED and isinstance(self.target, bool):
            raise ValueError(f"target: op {op!r} compares numbers or text, not booleans")

    def _check_exists(self) -> None:
        if self.aggregate is not None:
            raise ValueError("aggregate: only value objectives take it")
        if self.field is None:
            if self.op is not None:
                raise ValueError("op: compares a field; give field too (or leave both out)")
            if self.target not in (None, 1, True):
                raise ValueError("target: without a field, an exists objective takes no target")
            return
        op = self.op or "exists"
        if op == "exists":
            if self.target is not None and not isinstance(self.target, bool):
                raise ValueError("target: op 'exists' takes no target, or true/false")
        elif self.target is None:
            raise ValueError(f"target: op {op!r} needs the value to compare with")
        elif op in _ORDERED and isinstance(self.target, bool):
            raise ValueError(f"target: op {op!r} compares numbers or text, not booleans")

    @property
    def goal(self) -> int | float | str | bool:
        """What progress is measured against: the target, or 1 for an exists objective."""
        if self.type == "exists" or self.target is None:
            return 1
        return self.target


class ChallengeDef(DefinitionBody):
    """A challenge or quest: objectives over events, a recurrence, gates, rewards."""

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    category: str = Field(default="general", pattern=CATEGORY,
                          description="free text such as workout, nutrition, social; counted per category")
    difficulty: Difficulty = "medium"
    rewards: Rewards = Field(default_factory=Rewards)
    recurrence: Recurrence = "one_time"
    starts_at: datetime | None = Field(default=None, description="no progress before this instant")
    ends_at: datetime | None = Field(default=None, description="no progress from this instant on")
    min_level: MinLevel | None = None
    required_achievements: list[str] = Field(
        default_factory=list, max_length=20,
        description="achievement keys; met when the player's metric achievement.<key> is at least 1")
    required_challenges: list[str] = Field(default_factory=list, max_length=20,
                                           description="challenge keys the player must have completed")
    gating: Requirement | None = Field(
        default=None, description="who may take part (communities, whitelist, level, completed challenges): "
                                  "events of other players do not count, their claims are 403 gated")
    objectives: list[Objective] = Field(min_length=1, max_length=10)
    repeatable: bool = Field(default=False, description="may complete again in the same period, after the cooldown")
    cooldown_seconds: int = Field(default=0, ge=0, le=MAX_COOLDOWN_SECONDS)
    completion_mode: CompletionMode = Field(default="auto",
                                            description="auto: completes on the event; claim: an admin approves")
    sort_order: int = Field(default=0, ge=-1_000_000, le=1_000_000)
    icon_url: str | None = Field(default=None, max_length=500)

    @field_validator("required_achievements", "required_challenges")
    @classmethod
    def _keys(cls, value: list[str]) -> list[str]:
        import re

        for key in value:
            if not re.match(DEFINITION_KEY, key):
                raise ValueError(f"{key!r} is not a definition key (lowercase letters, digits, _ . -)")
        if len(set(value)) != len(value):
            raise ValueError("lists a key twice")
        return value

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a time zone offset, e.g. 2026-06-01T00:00:00Z")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ChallengeDef:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at: must be after starts_at")
        if self.recurrence == "event" and (self.starts_at is None or self.ends_at is None):
            raise ValueError("recurrence: an event challenge needs starts_at and ends_at")
        if self.cooldown_seconds and not self.repeatable:
            raise ValueError("cooldown_seconds: only a repeatable challenge has a cooldown")
        if self.repeatable and self.completion_mode == "claim":
            raise ValueError("repeatable: claim-mode challenges complete once per period; set repeatable false")
        return self

    def references(self) -> list[tuple[str, str]]:
        refs: list[tuple[str, str]] = []
        if self.rewards.xp is not None:
            refs.append(("xp_track", self.rewards.xp.track))
        if self.min_level is not None:
            refs.append(("level", self.min_level.track))
        refs += [("challenge", key) for key in self.required_challenges]
        if self.gating is not None:
            refs += self.gating.references()
        for objective in self.objectives:
            refs += references(objective.filter)
        return refs


# Routes ---------------------------------------------------------------------------------------

Status = Literal["locked", "in_progress", "ready_to_claim", "pending_approval", "completed", "cooling_down"]


class ObjectiveProgress(BaseModel):
    type: ObjectiveType
    event_type: str
    label: str
    current: int | float | str | bool | None
    target: int | float | str | bool
    met: bool
    window_seconds: int | None = None


class ChallengeView(BaseModel):
    key: str
    name: str
    description: str
    category: str
    difficulty: str
    recurrence: Recurrence
    completion_mode: CompletionMode
    repeatable: bool
    rewards: Rewards
    status: Status
    locked_reasons: list[str] = Field(default_factory=list)
    period: str
    objectives: list[ObjectiveProgress]
    progress_percent: int
    completed_at: datetime | None = None
    times_completed: int
    available_again_at: datetime | None = Field(default=None, description="a repeatable challenge's cooldown end")
    expires_at: datetime | None = Field(default=None,
                                        description="the next reset in the player's time zone, or the end")
    claim_id: str | None = None
    icon_url: str | None = None


class AvailableChallenges(BaseModel):
    player_id: str
    timezone: str
    as_of: datetime
    daily: list[ChallengeView]
    weekly: list[ChallengeView]
    monthly: list[ChallengeView]
    special: list[ChallengeView]


class CompletionOut(BaseModel):
    id: int
    challenge: str
    name: str | None
    category: str
    period: str
    source: str
    rewards: dict[str, Any]
    claim_id: str | None
    completed_at: datetime


class ClaimIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    verification: JsonObject = Field(default_factory=dict, description="evidence for the reviewer (≤ 8 KB as JSON)")
    note: str = Field(default="", max_length=1000)


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=500)


ClaimStatus = Literal["pending", "approved", "rejected"]


class ClaimOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    player_id: str
    challenge: str
    period: str
    status: ClaimStatus
    verification: dict[str, Any]
    note: str
    progress: list[dict[str, Any]]
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    reason: str | None
    rewards: dict[str, Any] | None = None


class ForceCompleteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=3, max_length=500, description="why support completed it by hand")
