from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
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


# Names of traits and preferences; trait values are short scalars (a tier, a gym, a bracket).
FIELD_NAME = r"^[A-Za-z0-9_.-]{1,64}$"
Scalar = Annotated[str, Field(max_length=200)] | Annotated[int, Field(ge=-(2**53), le=2**53)] | bool
FieldName = Annotated[str, Field(pattern=FIELD_NAME)]


class ProfileUpdate(PatchBody):
    """What a player may write about themself (with their own token): how they are shown, their
    time zone and privacy, their preferences. Nothing here opens a gate or pays anything.
    Fields left out keep their value; null clears only the ``Clearable`` ones."""

    display_name: Clearable[str] = Field(default=None, max_length=200)
    username: Clearable[str] = Field(default=None, max_length=200)
    real_name: Clearable[str] = Field(default=None, max_length=200)
    avatar_url: Clearable[str] = Field(default=None, max_length=2000, pattern=r"^https?://[^\s]+$",
                                       description="an http(s) URL of the player's picture")
    timezone: str | None = Field(default=None, max_length=64)
    leaderboard_visibility: Visibility | None = None
    display_name_type: DisplayNameType | None = None
    show_on_global_leaderboard: bool | None = None
    preferences: dict[FieldName, Scalar] | None = Field(
        default=None, max_length=50, description="the player's own settings (language, sound…); replaces the "
                                                 "stored set; read by no rule")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else check_timezone(value)


class AccountUpdate(ProfileUpdate):
    """The profile, plus traits: facts only the server key or an app admin may set."""

    traits: dict[FieldName, Scalar] | None = Field(
        default=None, max_length=50,
        description="facts about the player that gates, requirements and partitioned boards read (tier, gym, "
                    "age bracket); replaces the stored set; server key or app admin only (a player token: 403 "
                    "traits_not_writable)")


class PlayerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    player_id: str
    display_name: str | None
    username: str | None
    real_name: str | None
    avatar_url: str | None
    timezone: str
    leaderboard_visibility: Visibility
    display_name_type: DisplayNameType
    show_on_global_leaderboard: bool
    preferences: dict[str, Any]
    traits: dict[str, Any]
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


class PlayerExport(BaseModel):
    """Everything the engine holds about one player: per area, per table, the rows."""

    player_id: str
    exported_at: datetime
    areas: dict[str, dict[str, list[dict[str, Any]]]] = Field(
        description="area -> table -> rows (a table named table.column when the player is in another column)")


class PlayerErasure(BaseModel):
    player_id: str
    erased: bool = Field(description="false when there was no such player (already erased, or never seen)")
    anonymous_id: str | None = Field(description="the anonymous holder the player's ledger history now belongs to")
    rows: dict[str, int] = Field(description="rows deleted or anonymized, per table")
