from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from questline.kit.schemas import PatchBody

EVENT_TYPE_PATTERN = r"^[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*)?$"
EventType = Annotated[str, Field(max_length=100, pattern=EVENT_TYPE_PATTERN)]
DeliveryStatus = Literal["pending", "delivered", "dead"]


def _url(value: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("the url must be an http:// or https:// address with a host")
    if parts.username or parts.password:
        raise ValueError("the url must not carry credentials")
    return value


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2000, description="where to POST: http(s)://host[:port]/path")
    description: str = Field(default="", max_length=500)
    event_types: list[EventType] = Field(default_factory=list, max_length=100,
                                         description="types to send (``level.*`` for a prefix); empty: all")

    _check_url = field_validator("url")(_url)


class EndpointUpdate(PatchBody):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, max_length=2000)
    description: str | None = Field(default=None, max_length=500)
    event_types: list[EventType] | None = Field(default=None, max_length=100)
    enabled: bool | None = Field(default=None, description="false disables; true re-enables a disabled endpoint")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        return None if value is None else _url(value)


class EndpointOut(BaseModel):
    id: str
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    disabled_at: datetime | None
    disabled_reason: str | None
    failing_since: datetime | None
    previous_secret_until: datetime | None
    created_at: datetime
    updated_at: datetime


class EndpointCreated(EndpointOut):
    secret: str = Field(description="the signing secret (whsec_…); shown only now")


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_seconds: int = Field(default=86_400, ge=0, le=7 * 86_400,
                                 description="how long messages are also signed with the old secret")


class SecretRotated(BaseModel):
    secret: str = Field(description="the new signing secret; shown only now")
    previous_secret_until: datetime | None


class AttemptOut(BaseModel):
    attempted_at: datetime
    status_code: int | None
    duration_ms: int
    response_excerpt: str | None
    error: str | None
    trigger: str


class DeliveryOut(BaseModel):
    id: str
    endpoint_id: str
    message_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryDetail(DeliveryOut):
    body: str
    log: list[AttemptOut]


class Requeued(BaseModel):
    requeued: int
