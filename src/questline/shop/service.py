"""Inventories and the shop.

Inventory changes go through ``grant_item`` and ``consume_item``; each is logged under a key
unique per app, so a grant made again under the same key (a retried reward, a replayed
request) changes nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.clock import Clock
from questline.kit.errors import Conflict, NotFound, Unprocessable
from questline.ledger import service as ledger
from questline.players import service as players
from questline.rules.schemas import DefinitionBody
from questline.rules.service import RuleSet
from questline.shop import repository as repo
from questline.shop.schemas import CatalogItem, ConsumeIn, InventoryEntry, InventoryOut, ItemDef

__all__ = ["catalog", "check_currency", "consume_item", "grant_item", "inventory_of", "item_of", "use_item"]


async def check_currency(session: AsyncSession, app_id: str, body: DefinitionBody) -> list[str]:
    """An item's price is in one of the app's currencies."""
    assert isinstance(body, ItemDef)
    if body.price is not None and not await ledger.currency_exists(session, app_id, body.price.currency):
        code = body.price.currency
        return [f"price: unknown currency {code!r}; create it with PUT /v1/currencies/{code}"]
    return []


def item_of(ruleset: RuleSet, key: str) -> ItemDef:
    spec = ruleset.of("item").get(key)
    if not isinstance(spec, ItemDef):
        raise NotFound(f"item {key!r} not found", code="item_not_found")
    return spec


async def grant_item(session: AsyncSession, clock: Clock, *, app_id: str, player_id: str, item: str, quantity: int,
                     key: str, source: str, reference: dict[str, Any] | None = None) -> bool:
    """Put ``quantity`` of ``item`` into the player's inventory once per ``key``; False if already done."""
    if quantity < 1:
        raise Unprocessable("a grant needs a positive quantity", code="invalid_quantity")
    now = clock.now()
    await players.ensure_players(session, clock, app_id, [player_id])
    fresh = await repo.insert_grant(session, {
        "app_id": app_id, "player_id": player_id, "item": item, "quantity": quantity, "source": source, "key": key,
        "reference": reference, "created_at": now,
    })
    if fresh:
        await repo.add_quantity(session, app_id, player_id, item, quantity, now)
    return fresh


async def consume_item(session: AsyncSession, clock: Clock, *, app_id: str, player_id: str, item: str,
                       quantity: int, key: str, reason: str) -> int:
    """Take units out of the player's inventory (``409 insufficient_items`` when short); returns what is left."""
    now = clock.now()
    async with session.begin_nested():
        fresh = await repo.insert_grant(session, {
            "app_id": app_id, "player_id": player_id, "item": item, "quantity": -quantity, "source": "consume",
            "key": key, "reference": {"reason": reason} if reason else None, "created_at": now,
        })
        if not fresh:
            return await repo.quantity_of(session, app_id, player_id, item)
        left = await repo.take_quantity(session, app_id, player_id, item, quantity, now)
        if left is None:
            have = await repo.quantity_of(session, app_id, player_id, item)
            raise Conflict(f"the player holds {have} of {item!r}, not {quantity}", code="insufficient_items",
                           extra={"item": item, "required": quantity, "current": have})
    return left


async def use_item(session: AsyncSession, clock: Clock, ruleset: RuleSet, app_id: str, player_id: str, item: str,
                   body: ConsumeIn, *, key: str) -> InventoryOut:
    """Consume units of a known item and return the inventory afterwards."""
    item_of(ruleset, item)
    await players.get_player(session, app_id, player_id)
    await consume_item(session, clock, app_id=app_id, player_id=player_id, item=item, quantity=body.quantity,
                       key=key, reason=body.reason)
    return await inventory_of(session, ruleset, app_id, player_id)


async def inventory_of(session: AsyncSession, ruleset: RuleSet, app_id: str, player_id: str) -> InventoryOut:
    await players.get_player(session, app_id, player_id)
    items = ruleset.of("item")
    entries = []
    for row in await repo.inventory_of(session, app_id, player_id):
        spec = items.get(row.item)
        entries.append(InventoryEntry(item=row.item, name=spec.name if isinstance(spec, ItemDef) else None,
                                      quantity=row.quantity, updated_at=row.updated_at))
    return InventoryOut(player_id=player_id, items=entries)


async def catalog(session: AsyncSession, ruleset: RuleSet, app_id: str) -> list[CatalogItem]:
    """Items for sale (those with a price), with the stock left."""
    sold = await repo.counts_of(session, app_id, repo.ALL_PLAYERS)
    out = []
    for key, spec in sorted(ruleset.of("item").items()):
        assert isinstance(spec, ItemDef)
        if spec.price is None:
            continue
        remaining = None if spec.stock is None else max(spec.stock - sold.get(key, 0), 0)
        out.append(CatalogItem(key=key, name=spec.name, description=spec.description, category=spec.category,
                               price=spec.price, stock=spec.stock, remaining=remaining,
                               max_per_player=spec.max_per_player, external=spec.external))
    return out
