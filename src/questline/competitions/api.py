"""Routes: competitions (admin), entry, the competition's board, prizes and claims, analytics, CSV."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Response

from questline.competitions import service
from questline.competitions.schemas import (
    Analytics,
    CompetitionIn,
    CompetitionOut,
    DistributionOut,
    ParticipantOut,
    PrizeEventOut,
    PrizeOut,
    Reason,
    Status,
)
from questline.kit.pagination import Page, PageParams, page_params
from questline.kit.responses import JsonResponse
from questline.kit.routing import RuntimeDep, SessionDep, UnitOfWorkRoute
from questline.leaderboards import service as boards
from questline.leaderboards.api import as_json, viewer_of
from questline.leaderboards.schemas import BoardPage
from questline.players.schemas import PLAYER_ID_PATTERN as PLAYER_ID
from questline.tenancy.auth import (
    AnyAppCaller,
    Caller,
    PlayerOrServer,
    PlayerOrServerWrite,
    ServerOrAdmin,
    ServerOrViewer,
)

router = APIRouter(tags=["competitions"], route_class=UnitOfWorkRoute)
Paging = Annotated[PageParams, Depends(page_params)]
CompetitionId = Annotated[str, Path(max_length=40, description="the competition's id (cmp_…)")]
PlayerId = Annotated[str, Path(pattern=PLAYER_ID, description="your own id for the player")]
PrizeId = Annotated[str, Path(max_length=40, description="the prize's id (prz_…)")]


def actor_of(caller: Caller) -> str:
    return caller.identity


@router.post("/v1/competitions", response_model=CompetitionOut, status_code=201)
async def create(body: CompetitionIn, caller: ServerOrAdmin, session: SessionDep,
                 runtime: RuntimeDep) -> CompetitionOut:
    """Create a competition: its window, scoring, entry rules and prize table. It starts and ends on schedule."""
    return await service.create(session, runtime, caller.app, body)


@router.get("/v1/competitions", response_model=Page[CompetitionOut])
async def list_competitions(caller: AnyAppCaller, session: SessionDep, paging: Paging,
                            status: Annotated[Status | None, Query()] = None) -> Page[CompetitionOut]:
    return await service.list_competitions(session, caller.app, status, paging)


@router.get("/v1/competitions/{competition_id}", response_model=CompetitionOut)
async def get(competition_id: CompetitionId, caller: AnyAppCaller, session: SessionDep) -> CompetitionOut:
    return await service.get(session, caller.app, competition_id)


@router.post("/v1/competitions/{competition_id}/participants/{player_id}", response_model=ParticipantOut,
             responses={200: {"model": ParticipantOut, "description": "already entered"}}, status_code=201)
async def join(competition_id: CompetitionId, player_id: PlayerId, caller: PlayerOrServerWrite, session: SessionDep,
               runtime: RuntimeDep) -> JsonResponse:
    """Enter a player: requirements are checked, the entry fee is taken, a place is kept (once)."""
    caller.ensure_acts_for(player_id)
    entry, created = await service.join(session, runtime, caller.app, competition_id, player_id)
    return JsonResponse(entry.model_dump(mode="json"), status_code=201 if created else 200)


@router.get("/v1/competitions/{competition_id}/participants", response_model=Page[ParticipantOut])
async def participants(competition_id: CompetitionId, caller: ServerOrViewer, session: SessionDep,
                       paging: Paging) -> Page[ParticipantOut]:
    return await service.list_participants(session, caller.app, competition_id, paging)


@router.post("/v1/competitions/{competition_id}/participants/{player_id}/disqualify", response_model=ParticipantOut)
async def disqualify(competition_id: CompetitionId, player_id: PlayerId, caller: ServerOrAdmin, session: SessionDep,
                     runtime: RuntimeDep) -> ParticipantOut:
    """Take a player off the board; the next distribution (after a rollback) skips them."""
    return await service.disqualify(session, runtime, caller.app, competition_id, player_id)


@router.get("/v1/competitions/{competition_id}/leaderboard", response_model=BoardPage)
async def leaderboard(competition_id: CompetitionId, caller: AnyAppCaller, session: SessionDep, runtime: RuntimeDep,
                      paging: Paging, viewer: Annotated[str | None, Query(pattern=PLAYER_ID)] = None) -> Response:
    """The competition's board over its window, with the viewer's privacy rules applied."""
    info = await service.info_of(session, caller.app, competition_id)
    return as_json(await boards.top(session, runtime, caller.app, info, paging, viewer=viewer_of(caller, viewer)))


@router.get("/v1/competitions/{competition_id}/leaderboard/players/{player_id}", response_model=BoardPage)
async def leaderboard_place(competition_id: CompetitionId, player_id: PlayerId, caller: PlayerOrServer,
                            session: SessionDep, runtime: RuntimeDep,
                            around: Annotated[int, Query(ge=0, le=boards.MAX_AROUND)] = 0) -> Response:
    caller.ensure_acts_for(player_id)
    info = await service.info_of(session, caller.app, competition_id)
    return as_json(await boards.player_place(session, runtime, caller.app, info, player_id, around=around))


@router.post("/v1/competitions/{competition_id}/end", response_model=CompetitionOut)
async def end_early(competition_id: CompetitionId, caller: ServerOrAdmin, session: SessionDep,
                    runtime: RuntimeDep) -> CompetitionOut:
    """End now: standings are frozen and prizes distributed as on a normal completion."""
    return await service.end_early(session, runtime, caller.app, competition_id, actor_of(caller))


@router.post("/v1/competitions/{competition_id}/cancel", response_model=CompetitionOut)
async def cancel(competition_id: CompetitionId, body: Reason, caller: ServerOrAdmin, session: SessionDep,
                 runtime: RuntimeDep) -> CompetitionOut:
    """Call it off: no prizes, and every entry fee is refunded."""
    return await service.cancel(session, runtime, caller.app, competition_id, body.reason, actor_of(caller))


@router.post("/v1/competitions/{competition_id}/distributions", response_model=DistributionOut)
async def distribute(competition_id: CompetitionId, caller: ServerOrAdmin, session: SessionDep,
                     runtime: RuntimeDep) -> DistributionOut:
    """Distribute prizes of a completed competition: the current batch, or a new one after a rollback."""
    return await service.distribute(session, runtime, caller.app, competition_id, actor_of(caller))


@router.get("/v1/competitions/{competition_id}/distributions", response_model=list[DistributionOut])
async def distributions(competition_id: CompetitionId, caller: ServerOrViewer,
                        session: SessionDep) -> list[DistributionOut]:
    return await service.distributions(session, caller.app, competition_id)


@router.post("/v1/competitions/{competition_id}/distributions/{batch}/rollback", response_model=DistributionOut)
async def roll_back(competition_id: CompetitionId, batch: Annotated[int, Path(ge=1, le=10_000)], body: Reason,
                    caller: ServerOrAdmin, session: SessionDep, runtime: RuntimeDep) -> DistributionOut:
    """Reverse a distribution with compensating ledger entries (all or nothing)."""
    return await service.roll_back(session, runtime, caller.app, competition_id, batch, body.reason,
                                   actor_of(caller))


@router.get("/v1/competitions/{competition_id}/analytics", response_model=Analytics)
async def analytics(competition_id: CompetitionId, caller: ServerOrViewer, session: SessionDep) -> Analytics:
    """Participants and score volume per hour, and the final prize distribution."""
    return await service.analytics(session, caller.app, competition_id)


@router.get("/v1/competitions/{competition_id}/export", response_class=Response,
            responses={200: {"content": {"text/csv": {}}, "description": "CSV"}})
async def export(competition_id: CompetitionId, caller: ServerOrViewer, session: SessionDep,
                 dataset: Annotated[Literal["participants", "results", "prizes", "activity"],
                                    Query()] = "results") -> Response:
    """A dataset as CSV: participants, results, prizes or activity."""
    text = await service.export_csv(session, caller.app, competition_id, dataset)
    return Response(text, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{competition_id}-{dataset}.csv"'})


@router.get("/v1/players/{player_id}/prizes", response_model=Page[PrizeOut], tags=["players"])
async def player_prizes(player_id: PlayerId, caller: PlayerOrServer, session: SessionDep, paging: Paging,
                        status: Annotated[Literal["claimable", "claimed", "expired", "rolled_back"] | None,
                                          Query()] = None) -> Page[PrizeOut]:
    """The player's own prizes, newest first."""
    caller.ensure_acts_for(player_id)
    return await service.player_prizes(session, caller.app, player_id, status, paging)


@router.post("/v1/players/{player_id}/prizes/{prize_id}/claim", response_model=PrizeOut, tags=["players"])
async def claim(player_id: PlayerId, prize_id: PrizeId, caller: PlayerOrServerWrite, session: SessionDep,
                runtime: RuntimeDep) -> PrizeOut:
    """Claim one of the player's own prizes before its deadline (410 after it)."""
    caller.ensure_acts_for(player_id)
    return await service.claim(session, runtime, caller.app, player_id, prize_id, actor_of(caller))


@router.get("/v1/players/{player_id}/prizes/history", response_model=Page[PrizeEventOut], tags=["players"])
async def prize_history(player_id: PlayerId, caller: PlayerOrServer, session: SessionDep,
                        paging: Paging) -> Page[PrizeEventOut]:
    """What happened to the player's prizes: awarded, claimed, expired, rolled back."""
    caller.ensure_acts_for(player_id)
    return await service.prize_history(session, caller.app, player_id, paging)
