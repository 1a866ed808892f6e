"""Inbox entries, preferences and templates as the API shows and takes them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Channel = Literal["in_app", "email", "discord", "telegram"]
CHANNELS: tuple[str, ...] = ("in_app", "email", "discord", "telegram")
OUTSIDE: tuple[str, ...] = ("email", "discord", "telegram")
InboxStatus = Literal["unread", "read", "archived"]
TYPE_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
LOCALE_PATTERN = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$"
CLOCK_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
# Traits (set by the server key or an admin) that hold a player's address on each outside channel.
ADDRESS_TRAITS = {"email": "email", "discord": "discord_channel_id", "telegram": "telegram_chat_id"}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    type: str
    title: str
    body: str
    data: dict[str, Any]
    status: str
    created_at: datetime
    read_at: datetime | None
    archived_at: datetime | None


class UnreadCount(BaseModel):
    unread: int


class Marked(BaseModel):
    changed: int = Field(description="entries whose status changed (0 when repeated)")


class QuietHours(Strict):
    start: str = Field(pattern=CLOCK_PATTERN, description="local time, HH:MM")
    end: str = Field(pattern=CLOCK_PATTERN, description="local time, HH:MM (before start: over midnight)")

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("quiet hours need a start and an end that differ")
        return self


ChannelSwitches = dict[Channel, bool]


class PreferencesIn(Strict):
    """What to receive where. Types not named follow ``defaults``; in-app is on unless turned off."""

    defaults: ChannelSwitches = Field(default_factory=dict, description="per channel, for every type")
    types: dict[str, ChannelSwitches] = Field(default_factory=dict, max_length=64,
                                              description="per notification type, per channel")
    quiet_hours: QuietHours | None = Field(default=None, description="outside channels wait until they end")
    digest: Literal["off", "daily"] = Field(default="off", description="daily: outside channels get one message "
                                                                        "a day, at digest_hour local time")
    digest_hour: int = Field(default=18, ge=0, le=23)
    locale: str = Field(default="en", pattern=LOCALE_PATTERN)

    @field_validator("types")
    @classmethod
    def _known(cls, value: dict[str, ChannelSwitches]) -> dict[str, ChannelSwitches]:
        from questline.notifications.catalog import TYPES

        unknown = sorted(set(value) - set(TYPES))
        if unknown:
            raise ValueError(f"unknown notification types: {', '.join(unknown)}; known: {', '.join(TYPES)}")
        return value


class PreferencesOut(PreferencesIn):
    player_id: str
    updated_at: datetime | None


class TemplateIn(Strict):
    subject: str = Field(min_length=1, max_length=300, description="Jinja2, rendered with the message's fields")
    text: str = Field(min_length=1, max_length=10_000, description="Jinja2: the plain-text body (always sent)")
    html: str | None = Field(default=None, max_length=50_000, description="Jinja2 (autoescaped): the e-mail's "
                                                                          "HTML part; none: plain text only")


class TemplateOut(TemplateIn):
    type: str
    locale: str
    updated_at: datetime | None
