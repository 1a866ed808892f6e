"""Routes: fulfilment records (the admin view, retry, mark fulfilled) and the app's delivery targets."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from questline.fulfilment import service
from questline.fulfilment.schemas import FulfilIn, FulfilmentOut, Kind, Status, TargetIn, TargetKind, TargetOut
from questline.kit.ids import ID_PATTERN
from questline.kit.pagination import Page, PageParams, page_params
from questline.kit.routing import RuntimeDep, SessionDep, UnitOfWorkRoute
from questline.players.schemas import PLAYER_ID_PATTERN
from questline.tenancy.auth import ServerOrAdmin, ServerOrViewer

router = APIRouter(prefix="/v1", tags=["reward fulfilment"], route_class=UnitOfWorkRoute)
FulfilmentId = Annotated[str, Path(pattern=ID_PATTERN, description="the fulfilment's id (ful_…)")]
Paging = Annotated[PageParams, Depends(page_params)]
_REFUSALS: dict[int | str, dict[str, Any]] = {404: {"description": "fulfilment_not_found"},
             409: {"description": "fulfilment_not_automatic, fulfilment_not_retryable, fulfilment_already_completed, "
                                  "fulfilment_cancelled, fulfilment_in_progress, fulfilment_changed"}}


@router.get("/fulfilments", response_model=Page[FulfilmentOut])
async def list_fulfilments(caller: ServerOrViewer, session: SessionDep, paging: Paging,
                           status: Annotated[Status | None, Query()] = None,
                           kind: Annotated[Kind | None, Query()] = None,
                           player_id: Annotated[str | None, Query(pattern=PLAYER_ID_PATTERN)] = None,
                           ) -> Page[FulfilmentOut]:
    """Rewards delivered outside the ledger, newest first: what is pending, failed, completed."""
    return await service.list_fulfilments(session, caller.app, status=status, kind=kind, player_id=player_id,
                                          page=paging)


@router.get("/fulfilments/{fulfilment_id}", response_model=FulfilmentOut, responses=_REFUSALS)
async def get_fulfilment(fulfilment_id: FulfilmentId, caller: ServerOrViewer, session: SessionDep) -> FulfilmentOut:
    return await service.get(session, caller.app, fulfilment_id)


@router.post("/fulfilments/{fulfilment_id}/retry", response_model=FulfilmentOut, responses=_REFUSALS)
async def retry(fulfilment_id: FulfilmentId, caller: ServerOrAdmin, session: SessionDep,
                runtime: RuntimeDep) -> FulfilmentOut:
    """Deliver a failed (or waiting) webhook, in-game or token reward again now."""
    return await service.retry(session, runtime, caller.app, fulfilment_id)


@router.post("/fulfilments/{fulfilment_id}/fulfil", response_model=FulfilmentOut, responses=_REFUSALS)
async def fulfil(fulfilment_id: FulfilmentId, body: FulfilIn, caller: ServerOrAdmin, session: SessionDep,
                 runtime: RuntimeDep) -> FulfilmentOut:
    """Mark a reward delivered by hand, with your reference; the same reference again changes nothing."""
    return await service.fulfil(session, runtime, caller.app, fulfilment_id, body.reference)


@router.get("/fulfilment-targets", response_model=list[TargetOut])
async def targets(caller: ServerOrViewer, session: SessionDep) -> list[TargetOut]:
    """Where ``webhook`` and ``in_game`` rewards are sent (secrets are not shown again)."""
    return await service.targets(session, caller.app)


@router.put("/fulfilment-targets/{kind}", response_model=TargetOut, responses={422: {"description": "invalid_url"}})
async def set_target(kind: Annotated[TargetKind, Path(description="webhook or in_game")], body: TargetIn,
                     caller: ServerOrAdmin, session: SessionDep, runtime: RuntimeDep) -> TargetOut:
    """Set the URL that receives signed ``webhook`` or ``in_game`` reward calls; the secret is shown once."""
    return await service.set_target(session, runtime, caller.app, kind, body)
