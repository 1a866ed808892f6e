"""Community shapes and member metadata schemas."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator, model_validator

from questline.kit.schemas import Clearable, PatchBody
from questline.players.schemas import PLAYER_ID_PATTERN
from questline.progression.schemas import Reward

SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{1,38})[a-z0-9]$"
FIELD_NAME = r"^[a-z][a-z0-9_]{0,31}$"
MemberStatus = Literal["invited", "pending", "active", "left", "banned"]
MemberType = Literal["wallet", "email", "username", "discord", "custom"]
MAX_METADATA_VALUE = 500


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# Member metadata ------------------------------------------------------------------------------


class MetadataField(Strict):
    name: str = Field(pattern=FIELD_NAME)
    required: bool = True
    pattern: str | None = Field(default=None, max_length=200, description="a regular expression the value matches")
    min_length: int = Field(default=1, ge=0, le=MAX_METADATA_VALUE)
    max_length: int = Field(default=200, ge=1, le=MAX_METADATA_VALUE)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"pattern does not compile: {exc}") from exc
        return value


# The field each built-in type asks for, with its validation.
BUILT_IN_FIELDS: dict[str, MetadataField] = {
    "wallet": MetadataField(name="address", pattern=r"0x[0-9a-fA-F]{40}|[1-9A-HJ-NP-Za-km-z]{32,44}", max_length=44),
    "email": MetadataField(name="email", pattern=r"[^@\s]+@[^@\s]+\.[^@\s]+", max_length=320),
    "username": MetadataField(name="username", pattern=r"[A-Za-z0-9_.-]{3,32}", max_length=32),
    "discord": MetadataField(name="discord", pattern=r"[a-z0-9_.]{2,32}|[^#@:]{2,32}#[0-9]{4}", max_length=37),
}


class MemberSchema(Strict):
    """What a member gives when joining: a wallet address, e-mail, username, Discord name, or custom fields."""

    type: MemberType = "custom"
    fields: list[MetadataField] = Field(default_factory=list, max_length=20, description="extra fields")

    @model_validator(mode="after")
    def _unique(self) -> MemberSchema:
        names = [f.name for f in self.all_fields()]
        if len(set(names)) != len(names):
            raise ValueError("each metadata field may be declared once")
        return self

    def all_fields(self) -> list[MetadataField]:
        built_in = BUILT_IN_FIELDS.get(self.type)
        return ([built_in] if built_in else []) + list(self.fields)


# Communities ----------------------------------------------------------------------------------


class CommunityIn(Strict):
    name: str = Field(min_length=1, max_length=100)
    slug: str = Field(pattern=SLUG_PATTERN, description="unique in the app; the referral link uses it")
    description: str = Field(default="", max_length=1000)
    redirect_url: AnyHttpUrl | None = Field(default=None, description="where the community's link leads")
    open: bool = Field(default=True, description="false: invite-only")
    auto_approve: bool = Field(default=True, description="false: joins wait in an approval queue")
    max_members: int | None = Field(default=None, ge=1, le=10_000_000)
    member_schema: MemberSchema = Field(default_factory=MemberSchema)
    starter_reward: Reward | None = Field(default=None, description="paid through the ledger, once ever, when a "
                                         "player first becomes an active member; set only by the server key or an "
                                         "app admin, at most the app's community_starter_reward_max")
    admins: list[str] = Field(default_factory=list, max_length=20,
                              description="players who administer it; when a player creates the community, these "
                              "are invited and offered the admin role, which they accept")

    @field_validator("admins")
    @classmethod
    def _admin_ids(cls, value: list[str]) -> list[str]:
        if any(not re.match(PLAYER_ID_PATTERN, p) for p in value):
            raise ValueError("admins are player ids")
        return value


class CommunityUpdate(PatchBody):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=1000)
    redirect_url: Clearable[AnyHttpUrl] = None
    open: bool | None = None
    auto_approve: bool | None = None
    max_members: Clearable[int] = Field(default=None, ge=1, le=10_000_000, description="null: no limit")
    member_schema: MemberSchema | None = None
    starter_reward: Clearable[Reward] = None


class CommunityOut(BaseModel):
    id: str
    slug: str
    name: str
    description: str
    link: str | None = Field(description="the community's referral link (redirect_url with ?community=<slug>)")
    open: bool
    auto_approve: bool
    max_members: int | None
    member_count: int
    member_schema: MemberSchema
    starter_reward: Reward | None
    created_at: datetime


class JoinIn(Strict):
    player_id: str | None = Field(default=None, pattern=PLAYER_ID_PATTERN,
                                  description="server key: the joining player; a player token joins itself")
    metadata: dict[str, str] = Field(default_factory=dict, max_length=20)
    referred_by: str | None = Field(default=None, pattern=PLAYER_ID_PATTERN,
                                    description="the member whose link brought them")


class ModerationIn(Strict):
    note: str | None = Field(default=None, max_length=500)


class InviteIn(Strict):
    player_id: str = Field(pattern=PLAYER_ID_PATTERN)


class MemberOut(BaseModel):
    community_id: str
    player_id: str
    status: MemberStatus
    role: Literal["member", "admin"]
    metadata: dict[str, Any]
    referred_by: str | None
    referral_link: str | None
    starter_transaction_id: str | None
    admin_invited_by: str | None = Field(description="the community admin who offered this member the admin role; "
                                         "it waits for the member to accept or decline")
    note: str | None
    joined_at: datetime | None
    updated_at: datetime


class SlugAvailability(BaseModel):
    slug: str
    available: bool
