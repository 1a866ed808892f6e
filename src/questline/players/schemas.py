from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel, ConfigDict, Field, field_validator

from questline.kit.schemas import Clearable, PatchBody

PLAYER_ID_PATTERN = r"^[A-Za-z0-9_.:@-]{1,128}$"
Visibility = Literal["public", "friends_only", "private"]
DisplayNameType = Literal["real_name", "username", "anonymous"]


def check_timezone(value: str) -> str:
    if value not in available_timezones() and value != "UTC":
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Paris, Pacific/Kiritimati)") from exc
    return value


class PlayerUpdate(PatchBody):
    display_name: Clearable[str] = Field(default=None, max_length=200)
    username: Clearable[str] = Field(default=None, max_length=200)
    real_name: Clearable[str] = Field(default=None, max_length=200)
    timezone: str | None = Field(default=None, max_length=64)
    leaderboard_visibility: Visibility | None = None
    display_name_type: DisplayNameType | None = None
    show_on_global_leaderboard: bool | None = None
    attributes: dict[str, str | int | bool] | None = Field(default=None, max_length=50,
                                                            description="partition attributes, e.g. gym or age bracket")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else check_timezone(value)


class PlayerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    player_id: str
    display_name: str | None
    username: str | None
    real_name: str | None
    timezone: str
    leaderboard_visibility: Visibility
    display_name_type: DisplayNameType
    show_on_global_leaderboard: bool
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ttl_seconds: int | None = Field(default=None, ge=60, le=86_400)


class PlayerToken(BaseModel):
    token: str
    token_type: Literal["Bearer"] = "Bearer"
    player_id: str
    expires_at: datetime
