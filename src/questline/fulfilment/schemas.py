"""Reward specs that leave the ledger (webhook, in-game, token), fulfilment records and targets."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Kind = Literal["external", "webhook", "in_game", "token"]
TargetKind = Literal["webhook", "in_game"]
Status = Literal["pending", "processing", "completed", "failed", "cancelled"]
KINDS: tuple[str, ...] = ("external", "webhook", "in_game", "token")
ADDRESS_PATTERN = r"^0x[0-9a-fA-F]{40}$"
TRAIT_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
MAX_UINT256 = 2**256 - 1


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class InGameReward(Strict):
    """An item the game server grants: a signed call to the app's ``in_game`` callback."""

    item: str = Field(min_length=1, max_length=128)
    quantity: int = Field(default=1, ge=1, le=1_000_000)


class TokenReward(Strict):
    """A transfer of the chain's native coin (no ``contract``) or of an ERC-20 token."""

    amount: str = Field(pattern=r"^[0-9]{1,78}$", description="in the token's smallest unit (wei), as a string")
    contract: str | None = Field(default=None, pattern=ADDRESS_PATTERN, description="the ERC-20 contract; "
                                                                                   "none: the native coin")
    address_trait: str = Field(default="wallet_address", pattern=TRAIT_PATTERN,
                               description="the player trait (set by the server key) that holds their address")

    @field_validator("amount")
    @classmethod
    def _positive(cls, value: str) -> str:
        if not 0 < int(value) <= MAX_UINT256:
            raise ValueError("amount must be above 0 and fit in 256 bits")
        return str(int(value))


DELIVERED = ("webhook", "in_game", "token")


def deliveries(reward: Any) -> list[tuple[str, dict[str, Any]]]:
    """(kind, spec) of each reward a definition's reward gives outside the ledger (its ``webhook``,
    ``in_game`` and ``token`` fields): each becomes one fulfilment record when the reward is given."""
    out: list[tuple[str, dict[str, Any]]] = []
    for kind in DELIVERED:
        value = getattr(reward, kind, None)
        if isinstance(value, BaseModel):
            out.append((kind, value.model_dump(mode="json")))
        elif isinstance(value, dict):
            out.append((kind, dict(value)))
    return out


class FulfilmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    player_id: str
    kind: str
    source: str
    source_ref: str
    spec: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    result: dict[str, Any] | None
    reference: str | None
    tx_hash: str | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None


class FulfilIn(Strict):
    reference: str = Field(min_length=1, max_length=200, description="your reference for the delivery "
                                                                     "(a tracking number, an order id)")


class TargetIn(Strict):
    url: str = Field(min_length=8, max_length=2000, description="http(s) URL that receives the signed call")
    description: str | None = Field(default=None, max_length=500)
    rotate_secret: bool = Field(default=False, description="make a new signing secret (shown once)")


class TargetOut(BaseModel):
    kind: str
    url: str
    description: str | None
    secret: str | None = Field(default=None, description="the signing secret: shown only when made")
    created_at: datetime
    updated_at: datetime

