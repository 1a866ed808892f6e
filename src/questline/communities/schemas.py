"""Community shapes and member metadata schemas."""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator, model_validator

from questline.fulfilment.schemas import InGameReward, TokenReward
from questline.kit.jsonvalue import JsonObject
from questline.kit.schemas import Clearable, PatchBody
from questline.players.schemas import PLAYER_ID_PATTERN

SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{1,38})[a-z0-9]$"
FIELD_NAME = r"^[a-z][a-z0-9_]{0,31}$"
MemberStatus = Literal["invited", "pending", "active", "left", "banned"]
MemberType = Literal["wallet", "email", "username", "discord", "custom"]
MAX_METADATA_VALUE = 500
MEMBER_CODE_PATTERN = r"^[0-9A-HJKMNP-TV-Z]{8}$"
CLICK_ID_MAX = 200
StarterKind = Literal["points", "item", "token", "nft", "in_game", "webhook"]
ClickStatus = Literal["attributed", "invalid", "expired", "other_community", "used"]


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


# Starter rewards -------------------------------------------------------------------------------


class NftReward(Strict):
    """An NFT-style item: the app's ``webhook`` fulfilment target mints or transfers it and answers 2xx."""

    collection: str = Field(min_length=1, max_length=128, description="the collection (a contract address, a name)")
    metadata: JsonObject | None = Field(default=None, description="what the receiver needs to mint it")


_STARTER_FORMS = ("currency", "item", "token", "nft", "in_game", "webhook")


class StarterReward(Strict):
    """What a player gets, once ever, on first becoming an active member: exactly one of points
    (``currency`` and ``amount``, through the ledger), an ``item`` into the inventory, or a reward
    delivered by reward fulfilment (``token``, ``nft``, ``in_game``, ``webhook``)."""

    currency: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]{0,31}$")
    amount: int | None = Field(default=None, ge=1, le=1_000_000_000, description="points: minor units")
    item: str | None = Field(default=None, min_length=1, max_length=128, description="an item of the catalog")
    quantity: int = Field(default=1, ge=1, le=1_000_000, description="of the item")
    token: TokenReward | None = Field(default=None, description="a native coin or ERC-20 transfer")
    nft: NftReward | None = None
    in_game: InGameReward | None = Field(default=None, description="a signed call to the in_game target")
    webhook: JsonObject | None = Field(default=None, description="a signed call to the webhook target")

    @model_validator(mode="after")
    def _one_form(self) -> StarterReward:
        given = [n for n in _STARTER_FORMS if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("a starter reward has exactly one of: currency (with amount), item, token, nft, "
                             "in_game, webhook")
        if (self.currency is None) != (self.amount is None):
            raise ValueError("a points reward gives both currency and amount")
        return self

    @property
    def kind(self) -> StarterKind:
        found = next(n for n in _STARTER_FORMS if getattr(self, n) is not None)
        return "points" if found == "currency" else found  # type: ignore[return-value]


def starter_out(reward: dict[str, Any] | None) -> dict[str, Any] | None:
    """The stored starter reward with its ``kind`` (rewards saved before kinds existed are points)."""
    if reward is None:
        return None
    parsed = StarterReward.model_validate(reward)
    return {"kind": parsed.kind, **parsed.model_dump(exclude_none=True, exclude_defaults=True)}


# Communities ----------------------------------------------------------------------------------


def _https_only(value: AnyHttpUrl | None) -> AnyHttpUrl | None:
    """A link redirects only to its community's own URL: https, no credentials in it."""
    if value is None:
        return None
    if value.scheme != "https":
        raise ValueError("redirect_url must be an https URL")
    if value.username or value.password:
        raise ValueError("redirect_url must not carry credentials")
    if len(str(value)) > 500:
        raise ValueError("redirect_url is limited to 500 characters")
    return value


class CommunityIn(Strict):
    name: str = Field(min_length=1, max_length=100)
    slug: str = Field(pattern=SLUG_PATTERN, description="unique in the app; the referral link uses it")
    description: str = Field(default="", max_length=1000)
    redirect_url: AnyHttpUrl | None = Field(default=None, description="where the community's link leads: an https "
                                            "URL of your own, the only place its link ever redirects to")
    open: bool = Field(default=True, description="false: invite-only")
    auto_approve: bool = Field(default=True, description="false: joins wait in an approval queue")
    max_members: int | None = Field(default=None, ge=1, le=10_000_000)
    member_schema: MemberSchema = Field(default_factory=MemberSchema)
    starter_reward: StarterReward | None = Field(default=None, description="given once ever, when a player first "
                                                "becomes an active member; set only by the server key or an app "
                                                "admin (points: at most the app's community_starter_reward_max)")
    admins: list[str] = Field(default_factory=list, max_length=20,
                              description="players who administer it; when a player creates the community, these "
                              "are invited and offered the admin role, which they accept")

    _redirect = field_validator("redirect_url")(_https_only)

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
    starter_reward: Clearable[StarterReward] = None

    _redirect = field_validator("redirect_url")(_https_only)


class CommunityOut(BaseModel):
    id: str
    slug: str
    name: str
    description: str
    redirect_url: str | None
    link: str | None = Field(description="the community's referral link, /c/{app_id}/{slug} on the engine's public "
                                         "origin: it redirects to redirect_url with a signed click id")
    open: bool
    auto_approve: bool
    max_members: int | None
    member_count: int
    member_schema: MemberSchema
    starter_reward: dict[str, Any] | None = Field(description="the starter reward with its kind: points, item, "
                                                  "token, nft, in_game or webhook")
    created_at: datetime


class JoinIn(Strict):
    player_id: str | None = Field(default=None, pattern=PLAYER_ID_PATTERN,
                                  description="server key: the joining player; a player token joins itself")
    metadata: dict[str, str] = Field(default_factory=dict, max_length=20)
    referred_by: str | None = Field(default=None, pattern=PLAYER_ID_PATTERN,
                                    description="the member who brought them, as the player says (not verified; "
                                                "a click_id is, and wins)")
    click_id: str | None = Field(default=None, min_length=10, max_length=CLICK_ID_MAX,
                                 description="the ql_click parameter the community's link added: attributes the "
                                             "join to the member whose link it was, and feeds the referral program")
    ip: str | None = Field(default=None, max_length=45, description="server key only: the joining player's IP, for "
                                                                    "the referral program's fraud rules")
    device_fingerprint: str | None = Field(default=None, min_length=1, max_length=255,
                                           description="server key only: the joining player's device")
    email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
                              description="server key only: the joining player's e-mail (compared hashed)")

    @field_validator("ip")
    @classmethod
    def _valid_ip(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(ipaddress.ip_address(value))
        except ValueError as exc:
            raise ValueError("not an IP address") from exc


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
    member_code: str | None = Field(description="the member's own short code in their link")
    referral_link: str | None = Field(description="the member's own link, /c/{app_id}/{slug}/{member_code}")
    starter_transaction_id: str | None
    starter_reference: str | None = Field(description="what the starter reward became: a ledger transaction "
                                                      "(txn_…), a fulfilment record (ful_…) or 'inventory'")
    admin_invited_by: str | None = Field(description="the community admin who offered this member the admin role; "
                                         "it waits for the member to accept or decline")
    note: str | None
    joined_at: datetime | None
    updated_at: datetime
    click: ClickStatus | None = Field(default=None, description="on a join that gave a click_id: attributed, or "
                                      "why it attributed nothing (invalid, expired, other_community, used)")


class SlugAvailability(BaseModel):
    slug: str
    available: bool
