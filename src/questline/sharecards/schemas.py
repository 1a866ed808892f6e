from __future__ import annotations

from datetime import datetime
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from questline.progression.schemas import MAX_LEVEL

Kind = Literal["achievement", "competition", "streak", "level"]
KINDS: tuple[Kind, ...] = ("achievement", "competition", "streak", "level")


class ShareCardIn(BaseModel):
    """What to make a card of: one thing the player achieved."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind
    subject: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$",
                         description="the achievement's key, the competition's id, the streak's or the XP track's key")
    level: int | None = Field(default=None, ge=1, le=MAX_LEVEL,
                              description="kind level: the level reached (default: the player's current level)")
    milestone: int | None = Field(default=None, ge=1,
                                  description="kind streak: the milestone reached (default: the highest one reached)")

    @model_validator(mode="after")
    def _fields_of_kind(self) -> Self:
        if self.level is not None and self.kind != "level":
            raise ValueError("level is only for kind level")
        if self.milestone is not None and self.kind != "streak":
            raise ValueError("milestone is only for kind streak")
        return self


class ShareCardOut(BaseModel):
    id: str = Field(description="random; the public URLs' only part")
    kind: Kind
    subject: str = Field(description="canonical: the key or id, with ':<level>' or ':<milestone>' for those kinds")
    title: str
    description: str
    url: str = Field(description="the public page (Open Graph and Twitter card tags): the link to share")
    image_url: str = Field(description="the card's 1200×630 PNG")
    created_at: datetime
    updated_at: datetime


class ShareCards(BaseModel):
    player_id: str
    public: bool = Field(description="whether the cards are served to anyone now")
    items: list[ShareCardOut]


class ShareSettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    public: bool = Field(description="serve this player's cards to anyone with the link")


class ShareSettingsOut(BaseModel):
    player_id: str
    public: bool
