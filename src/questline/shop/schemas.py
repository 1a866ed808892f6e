"""Item definitions, prices, inventories and orders."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from questline.gating.schemas import Requirement
from questline.ledger.schemas import CURRENCY_PATTERN
from questline.rules.schemas import DEFINITION_KEY, DefinitionBody

ITEM_KEY = DEFINITION_KEY
MAX_QUANTITY = 1_000_000
OrderStatus = Literal["pending", "completed", "cancelled", "expired"]


class Price(BaseModel):
    """An amount of one of the app's currencies, in minor units."""

    model_config = ConfigDict(extra="forbid")

    currency: str = Field(pattern=CURRENCY_PATTERN, description="e.g. points")
    amount: int = Field(strict=True, ge=1, le=1_000_000_000)


class ItemDef(DefinitionBody):
    """An item of the app's catalog: sold in the shop when it has a price, granted by rewards always."""

    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=1000)
    category: str | None = Field(default=None, max_length=64)
    price: Price | None = Field(default=None, description="absent: not for sale (only granted as a reward)")
    stock: int | None = Field(default=None, ge=1, le=1_000_000_000,
                              description="units the shop may sell in total, across players")
    max_per_player: int | None = Field(default=None, ge=1, le=MAX_QUANTITY,
                                       description="units one player may buy (rewards do not count)")
    external: bool = Field(default=False, description="fulfilled by an external shop, which confirms or cancels")
    hold_seconds: int = Field(default=900, ge=30, le=3600,
                              description="how long an external order's points stay held before it expires")
    gating: Requirement | None = Field(default=None, description="who may buy it (403 gated otherwise)")

    def references(self) -> list[tuple[str, str]]:
        return self.gating.references() if self.gating else []


class ItemGrant(BaseModel):
    """Units of an item given to a player (e.g. a battle pass reward)."""

    model_config = ConfigDict(extra="forbid")

    item: str = Field(pattern=ITEM_KEY)
    quantity: int = Field(default=1, ge=1, le=MAX_QUANTITY)


class InventoryEntry(BaseModel):
    item: str
    name: str | None
    quantity: int
    updated_at: datetime


class InventoryOut(BaseModel):
    player_id: str
    items: list[InventoryEntry]


class ConsumeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quantity: int = Field(default=1, strict=True, ge=1, le=MAX_QUANTITY)
    reason: str = Field(default="", max_length=200)


class CatalogItem(BaseModel):
    key: str
    name: str
    description: str
    category: str | None
    price: Price | None
    stock: int | None
    remaining: int | None
    max_per_player: int | None
    external: bool


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item: str = Field(pattern=ITEM_KEY)
    quantity: int = Field(default=1, strict=True, ge=1, le=1000)


class OrderCancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="cancelled by the shop", min_length=1, max_length=200)


class OrderOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    player_id: str
    item: str
    quantity: int
    currency: str
    unit_price: int
    amount: int
    status: OrderStatus
    external: bool
    hold_id: str | None
    reason: str | None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    settled_at: datetime | None
    balance: int | None = Field(default=None, description="the player's balance in the order's currency afterwards")
