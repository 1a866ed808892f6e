"""Routes for the item catalog, player inventories, and shop orders."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from questline.kit.routing import ClockDep, RuntimeDep, SessionDep, UnitOfWorkRoute
from questline.players.schemas import PLAYER_ID_PATTERN
from questline.rules.service import ruleset_cache
from questline.shop import service
from questline.shop.schemas import ITEM_KEY, CatalogItem, ConsumeIn, InventoryOut
from questline.tenancy.auth import IDEMPOTENCY_HEADER, SERVER, AnyAppCaller, Caller, PlayerOrServer, allow

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
