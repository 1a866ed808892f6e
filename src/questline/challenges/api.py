"""Routes for a player's challenges, claims and the approval queue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from questline.challenges import service
from questline.challenges.schemas import (
    AvailableChallenges,
    ClaimIn,
    ClaimOut,
    ClaimStatus,
    CompletionOut,
    DecisionIn,
    Difficulty,
    ForceCompleteIn,
)
from questline.kit.ids import ID_PATTERN
from questline.kit.pagination import Page, PageParams, page_params
from questline.kit.routing import RuntimeDep, SessionDep, UnitOfWorkRoute
from questline.players.schemas import PLAYER_ID_PATTERN as PLAYER_ID
from questline.rules.schemas import DEFINITION_KEY
from questline.tenancy.auth import PLAYER, SERVER, Caller, PlayerOrServer, ServerOrAdmin, allow

router = APIRouter(prefix="/v1", tags=["challenges"], route_class=UnitOfWorkRoute)
PlayerId = Annotated[str, Path(pattern=PLAYER_ID)]
ChallengeKey = Annotated[str, Path(pattern=DEFINITION_KEY, description="the challenge definition's key")]
ClaimId = Annotated[str, Path(pattern=ID_PATTERN)]
Paging = Annotated[PageParams, Depends(page_params)]
PlayerOrServerClaim = Annotated[Caller, allow(SERVER, PLAYER, idempotency="required")]
ServerOnlyWrite = Annotated[Caller, allow(SERVER, idempotency="required")]


@router.get("/players/{player_id}/challenges", response_model=AvailableChallenges)
async def available(
    player_id: PlayerId, caller: PlayerOrServer, session: SessionDep, runtime: RuntimeDep,
    category: Annotated[str | None, Query(max_length=50)] = None,
    difficulty: Annotated[Difficulty | None, Query()] = None,
    include_locked: Annotated[bool, Query(description="also list challenges the player cannot take yet")] = False,
) -> AvailableChallenges:
    """The challenges open to the player now, grouped daily / weekly / monthly / special, with
    progress, status and when the current period resets in the player's time zone."""
    caller.ensure_acts_for(player_id)
    return await service.available(session, runtime, caller.app, player_id, category=category,
                                   difficulty=difficulty, include_locked=include_locked)


@router.get("/players/{player_id}/challenges/history", response_model=Page[CompletionOut])
async def history(player_id: PlayerId, caller: PlayerOrServer, session: SessionDep, runtime: RuntimeDep,
                  paging: Paging) -> Page[CompletionOut]:
    """The player's completed challenges, newest first."""
    caller.ensure_acts_for(player_id)
    return await service.history(session, runtime, caller.app, player_id, paging)


@router.post("/players/{player_id}/challenges/{key}/claim", response_model=ClaimOut, status_code=201)
async def claim(player_id: PlayerId, key: ChallengeKey, body: ClaimIn, caller: PlayerOrServerClaim,
                session: SessionDep, runtime: RuntimeDep) -> ClaimOut:
    """Claim a claim-mode challenge whose objectives are met, with verification for the reviewer
    (player token for itself, or the server key; ``Idempotency-Key`` required)."""
    caller.ensure_acts_for(player_id)
    return await service.claim(session, runtime, caller.app, player_id, key, body)


@router.post("/players/{player_id}/challenges/{key}/complete", response_model=CompletionOut, status_code=201)
async def force_complete(player_id: PlayerId, key: ChallengeKey, body: ForceCompleteIn, caller: ServerOnlyWrite,
                         session: SessionDep, runtime: RuntimeDep) -> CompletionOut:
    """Complete the current period by hand, with its rewards (support; server key; ``Idempotency-Key``)."""
    return await service.force_complete(session, runtime, caller.app, player_id, key, body.reason, caller.identity)


@router.get("/challenge-claims", response_model=Page[ClaimOut])
async def list_claims(
    caller: ServerOrAdmin, session: SessionDep, paging: Paging,
    status: Annotated[ClaimStatus | None, Query(description="pending for the approval queue")] = None,
    challenge: Annotated[str | None, Query(pattern=DEFINITION_KEY)] = None,
    player_id: Annotated[str | None, Query(pattern=PLAYER_ID)] = None,
) -> Page[ClaimOut]:
    """Claims, oldest first (app admins or the server key)."""
    return await service.list_claims(session, caller.app, status, challenge, player_id, paging)


@router.post("/challenge-claims/{claim_id}/approve", response_model=ClaimOut)
async def approve(claim_id: ClaimId, caller: ServerOrAdmin, session: SessionDep, runtime: RuntimeDep,
                  body: DecisionIn | None = None) -> ClaimOut:
    """Approve a pending claim: the completion is recorded and its rewards posted, once.
    A claim already decided is ``409 claim_already_decided``."""
    return await service.approve(session, runtime, caller.app, claim_id, caller.identity,
                                 body.reason if body else "")


@router.post("/challenge-claims/{claim_id}/reject", response_model=ClaimOut)
async def reject(claim_id: ClaimId, caller: ServerOrAdmin, session: SessionDep, runtime: RuntimeDep,
                 body: DecisionIn | None = None) -> ClaimOut:
    """Reject a pending claim (the player may claim again this period)."""
    return await service.reject(session, runtime, caller.app, claim_id, caller.identity,
                                body.reason if body else "")

