"""Routes for players' accounts and player tokens."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, status

from questline.kit.fastlane import FastLane, LaneAnswer, LaneCall, LaneHandler, route_reply
from questline.kit.pagination import Page, PageParams, page_params
from questline.kit.routing import ClockDep, ExposedRoute, RuntimeDep, SessionDep, UnitOfWorkRoute
from questline.kit.runtime import Runtime
from questline.players import service
from questline.players.schemas import (
    PLAYER_ID_PATTERN,
    AccountUpdate,
    PlayerErasure,
    PlayerExport,
    PlayerOut,
    PlayerToken,
    TokenRequest,
)
from questline.tenancy.auth import (
    SERVER,
    Caller,
    PlayerOrServer,
    PlayerOrServerWrite,
    ServerOrAdmin,
    ServerOrViewer,
    allow,
    enforce_limits,
    identify_caller,
    lane_policy,
    mint_player_token,
)

router = APIRouter(prefix="/v1/players", tags=["players"], route_class=UnitOfWorkRoute)
PlayerId = Annotated[str, Path(pattern=PLAYER_ID_PATTERN, description="your own id for the player")]


# Not audited: clients mint a token per session, and a token changes nothing the player has.
@router.post("/{player_id}/tokens", response_model=PlayerToken, status_code=201, openapi_extra={"x-audit": False})
async def mint_token(player_id: PlayerId, caller: Annotated[Caller, allow(SERVER)], session: SessionDep,
                     runtime: RuntimeDep, body: TokenRequest | None = None) -> PlayerToken:
    """Mint a short-lived token with which a game client acts for this one player (server key only).

    It works until it expires, its player's tokens are revoked, or the key that minted it is
    revoked or rotated out.
    """
    await service.ensure_players(session, runtime.clock, caller.app, [player_id])
    token, expires = await mint_player_token(session, runtime, caller, player_id, body.ttl_seconds if body else None)
    return PlayerToken(token=token, player_id=player_id, expires_at=expires)


@router.delete("/{player_id}/tokens", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_tokens(player_id: PlayerId, caller: ServerOrAdmin, session: SessionDep, clock: ClockDep) -> None:
    """Revoke every token minted for this player so far, at once (server key or app admin)."""
    await service.revoke_tokens(session, clock, caller.app, player_id)


@router.get("/{player_id}/export", response_model=PlayerExport, responses={404: {"description": "player_not_found"}})
async def export(player_id: PlayerId, caller: ServerOrAdmin, session: SessionDep, runtime: RuntimeDep) -> PlayerExport:
    """Everything the engine holds about the player, as one JSON document (server key or app admin):
    profile, stats, progress, unlocks, ledger history, inventory, claims, memberships, referrals…"""
    return await service.export(session, runtime, caller.app, player_id)


@router.delete("/{player_id}", response_model=PlayerErasure)
async def erase(player_id: PlayerId, caller: ServerOrAdmin, session: SessionDep, runtime: RuntimeDep) -> PlayerErasure:
    """Erase the player (server key or app admin; recorded in the audit log): personal data and
    events are deleted or anonymized, the ledger keeps a balanced history under an anonymous
    holder, ranks leave every board. Repeating it changes nothing (``erased: false``)."""
    return await service.erase(session, runtime, caller.app, player_id)


@router.get("", response_model=Page[PlayerOut])
async def list_players(
    caller: ServerOrViewer, session: SessionDep, paging: Annotated[PageParams, Depends(page_params)],
    q: Annotated[str | None, Query(min_length=1, max_length=200,
                                   description="only players whose id, username or display name starts with this "
                                               "(any case)")] = None,
) -> Page[PlayerOut]:
    """The app's players by id; ``q`` searches them."""
    page = await service.list_players(session, caller.app, paging, q)
    return Page[PlayerOut](items=[PlayerOut.model_validate(p) for p in page.items], next_cursor=page.next_cursor)


@router.get("/{player_id}/account", response_model=PlayerOut)
async def get_account(player_id: PlayerId, caller: PlayerOrServer, runtime: RuntimeDep) -> PlayerOut:
    """The player's account settings: time zone, privacy, display name."""
    return PlayerOut.model_validate(await _account(runtime, caller, player_id))


async def _account(runtime: Runtime, caller: Caller, player_id: str) -> dict[str, Any]:
    caller.ensure_acts_for(player_id)
    return await service.account(runtime.engine, caller.app, player_id)


def fast_routes(lane: FastLane) -> None:
    """The account read the fast lane answers (``kit.fastlane``), through the same function as the route."""
    lane.get("/v1/players/{player_id}/account", _fast_account)


def _fast_account(route: ExposedRoute) -> LaneHandler:
    policy = lane_policy(route)
    reply = route_reply(route.route)

    async def handler(call: LaneCall) -> LaneAnswer:
        runtime = call.runtime
        caller = await identify_caller(call.request, runtime, policy, call.session)
        account = await _account(runtime, caller, call.params["player_id"])
        return LaneAnswer(reply(account), partial(enforce_limits, runtime, caller))

    return handler


@router.put("/{player_id}/account", response_model=PlayerOut)
async def put_account(player_id: PlayerId, body: AccountUpdate, caller: ServerOrAdmin, session: SessionDep,
                      clock: ClockDep) -> PlayerOut:
    """Create the player if new, and set the given fields, traits included (server key or app admin)."""
    return PlayerOut.model_validate(await service.upsert_player(session, clock, caller.app, player_id, body))


@router.patch("/{player_id}/account", response_model=PlayerOut,
              responses={429: {"description": "timezone_change_too_soon: a player changes their own time zone "
                                              "once per QUESTLINE_TIMEZONE_CHANGE_INTERVAL_SECONDS"}})
async def patch_account(player_id: PlayerId, body: AccountUpdate, caller: PlayerOrServerWrite,
                        session: SessionDep, runtime: RuntimeDep) -> PlayerOut:
    """Change an existing player's settings; a player token may change only its own profile
    (not its traits: 403 traits_not_writable)."""
    caller.ensure_acts_for(player_id)
    return PlayerOut.model_validate(await service.update_player(
        session, runtime.clock, caller.app, player_id, body, trusted=caller.is_trusted,
        timezone_interval=runtime.settings.timezone_change_interval_seconds))
