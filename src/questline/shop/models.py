"""Shop tables: what players own, every change to it, orders, and stock/limit counters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from questline.kit.db import Base, BigInt, JSONType, UTCDateTime


class InventoryItem(Base):
    """How many of an item a player holds."""

    __tablename__ = "inventory_items"
    __table_args__ = (sa.CheckConstraint("quantity >= 0", name="non_negative"),)

    app_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    player_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    item: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    quantity: Mapped[int] = mapped_column(sa.BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class InventoryGrant(Base):
    """Every change to an inventory, under a key unique per app: a grant happens once."""

    __tablename__ = "inventory_grants"
    __table_args__ = (
        sa.UniqueConstraint("app_id", "key"),
        sa.Index("ix_inventory_grants_player", "app_id", "player_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    app_id: Mapped[str] = mapped_column(sa.String(40))
    player_id: Mapped[str] = mapped_column(sa.String(128))
    item: Mapped[str] = mapped_column(sa.String(64))
    quantity: Mapped[int] = mapped_column(sa.BigInteger)  # negative when consumed
    source: Mapped[str] = mapped_column(sa.String(64))
    key: Mapped[str] = mapped_column(sa.String(255))
    reference: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ShopOrder(Base):
    """A purchase: pending while its points are held, then completed, cancelled or expired."""

    __tablename__ = "shop_orders"
    __table_args__ = (
        sa.Index("ix_shop_orders_player", "app_id", "player_id", "id"),
        sa.Index("ix_shop_orders_pending", "status", "expires_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    app_id: Mapped[str] = mapped_column(sa.String(40))
    player_id: Mapped[str] = mapped_column(sa.String(128))
    item: Mapped[str] = mapped_column(sa.String(64))
    quantity: Mapped[int] = mapped_column(sa.Integer)
    currency: Mapped[str] = mapped_column(sa.String(32))
    unit_price: Mapped[int] = mapped_column(sa.BigInteger)
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    status: Mapped[str] = mapped_column(sa.String(16))  # pending | completed | cancelled | expired
    external: Mapped[bool] = mapped_column(sa.Boolean)
    hold_id: Mapped[str | None] = mapped_column(sa.String(40))
    reason: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ShopCounter(Base):
    """Units of an item reserved by orders not cancelled: per player, and ``player_id=""`` for all."""

    __tablename__ = "shop_counters"
    __table_args__ = (sa.CheckConstraint("count >= 0", name="non_negative"),)

    app_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    item: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    player_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    count: Mapped[int] = mapped_column(sa.BigInteger)
