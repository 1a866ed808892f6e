"""Routes for a player's streaks, freeze purchases and rest days."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from questline.kit.routing import RuntimeDep, SessionDep, UnitOfWorkRoute
from questline.players.schemas import PLAYER_ID_PATTERN as PLAYER_ID
from questline.rules.schemas import DEFINITION_KEY
from questline.streaks import service
from questline.streaks.schemas import FreezePurchase, PlayerStreaks, RestDaysIn, StreakOut
from questline.tenancy.auth import (
    IDEMPOTENCY_HEADER,
    PLAYER,
    SERVER,
    Caller,
    PlayerOrServer,
    PlayerOrServerWrite,
    allow,
)

router = APIRouter(prefix="/v1/players", tags=["streaks"], route_class=UnitOfWorkRoute)
PlayerId = Annotated[str, Path(pattern=PLAYER_ID)]
StreakKey = Annotated[str, Path(pattern=DEFINITION_KEY, description="the streak definition's key")]


@router.get("/{player_id}/streaks", response_model=PlayerStreaks)
async def player_streaks(player_id: PlayerId, caller: PlayerOrServer, session: SessionDep,
                         runtime: RuntimeDep) -> PlayerStreaks:
    """Every streak with the player's current and longest run, freezes, rest days and when it breaks."""
    caller.ensure_acts_for(player_id)
    return await service.player_streaks(session, runtime, caller.app, player_id)


@router.post("/{player_id}/streaks/{key}/freezes", response_model=FreezePurchase, status_code=201,
             responses={409: {"description": "freezes_full, freezes_not_for_sale, or insufficient_funds"}})
async def buy_freeze(
    player_id: PlayerId, key: StreakKey, request: Request, session: SessionDep, runtime: RuntimeDep,
    caller: Annotated[Caller, allow(SERVER, PLAYER, idempotency="required")],
) -> FreezePurchase:
    """Buy one streak freeze at the definition's price (the player for themself, or the server key).

    A freeze covers one missed period and is used automatically. ``Idempotency-Key`` required.
    """
    caller.ensure_acts_for(player_id)
    return await service.buy_freeze(session, runtime, caller.app, player_id, key,
                                    request.headers[IDEMPOTENCY_HEADER], caller.identity)


@router.put("/{player_id}/streaks/{key}/rest-days", response_model=StreakOut)
async def set_rest_days(player_id: PlayerId, key: StreakKey, body: RestDaysIn, caller: PlayerOrServerWrite,
                        session: SessionDep, runtime: RuntimeDep) -> StreakOut:
    """Schedule rest days: future local dates, at most ``rest_days_per_week`` per ISO week.

    Replaces the future rest days; past ones stay. A missed rest day neither breaks the streak
    nor uses a freeze (nor counts toward it).
    """
    caller.ensure_acts_for(player_id)
    return await service.set_rest_days(session, runtime, caller.app, player_id, key, body)
