"""Every query of the shop: inventories, grants, orders and counters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.db import insert_ignore, upsert
from questline.shop.models import InventoryGrant, InventoryItem, ShopCounter, ShopOrder

ALL_PLAYERS = ""


# Inventories ----------------------------------------------------------------------------------


async def insert_grant(session: AsyncSession, row: dict[str, Any]) -> bool:
    """Log an inventory change under its key; False when the key was used before."""
    result = await session.execute(insert_ignore(session, InventoryGrant.__table__).values(**row)
                                   .returning(InventoryGrant.__table__.c.id))
    return result.scalar_one_or_none() is not None


async def add_quantity(session: AsyncSession, app_id: str, player_id: str, item: str, quantity: int,
                       now: datetime) -> None:
    stmt = upsert(session, InventoryItem.__table__).values(app_id=app_id, player_id=player_id, item=item,
                                                           quantity=quantity, updated_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=["app_id", "player_id", "item"],
        set_={"quantity": InventoryItem.__table__.c.quantity + stmt.excluded.quantity, "updated_at": now},
    )
    await session.execute(stmt)


async def take_quantity(session: AsyncSession, app_id: str, player_id: str, item: str, quantity: int,
                        now: datetime) -> int | None:
    """Remove units if the player holds enough; returns what is left, or None when short."""
    result = await session.execute(
        sa.update(InventoryItem)
        .where(InventoryItem.app_id == app_id, InventoryItem.player_id == player_id, InventoryItem.item == item,
               InventoryItem.quantity >= quantity)
        .values(quantity=InventoryItem.quantity - quantity, updated_at=now)
        .returning(InventoryItem.quantity)
    )
    left = result.scalar_one_or_none()
    return None if left is None else int(left)


async def inventory_of(session: AsyncSession, app_id: str, player_id: str) -> Sequence[InventoryItem]:
    return (await session.execute(
        sa.select(InventoryItem)
        .where(InventoryItem.app_id == app_id, InventoryItem.player_id == player_id, InventoryItem.quantity > 0)
        .order_by(InventoryItem.item)
    )).scalars().all()


async def quantity_of(session: AsyncSession, app_id: str, player_id: str, item: str) -> int:
    found = (await session.execute(
        sa.select(InventoryItem.quantity)
        .where(InventoryItem.app_id == app_id, InventoryItem.player_id == player_id, InventoryItem.item == item)
    )).scalar_one_or_none()
    return int(found or 0)


# Counters -------------------------------------------------------------------------------------


async def reserve(session: AsyncSession, app_id: str, item: str, player_id: str, quantity: int,
                  limit: int) -> bool:
    """Count ``quantity`` more units against ``limit``, atomically; False when it would pass it."""
    await session.execute(insert_ignore(session, ShopCounter.__table__).values(
        app_id=app_id, item=item, player_id=player_id, count=0))
    result = await session.execute(
        sa.update(ShopCounter)
        .where(ShopCounter.app_id == app_id, ShopCounter.item == item, ShopCounter.player_id == player_id,
               ShopCounter.count + quantity <= limit)
        .values(count=ShopCounter.count + quantity)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def unreserve(session: AsyncSession, app_id: str, item: str, player_id: str, quantity: int) -> None:
    await session.execute(
        sa.update(ShopCounter)
        .where(ShopCounter.app_id == app_id, ShopCounter.item == item, ShopCounter.player_id == player_id,
               ShopCounter.count >= quantity)
        .values(count=ShopCounter.count - quantity)
    )


async def counts_of(session: AsyncSession, app_id: str, player_id: str) -> dict[str, int]:
    rows = await session.execute(
        sa.select(ShopCounter.item, ShopCounter.count)
        .where(ShopCounter.app_id == app_id, ShopCounter.player_id == player_id)
    )
    return {item: int(count) for item, count in rows.all()}


# Orders ---------------------------------------------------------------------------------------


async def add_order(session: AsyncSession, order: ShopOrder) -> None:
    session.add(order)
    await session.flush()


async def get_order(session: AsyncSession, app_id: str, order_id: str) -> ShopOrder | None:
    return (await session.execute(
        sa.select(ShopOrder).where(ShopOrder.app_id == app_id, ShopOrder.id == order_id)
    )).scalar_one_or_none()


async def settle_order(session: AsyncSession, app_id: str, order_id: str, status: str, reason: str | None,
                       now: datetime) -> bool:
    """Move a pending order to its final status; False when it was no longer pending."""
    result = await session.execute(
        sa.update(ShopOrder)
        .where(ShopOrder.app_id == app_id, ShopOrder.id == order_id, ShopOrder.status == "pending")
        .values(status=status, reason=reason, updated_at=now, settled_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def orders_of(session: AsyncSession, app_id: str, player_id: str, before: str | None,
                    limit: int) -> Sequence[ShopOrder]:
    stmt = (sa.select(ShopOrder).where(ShopOrder.app_id == app_id, ShopOrder.player_id == player_id)
            .order_by(ShopOrder.id.desc()).limit(limit + 1))
    if before is not None:
        stmt = stmt.where(ShopOrder.id < before)
    return (await session.execute(stmt)).scalars().all()


async def expired_orders(session: AsyncSession, now: datetime, limit: int) -> Sequence[tuple[str, str]]:
    rows = await session.execute(
        sa.select(ShopOrder.app_id, ShopOrder.id)
        .where(ShopOrder.status == "pending", ShopOrder.expires_at <= now)
        .order_by(ShopOrder.expires_at).limit(limit)
    )
    return [(app_id, order_id) for app_id, order_id in rows.all()]
