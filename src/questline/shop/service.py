"""Inventories and the shop.

Inventory changes go through ``grant_item`` and ``consume_item``; each is logged under a key
unique per app, so a grant made again under the same key (a retried reward, a replayed
request) changes nothing.

A purchase is a two-phase commit over the ledger's holds:

1. reserve: count the units against the item's stock and the player's limit (atomic counters);
2. hold: the ledger moves the price from the player into ``holds`` (``409 insufficient_funds``);
3. order: the order is written, ``pending``, naming its hold;
4. commit: the ledger spends the hold, the items go into the inventory, the order is
   ``completed`` — or release: the hold goes back, the counters are returned, the order is
   ``cancelled`` (or ``expired`` when its hold ran out).

An item sold by Questline itself goes through every phase in the request's one transaction, so
a failure at any step leaves balances, counters, inventory and orders as they were. An
``external`` item stops after phase 3 and commits: the external shop confirms or cancels the
order later, and a pending order whose hold expires is released and marked ``expired`` by a job.
``on_phase`` is told each phase as it completes (tests make it raise to prove the rollback).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from questline.gating import service as gating
from questline.kit.clock import Clock
from questline.kit.errors import Conflict, NotFound, Unprocessable
from questline.kit.ids import new_id
from questline.kit.pagination import Page, PageParams, build_page
from questline.kit.runtime import Runtime
from questline.ledger import service as ledger
from questline.ledger.schemas import AccountRef
from questline.players import service as players
from questline.rules.schemas import DefinitionBody
from questline.rules.service import RuleSet
from questline.shop import repository as repo
from questline.shop.models import ShopOrder
from questline.shop.schemas import CatalogItem, ConsumeIn, InventoryEntry, InventoryOut, ItemDef, OrderIn, OrderOut

__all__ = [
    "cancel_order", "catalog", "check_currency", "confirm_order", "consume_item", "expire_orders", "get_order",
    "grant_item", "inventory_of", "item_of", "list_orders", "purchase", "use_item",
]

PhaseHook = Callable[[str], None]
INTERNAL_HOLD_SECONDS = 60


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


# Orders ---------------------------------------------------------------------------------------


def _phase(hook: PhaseHook | None, name: str) -> None:
    if hook is not None:
        hook(name)


async def _order_out(session: AsyncSession, order: ShopOrder) -> OrderOut:
    out = OrderOut.model_validate(order)
    balances = await ledger.player_balances(session, order.app_id, order.player_id)
    found = balances.get(order.currency)
    out.balance = found.balance if found else 0
    return out


async def _reserve(session: AsyncSession, app_id: str, player_id: str, key: str, spec: ItemDef,
                   quantity: int) -> None:
    if spec.stock is not None and not await repo.reserve(session, app_id, key, repo.ALL_PLAYERS, quantity,
                                                         spec.stock):
        raise Conflict(f"{spec.name} is sold out", code="out_of_stock", extra={"item": key})
    if spec.max_per_player is not None and not await repo.reserve(session, app_id, key, player_id, quantity,
                                                                  spec.max_per_player):
        raise Conflict(f"a player may buy at most {spec.max_per_player} of {spec.name}",
                       code="purchase_limit_reached", extra={"item": key, "max_per_player": spec.max_per_player})


async def _unreserve(session: AsyncSession, order: ShopOrder) -> None:
    # Both counters move whatever the item's limits are now; neither goes below zero.
    await repo.unreserve(session, order.app_id, order.item, repo.ALL_PLAYERS, order.quantity)
    await repo.unreserve(session, order.app_id, order.item, order.player_id, order.quantity)


async def _complete(session: AsyncSession, clock: Clock, order: ShopOrder, on_phase: PhaseHook | None) -> None:
    assert order.hold_id is not None
    await ledger.commit_hold(session, clock, app_id=order.app_id, hold_id=order.hold_id)
    _phase(on_phase, "paid")
    await grant_item(session, clock, app_id=order.app_id, player_id=order.player_id, item=order.item,
                     quantity=order.quantity, key=f"shop:order:{order.id}", source="shop",
                     reference={"order_id": order.id})
    _phase(on_phase, "granted")
    if not await repo.settle_order(session, order.app_id, order.id, "completed", None, clock.now()):
        raise Conflict(f"order {order.id} is no longer pending", code="order_not_pending")  # pragma: no cover
    _phase(on_phase, "completed")


async def purchase(session: AsyncSession, runtime: Runtime, ruleset: RuleSet, app_id: str, player_id: str,
                   body: OrderIn, *, on_phase: PhaseHook | None = None) -> OrderOut:
    """Buy an item with points: reserve, hold, order, then commit (or leave pending for an external shop)."""
    clock = runtime.clock
    spec = item_of(ruleset, body.item)
    if spec.price is None:
        raise Conflict(f"{spec.name} is not for sale", code="not_for_sale", extra={"item": body.item})
    await players.ensure_players(session, clock, app_id, [player_id])
    await gating.check(session, runtime, app_id, player_id, spec.gating)
    await _reserve(session, app_id, player_id, body.item, spec, body.quantity)
    _phase(on_phase, "reserved")
    order_id = new_id("ord")
    amount = spec.price.amount * body.quantity
    # The hold and its commit post twice (player, holds; then holds, sink): lock all three in one order.
    currency = spec.price.currency
    await ledger.lock_accounts(session, clock, app_id=app_id, accounts=[
        AccountRef.player(player_id, currency), AccountRef.system(ledger.HOLDS, currency),
        AccountRef.system(ledger.SINK, currency)])
    hold = await ledger.create_hold(
        session, clock, app_id=app_id, player_id=player_id, currency=spec.price.currency, amount=amount,
        ttl_seconds=spec.hold_seconds if spec.external else INTERNAL_HOLD_SECONDS,
        idempotency_key=f"shop:hold:{order_id}", reference={"order_id": order_id, "item": body.item},
    )
    _phase(on_phase, "held")
    now = clock.now()
    order = ShopOrder(id=order_id, app_id=app_id, player_id=player_id, item=body.item, quantity=body.quantity,
                      currency=spec.price.currency, unit_price=spec.price.amount, amount=amount, status="pending",
                      external=spec.external, hold_id=hold.id, reason=None, created_at=now, updated_at=now,
                      expires_at=hold.expires_at if spec.external else now + timedelta(seconds=INTERNAL_HOLD_SECONDS),
                      settled_at=None)
    await repo.add_order(session, order)
    _phase(on_phase, "ordered")
    if not spec.external:
        await _complete(session, clock, order, on_phase)
        await session.refresh(order)
    return await _order_out(session, order)


async def get_order(session: AsyncSession, app_id: str, order_id: str) -> OrderOut:
    return await _order_out(session, await _order(session, app_id, order_id))


async def _order(session: AsyncSession, app_id: str, order_id: str) -> ShopOrder:
    order = await repo.get_order(session, app_id, order_id)
    if order is None:
        raise NotFound(f"order {order_id} not found", code="order_not_found")
    return order


def _pending(order: ShopOrder, now: datetime) -> None:
    if order.status != "pending":
        raise Conflict(f"order {order.id} is {order.status}", code="order_not_pending",
                       extra={"order_status": order.status})
    if order.expires_at <= now:
        raise Conflict(f"order {order.id} expired at {order.expires_at.isoformat()}", code="order_expired",
                       extra={"order_status": "expired"})


async def confirm_order(session: AsyncSession, clock: Clock, app_id: str, order_id: str, *,
                        on_phase: PhaseHook | None = None) -> OrderOut:
    """The external shop fulfilled a pending order: spend the hold, grant the items, complete it."""
    order = await _order(session, app_id, order_id)
    _pending(order, clock.now())
    await _complete(session, clock, order, on_phase)
    await session.refresh(order)
    return await _order_out(session, order)


async def _release(session: AsyncSession, clock: Clock, order: ShopOrder, status: str, reason: str,
                   on_phase: PhaseHook | None = None) -> None:
    if order.hold_id is not None:
        try:
            await ledger.release_hold(session, clock, app_id=order.app_id, hold_id=order.hold_id,
                                      reason="expired" if status == "expired" else "requested")
        except Conflict as exc:
            if exc.code != "hold_not_active":  # released already by the ledger's expiry job
                raise
    _phase(on_phase, "released")
    await _unreserve(session, order)
    _phase(on_phase, "unreserved")
    if not await repo.settle_order(session, order.app_id, order.id, status, reason, clock.now()):
        raise Conflict(f"order {order.id} is no longer pending", code="order_not_pending")
    _phase(on_phase, status)


async def cancel_order(session: AsyncSession, clock: Clock, app_id: str, order_id: str, reason: str, *,
                       on_phase: PhaseHook | None = None) -> OrderOut:
    """The external shop could not fulfil a pending order: the points go back, the order is cancelled."""
    order = await _order(session, app_id, order_id)
    if order.status != "pending":
        raise Conflict(f"order {order.id} is {order.status}", code="order_not_pending",
                       extra={"order_status": order.status})
    await _release(session, clock, order, "cancelled", reason, on_phase)
    await session.refresh(order)
    return await _order_out(session, order)


async def expire_orders(session: AsyncSession, clock: Clock, limit: int = 200) -> int:
    """Release the holds of pending orders whose time ran out and mark them ``expired`` (a job)."""
    expired = 0
    for app_id, order_id in await repo.expired_orders(session, clock.now(), limit):
        order = await repo.get_order(session, app_id, order_id)
        if order is None or order.status != "pending":
            continue
        try:
            async with session.begin_nested():
                await _release(session, clock, order, "expired", "the hold expired before confirmation")
        except Conflict:  # confirmed or cancelled meanwhile
            continue
        expired += 1
    return expired


async def list_orders(session: AsyncSession, app_id: str, player_id: str, page: PageParams) -> Page[OrderOut]:
    await players.get_player(session, app_id, player_id)
    rows = await repo.orders_of(session, app_id, player_id, page.after_str(), page.limit)
    built = build_page(list(rows), page.limit, lambda o: [o.id])
    return Page[OrderOut](items=[OrderOut.model_validate(o) for o in built.items], next_cursor=built.next_cursor)
