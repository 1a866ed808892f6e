"""Routes: leaderboard reads (top, a player's place and neighbours, archives) and friendships."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.errors import Forbidden
from questline.kit.fastlane import FastLane, LaneAnswer, LaneCall, LaneHandler
from questline.kit.pagination import PageParams, page_params
from questline.kit.routing import ClockDep, ExposedRoute, RuntimeDep, SessionDep, UnitOfWorkRoute
from questline.kit.runtime import Runtime
from questline.leaderboards import service
from questline.leaderboards.schemas import ArchivePage, BoardPage, BoardSummary, FriendsOut
from questline.players.schemas import PLAYER_ID_PATTERN as PLAYER_ID
from questline.tenancy.auth import (
    CLIENT,
    PLAYER,
    AnyAppCaller,
    Caller,
    PlayerOrServer,
    ServerOrAdmin,
    enforce_limits,
    identify_caller,
    lane_policy,
)

router = APIRouter(tags=["leaderboards"], route_class=UnitOfWorkRoute)
Paging = Annotated[PageParams, Depends(page_params)]
BoardKey = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$", description="the leaderboard definition's key")]
PlayerId = Annotated[str, Path(pattern=PLAYER_ID, description="your own id for the player")]
Partition = Annotated[str | None, Query(max_length=128, description="the group on a partitioned board")]
PeriodKey = Annotated[str | None, Query(max_length=32, description="an earlier period (default: the current one)")]
Viewer = Annotated[str | None, Query(pattern=PLAYER_ID, description="server keys: read as this player sees it")]


def as_json(view: service.BoardView | service.ArchiveView) -> Response:
    """Reads build plain objects (hundreds of rows per reply) and serialize them once, with orjson."""
    return Response(service.to_json(view), media_type="application/json")


def viewer_of(caller: Caller, viewer: str | None) -> str | None:
    """Whose eyes a read uses: a player token's own; the named viewer for a server; nobody for a client key."""
    if caller.kind is PLAYER:
        return caller.player_id
    if caller.kind is CLIENT:
        if viewer is not None:
            raise Forbidden("a publishable key reads boards as the public; use a player token",
                            code="viewer_not_allowed")
        return None
    return viewer


@router.get("/v1/leaderboards", response_model=list[BoardSummary])
async def list_boards(caller: AnyAppCaller, session: SessionDep, runtime: RuntimeDep) -> list[BoardSummary]:
    """Every leaderboard of the app, with its current period and when it resets."""
    return await service.list_boards(session, runtime, caller.app)


@router.get("/v1/leaderboards/{key}", response_model=BoardPage)
async def top(key: BoardKey, caller: AnyAppCaller, session: SessionDep, runtime: RuntimeDep, paging: Paging,
              partition: Partition = None, period_key: PeriodKey = None, viewer: Viewer = None) -> Response:
    """The top of a board, best first, as the viewer may see it; ``me`` is the viewer's own place."""
    return as_json(await _top(session, runtime, caller, key, paging, partition, period_key, viewer))


async def _top(session: AsyncSession, runtime: Runtime, caller: Caller, key: str, paging: PageParams,
               partition: str | None, period_key: str | None, viewer: str | None) -> service.BoardView:
    info = await service.board_info(session, runtime, caller.app, key)
    return await service.top(session, runtime, caller.app, info, paging, viewer=viewer_of(caller, viewer),
                             partition=partition, key=period_key)


@router.get("/v1/leaderboards/{key}/players/{player_id}", response_model=BoardPage)
async def player_place(key: BoardKey, player_id: PlayerId, caller: PlayerOrServer, session: SessionDep,
                       runtime: RuntimeDep,
                       around: Annotated[int, Query(ge=0, le=service.MAX_AROUND,
                                                    description="neighbours to show above and below")] = 0,
                       partition: Partition = None, period_key: PeriodKey = None) -> Response:
    """A player's own rank and score, with ``around`` visible players above and below."""
    return as_json(await _place(session, runtime, caller, key, player_id, around, partition, period_key))


async def _place(session: AsyncSession, runtime: Runtime, caller: Caller, key: str, player_id: str, around: int,
                 partition: str | None, period_key: str | None) -> service.BoardView:
    caller.ensure_acts_for(player_id)
    info = await service.board_info(session, runtime, caller.app, key)
    return await service.player_place(session, runtime, caller.app, info, player_id, around=around,
                                      partition=partition, key=period_key)


def fast_routes(lane: FastLane) -> None:
    """The board reads the fast lane answers (``kit.fastlane``), through the same functions as the routes."""
    lane.get("/v1/leaderboards/{key}", _fast_top)
    lane.get("/v1/leaderboards/{key}/players/{player_id}", _fast_place)


def _fast_top(route: ExposedRoute) -> LaneHandler:
    policy = lane_policy(route)

    async def handler(call: LaneCall) -> LaneAnswer:
        p, runtime = call.params, call.runtime
        caller = await identify_caller(call.request, runtime, policy, call.session)
        view = await _top(call.session, runtime, caller, p["key"], PageParams(limit=p["limit"], cursor=p["cursor"]),
                          p["partition"], p["period_key"], p["viewer"])
        return LaneAnswer(service.to_json(view), partial(enforce_limits, runtime, caller))

    return handler


def _fast_place(route: ExposedRoute) -> LaneHandler:
    policy = lane_policy(route)

    async def handler(call: LaneCall) -> LaneAnswer:
        p, runtime = call.params, call.runtime
        caller = await identify_caller(call.request, runtime, policy, call.session)
        view = await _place(call.session, runtime, caller, p["key"], p["player_id"], p["around"], p["partition"],
                            p["period_key"])
        return LaneAnswer(service.to_json(view), partial(enforce_limits, runtime, caller))

    return handler


@router.get("/v1/leaderboards/{key}/archive/{period_key}", response_model=ArchivePage)
async def archive(key: BoardKey, period_key: Annotated[str, Path(max_length=32)], caller: AnyAppCaller,
                  session: SessionDep, runtime: RuntimeDep, paging: Paging, partition: Partition = None,
                  viewer: Viewer = None) -> Response:
    """The final standings of an ended period."""
    info = await service.board_info(session, runtime, caller.app, key)
    return as_json(await service.archive(session, runtime, caller.app, info, period_key, paging,
                                         viewer=viewer_of(caller, viewer), partition=partition))


@router.get("/v1/players/{player_id}/friends", response_model=FriendsOut, tags=["players"])
async def list_friends(player_id: PlayerId, caller: PlayerOrServer, session: SessionDep) -> FriendsOut:
    caller.ensure_acts_for(player_id)
    return await service.friends_of(session, caller.app, player_id)


@router.put("/v1/players/{player_id}/friends/{friend_id}", response_model=FriendsOut, tags=["players"])
async def befriend(player_id: PlayerId, friend_id: PlayerId, caller: ServerOrAdmin, session: SessionDep,
                   clock: ClockDep) -> FriendsOut:
    """Make two players friends of each other (mutual; server key or admin)."""
    return await service.befriend(session, clock, caller.app, player_id, friend_id)


@router.delete("/v1/players/{player_id}/friends/{friend_id}", status_code=204, tags=["players"])
async def unfriend(player_id: PlayerId, friend_id: PlayerId, caller: ServerOrAdmin, session: SessionDep) -> Response:
    """End a friendship, in both directions."""
    await service.unfriend(session, caller.app, player_id, friend_id)
    return Response(status_code=204)
