"""Routes for the item catalog, player inventories, and shop orders."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from questline.kit.ids import ID_PATTERN
from questline.kit.pagination import Page, PageParams, page_params
from questline.kit.routing import ClockDep, RuntimeDep, SessionDep, UnitOfWorkRoute
from questline.players.schemas import PLAYER_ID_PATTERN
from questline.rules.service import ruleset_cache
from questline.shop import service
from questline.shop.schemas import ITEM_KEY, CatalogItem, ConsumeIn, InventoryOut, OrderCancelIn, OrderIn, OrderOut
from questline.tenancy.auth import (
    IDEMPOTENCY_HEADER,
    PLAYER,
    SERVER,
    AnyAppCaller,
    Caller,
    PlayerOrServer,
    ServerOrViewer,
    allow,
)

router = APIRouter(prefix="/v1", tags=["inventory and shop"], route_class=UnitOfWorkRoute)
PlayerId = Annotated[str, Path(pattern=PLAYER_ID_PATTERN, description="your own id for the player")]
ItemKey = Annotated[str, Path(pattern=ITEM_KEY, description="the item definition's key")]
ServerWithKey = Annotated[Caller, allow(SERVER, idempotency="required")]


@router.get("/shop/items", response_model=list[CatalogItem])
async def catalog(caller: AnyAppCaller, session: SessionDep, runtime: RuntimeDep) -> list[CatalogItem]:
    """Items for sale, with their price and the stock left."""
    ruleset = await ruleset_cache(runtime).get(session, caller.app)
    return await service.catalog(session, ruleset, caller.app)


@router.get("/players/{player_id}/inventory", response_model=InventoryOut)
async def inventory(player_id: PlayerId, caller: PlayerOrServer, session: SessionDep,
                    runtime: RuntimeDep) -> InventoryOut:
    """What the player holds: items bought in the shop and granted as rewards."""
    caller.ensure_acts_for(player_id)
    ruleset = await ruleset_cache(runtime).get(session, caller.app)
    return await service.inventory_of(session, ruleset, caller.app, player_id)


@router.post("/players/{player_id}/inventory/{item}/consume", response_model=InventoryOut,
             responses={409: {"description": "insufficient_items"}})
async def consume(player_id: PlayerId, item: ItemKey, body: ConsumeIn, request: Request, caller: ServerWithKey,
                  session: SessionDep, clock: ClockDep, runtime: RuntimeDep) -> InventoryOut:
    """Use up units of an item (server key; ``Idempotency-Key`` required)."""
    ruleset = await ruleset_cache(runtime).get(session, caller.app)
    return await service.use_item(session, clock, ruleset, caller.app, player_id, item, body,
                                  key=f"consume:{caller.identity}:{request.headers[IDEMPOTENCY_HEADER]}")


OrderId = Annotated[str, Path(pattern=ID_PATTERN, description="the order's id (ord_…)")]
# The player for themself, or the server key; a retried purchase must not buy twice.
Buyer = Annotated[Caller, allow(SERVER, PLAYER, idempotency="required")]
_REFUSALS: dict[int | str, dict[str, Any]] = {
    403: {"description": "gated"},
    404: {"description": "item_not_found, order_not_found"},
    409: {"description": "insufficient_funds, out_of_stock, purchase_limit_reached, not_for_sale, order_not_pending, "
                         "order_expired"},
}


@router.post("/players/{player_id}/shop/orders", response_model=OrderOut, status_code=201, responses=_REFUSALS)
async def purchase(player_id: PlayerId, body: OrderIn, caller: Buyer, session: SessionDep,
                   runtime: RuntimeDep) -> OrderOut:
    """Buy an item with points (``Idempotency-Key`` required).

    The price is held, the order written, then the hold is spent and the items granted: the
    order comes back ``completed``. An ``external`` item's order stays ``pending`` with its points
    held until the external shop confirms or cancels it (or the hold expires: ``expired``).
    """
    caller.ensure_acts_for(player_id)
    ruleset = await ruleset_cache(runtime).get(session, caller.app)
    return await service.purchase(session, runtime, ruleset, caller.app, player_id, body)


@router.get("/players/{player_id}/shop/orders", response_model=Page[OrderOut])
async def orders(player_id: PlayerId, caller: PlayerOrServer, session: SessionDep,
                 paging: Annotated[PageParams, Depends(page_params)]) -> Page[OrderOut]:
    """The player's orders, newest first."""
    caller.ensure_acts_for(player_id)
    return await service.list_orders(session, caller.app, player_id, paging)


@router.get("/shop/orders/{order_id}", response_model=OrderOut)
async def get_order(order_id: OrderId, caller: ServerOrViewer, session: SessionDep) -> OrderOut:
    return await service.get_order(session, caller.app, order_id)


@router.post("/shop/orders/{order_id}/confirm", response_model=OrderOut, responses=_REFUSALS)
async def confirm(order_id: OrderId, caller: ServerWithKey, session: SessionDep, clock: ClockDep) -> OrderOut:
    """The external shop fulfilled a pending order: its points are spent and the items granted."""
    return await service.confirm_order(session, clock, caller.app, order_id)


@router.post("/shop/orders/{order_id}/cancel", response_model=OrderOut, responses=_REFUSALS)
async def cancel(order_id: OrderId, caller: ServerWithKey, session: SessionDep, clock: ClockDep,
                 body: OrderCancelIn | None = None) -> OrderOut:
    """The external shop could not fulfil a pending order: its points go back to the player."""
    return await service.cancel_order(session, clock, caller.app, order_id, (body or OrderCancelIn()).reason)
