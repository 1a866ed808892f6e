"""Chat shapes: rooms, messages, restrictions, reports and settings."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from questline.players.schemas import PLAYER_ID_PATTERN

# A room names what it belongs to; its live channel is ``chat:{room}``.
ROOM_PATTERN = r"^(community|competition):[A-Za-z0-9_-]{1,40}$"
BODY_LIMIT = 4000  # the hard ceiling; each app sets its own max_length at or below it
RestrictionKind = Literal["mute", "ban"]
Action = Literal["dismiss", "delete", "mute", "ban"]
ReportStatus = Literal["open", "resolved"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class MessageIn(Strict):
    body: str = Field(min_length=1, max_length=BODY_LIMIT)
    player_id: str | None = Field(default=None, pattern=PLAYER_ID_PATTERN,
                                  description="the author, when the server key posts on a player's behalf")


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    room: str
    player_id: str
    body: str | None  # None once deleted
    created_at: datetime
    deleted_at: datetime | None


class RestrictionIn(Strict):
    kind: RestrictionKind
    seconds: int | None = Field(default=None, ge=60, le=366 * 86400, description="how long; omit for until lifted")
    reason: str | None = Field(default=None, max_length=500)


class RestrictionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    room: str
    player_id: str
    kind: RestrictionKind
    until: datetime | None
    reason: str | None
    created_at: datetime


class ReportIn(Strict):
    reason: str = Field(min_length=1, max_length=500)
    player_id: str | None = Field(default=None, pattern=PLAYER_ID_PATTERN,
                                  description="the reporting player, when the server key reports for one")


class ReportOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    room: str
    message_id: str
    player_id: str
    author_id: str
    reason: str
    status: ReportStatus
    action: Action | None
    resolved_at: datetime | None
    created_at: datetime


class ResolveIn(Strict):
    action: Action
    seconds: int | None = Field(default=None, ge=60, le=366 * 86400,
                                description="for mute and ban: how long; omit for until lifted")
    note: str | None = Field(default=None, max_length=500)


class SettingsIn(Strict):
    blocked_words: list[str] = Field(default_factory=list, max_length=1000,
                                     description="messages containing one of these words are refused")
    max_length: int = Field(default=1000, ge=1, le=BODY_LIMIT)
    rate_count: int = Field(default=10, ge=1, le=1000, description="messages a player may post per window")
    rate_seconds: int = Field(default=60, ge=1, le=86400)

    @field_validator("blocked_words")
    @classmethod
    def _words(cls, value: list[str]) -> list[str]:
        words = []
        for given in value:
            word = given.strip().lower()
            if not word or len(word) > 64:
                raise ValueError("each blocked word is 1 to 64 characters")
            words.append(word)
        return sorted(set(words))


class SettingsOut(SettingsIn):
    updated_at: datetime | None
