from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from questline.kit.routing import RuntimeDep, SessionDep, UnitOfWorkRoute
from questline.players.schemas import PLAYER_ID_PATTERN as PLAYER_ID
from questline.profiles import service
from questline.profiles.schemas import Profile
from questline.tenancy.auth import PlayerOrServer

router = APIRouter(prefix="/v1/players", tags=["players"], route_class=UnitOfWorkRoute)


@router.get("/{player_id}", response_model=Profile)
async def get_profile(player_id: Annotated[str, Path(pattern=PLAYER_ID)], caller: PlayerOrServer,
                      session: SessionDep, runtime: RuntimeDep) -> Profile:
    """The player's profile: levels and XP progress per track, combined levels, balances."""
    caller.ensure_acts_for(player_id)
    return await service.profile(session, runtime, caller.app, player_id)
