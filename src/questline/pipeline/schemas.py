from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from questline.kit.clock import ensure_utc
from questline.kit.jsonvalue import JsonObject
from questline.players.schemas import PLAYER_ID_PATTERN

EVENT_ID = r"^[A-Za-z0-9_.:@-]{1,128}$"
EVENT_TYPE = r"^[A-Za-z0-9_.:-]{1,100}$"
PLAYER_ID = PLAYER_ID_PATTERN
RESERVED_PREFIX = "questline."
MAX_BATCH = 1000


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=EVENT_ID, description="your unique id for the event: duplicates are ignored")
    player_id: str = Field(pattern=PLAYER_ID)
    type: str = Field(pattern=EVENT_TYPE)
    data: JsonObject = Field(default_factory=dict)
    # A timestamp without an offset is UTC, as the log stores it (it would not compare with the
    # engine's aware clock otherwise).
    timestamp: Annotated[datetime, AfterValidator(ensure_utc)] | None = Field(
        default=None, description="when it happened (default: now)")


class Rejected(BaseModel):
    index: int
    id: str | None = Field(default=None, description="the event's id, when it had a valid one")
    code: str
    reason: str


class Effect(BaseModel):
    event_id: str | None
    type: str
    player_id: str | None
    data: dict[str, Any]


class IngestResult(BaseModel):
    accepted: list[str]
    duplicates: list[str]
    rejected: list[Rejected]
    processed: bool | None = Field(default=None, description="with ?wait=true: every effect is committed")
    effects: list[Effect] | None = Field(default=None, description="with ?wait=true: what the events caused")


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    event_id: str
    player_id: str
    type: str
    data: dict[str, Any]
    occurred_at: datetime
    received_at: datetime
    source: str
    pending: int


class Cohort(BaseModel):
    week: str = Field(description="the Monday (UTC) of the week the cohort's players were first seen")
    players: int
    active: list[int] = Field(description="players of the cohort active in its first week, the next, … up to now")
    percent: list[float] = Field(description="the same as a share of the cohort, one decimal")


class Retention(BaseModel):
    """Weekly cohort retention from the event log (UTC weeks, Monday first)."""

    weeks: int
    cohorts: list[Cohort] = Field(description="oldest first")
