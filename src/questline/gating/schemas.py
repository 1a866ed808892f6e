"""The gating requirement every mechanic embeds as ``gating``, and the check integrators call."""

from __future__ import annotations

import re
from functools import cached_property

from pydantic import BaseModel, ConfigDict, Field, field_validator

from questline.players.schemas import PLAYER_ID_PATTERN, FieldName, Scalar


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def completed_metric(challenge: str) -> str:
    """The metric that counts a player's completions of a challenge (``challenge.<key>.completed``)."""
    return f"challenge.{challenge}.completed"


class MinLevel(Strict):
    track: str = Field(min_length=1, max_length=64, description="an XP track's key")
    level: int = Field(ge=1, le=1000)


class Requirement(Strict):
    """Who may take part. Every part given must hold (an empty requirement lets everyone in):

    - ``communities``: an active member of at least one of these communities (ids or slugs);
    - ``whitelist``: one of these players;
    - ``min_level``: at least this level on an XP track;
    - ``completed_challenges``: has completed each of these challenges at least once;
    - ``traits``: has each of these traits with this value. Traits are set only by the server key
      or an app admin; what a player writes about themself (profile, preferences) opens nothing.
    """

    communities: list[str] = Field(default_factory=list, max_length=50)
    whitelist: list[str] = Field(default_factory=list, max_length=10_000)
    min_level: MinLevel | None = None
    completed_challenges: list[str] = Field(default_factory=list, max_length=50)
    traits: dict[FieldName, Scalar] = Field(default_factory=dict, max_length=20,
                                            description="traits the player must have, e.g. {\"tier\": \"vip\"}")

    @field_validator("whitelist")
    @classmethod
    def _player_ids(cls, value: list[str]) -> list[str]:
        bad = [p for p in value if not re.match(PLAYER_ID_PATTERN, p)]
        if bad:
            raise ValueError(f"not player ids: {bad[:3]}")
        return value

    @cached_property
    def whitelisted(self) -> frozenset[str]:
        return frozenset(self.whitelist)

    def references(self) -> list[tuple[str, str]]:
        refs = [("challenge", key) for key in self.completed_challenges]
        if self.min_level is not None:
            refs.append(("xp_track", self.min_level.track))
        return refs


class GatingCheckIn(Strict):
    player_id: str = Field(pattern=PLAYER_ID_PATTERN)
    requirement: Requirement


class GatingCheckOut(BaseModel):
    player_id: str
    allowed: bool
    unmet: list[str]


