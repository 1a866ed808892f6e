from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    VIEWER = "viewer"
    # The finance desk (disputes, fees, reviews, reports): reads the app as a viewer does, and only it
    # and the owner reach the desk's routes (``admin_role=Role.FINANCE``); a plain admin does not.
    FINANCE = "finance"
    # Campaign roles (brands and streamers) join here when the campaigns area lands; they
    # grant nothing on app routes.
    BRAND = "brand"
    STREAMER = "streamer"


ROLE_RANK: dict[Role, int] = {Role.VIEWER: 1, Role.ADMIN: 2, Role.OWNER: 3, Role.BRAND: 0, Role.STREAMER: 0,
                              Role.FINANCE: 1}
# Roles beside the ranking: a route needing one of these lets in exactly these roles.
ROLE_GRANTS: dict[Role, frozenset[Role]] = {Role.FINANCE: frozenset({Role.FINANCE, Role.OWNER})}
KeyKind = Literal["server", "client"]
_EVENT_TYPE = r"^[A-Za-z0-9_.:-]{1,100}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class OrgCreate(Strict):
    name: str = Field(min_length=1, max_length=200)


class OrgOut(BaseModel):
    id: str
    name: str
    role: Role | None = None
    created_at: datetime


class AppCreate(Strict):
    name: str = Field(min_length=1, max_length=200)


class AppOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    org_id: str
    name: str
    config_version: int
    client_event_types: list[str]
    community_starter_reward_max: int = Field(description="the largest starter reward a community may pay")
    created_at: datetime


class AppCreated(AppOut):
    server_key: str = Field(description="shown once; store it now")
    client_key: str = Field(description="publishable; safe to ship in a game client")


class AppLimits(Strict):
    community_starter_reward_max: int = Field(ge=0, le=10**12, description="the largest community starter reward "
                                              "(minor units); 0: communities pay none")


class ClientEventTypes(Strict):
    event_types: list[str] = Field(max_length=500)

    @field_validator("event_types")
    @classmethod
    def _valid_names(cls, value: list[str]) -> list[str]:
        import re

        for name in value:
            if not re.match(_EVENT_TYPE, name):
                raise ValueError(f"{name!r} is not a valid event type (letters, digits, _ . : -)")
        return sorted(set(value))


class KeyCreate(Strict):
    kind: KeyKind
    name: str = Field(default="", max_length=200)


class KeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    app_id: str
    kind: KeyKind
    name: str
    last4: str
    created_at: datetime
    revoked_at: datetime | None


class KeyCreated(KeyOut):
    secret: str = Field(description="the full key, shown once")


class AdminCreate(Strict):
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    password: str = Field(min_length=10, max_length=200)
    name: str = Field(default="", max_length=200)


class AdminOut(BaseModel):
    id: str
    email: str
    name: str
    created_at: datetime
    organizations: list[OrgOut] = []


class MemberAdd(Strict):
    email: str = Field(min_length=3, max_length=320)
    role: Role


class Login(Strict):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=200)


class RefreshRequest(Strict):
    refresh_token: str = Field(min_length=10, max_length=200)


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
