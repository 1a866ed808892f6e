"""Announcement shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

TargetKind = Literal["app", "community", "competition"]
Status = Literal["scheduled", "sent", "withdrawn"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Target(Strict):
    kind: TargetKind
    id: str | None = Field(default=None, min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$",
                           description="the community's id or slug, or the competition's id; none for the app")

    @model_validator(mode="after")
    def _named(self) -> Target:
        if (self.kind == "app") != (self.id is None):
            raise ValueError("an app-wide announcement names no id; a community or competition one names its id")
        return self


class AnnouncementIn(Strict):
    target: Target
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=4000)
    send_at: AwareDatetime | None = Field(default=None, description="when to send it (UTC offset required); "
                                          "omitted or past: now")


class AnnouncementUpdate(Strict):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    body: str | None = Field(default=None, min_length=1, max_length=4000)
    send_at: AwareDatetime | None = Field(default=None, description="a scheduled one only")


class AnnouncementOut(BaseModel):
    id: str
    target: Target
    title: str
    body: str
    status: Status
    send_at: datetime
    sent_at: datetime | None
    recipients: int
    version: int
    author: str
    created_at: datetime
    updated_at: datetime
    withdrawn_at: datetime | None
