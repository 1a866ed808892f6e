"""The gating check for integrators: would this player pass this requirement?"""

from __future__ import annotations

from fastapi import APIRouter

from questline.gating import service
from questline.gating.schemas import GatingCheckIn, GatingCheckOut
from questline.kit.routing import RuntimeDep, SessionDep, UnitOfWorkRoute
from questline.tenancy.auth import ServerOrViewer

router = APIRouter(prefix="/v1", tags=["communities"], route_class=UnitOfWorkRoute)


@router.post("/gating/check", response_model=GatingCheckOut, openapi_extra={"x-audit": False})  # a question
async def check_gating(body: GatingCheckIn, caller: ServerOrViewer, session: SessionDep,
                       runtime: RuntimeDep) -> GatingCheckOut:
    """Would this player pass this requirement? (``unmet`` lists what is missing.)"""
    missing = await service.unmet(session, runtime, caller.app, body.player_id, body.requirement)
    return GatingCheckOut(player_id=body.player_id, allowed=not missing, unmet=missing)
