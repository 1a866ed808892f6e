"""Routes: a streamer's G-Keys (with a summary by state), one key, its debug view, force-unlock, energy."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from questline.gkeys import service
from questline.gkeys.schemas import EnergyOut, KeyDebug, KeyOut, KeysOut, UnlockOut
from questline.kit.ids import ID_PATTERN
from questline.kit.routing import ClockDep, SessionDep, UnitOfWorkRoute
from questline.sponsors.schemas import CATEGORY_PATTERN
from questline.tenancy.auth import SERVER, STREAMER, Caller, ServerOrAdmin, ServerOrViewer, allow
from questline.tenancy.schemas import Role

router = APIRouter(prefix="/v1/streamers/{streamer_id}", tags=["g-keys and energy"], route_class=UnitOfWorkRoute)
StreamerId = Annotated[str, Path(pattern=ID_PATTERN, description="a streamer's id (str_…)")]
Category = Annotated[str, Path(pattern=CATEGORY_PATTERN, description="a G-Key category, e.g. gaming")]
# The streamer (their own only: another streamer's id is a 404), the server key, app viewers and up.
StreamerReader = Annotated[Caller, allow(SERVER, STREAMER, admin_role=Role.VIEWER)]


@router.get("/keys", response_model=KeysOut)
async def keys(streamer_id: StreamerId, caller: StreamerReader, session: SessionDep, clock: ClockDep) -> KeysOut:
    """Every G-Key of the streamer (one per category of the app) and how many are in each state."""
    return await service.keys_of(session, clock, caller.app, streamer_id)


@router.get("/keys/{category}", response_model=KeyOut)
async def key(streamer_id: StreamerId, category: Category, caller: StreamerReader, session: SessionDep,
              clock: ClockDep) -> KeyOut:
    return await service.key_of(session, clock, caller.app, streamer_id, category)


@router.get("/keys/{category}/debug", response_model=KeyDebug)
async def debug(streamer_id: StreamerId, category: Category, caller: ServerOrViewer, session: SessionDep,
                clock: ClockDep) -> KeyDebug:
    """Why the key is in its state: what it is locked with, how long its cooloff runs, who may use it now."""
    return await service.debug_key(session, clock, caller.app, streamer_id, category)


@router.post("/keys/{category}/unlock", response_model=UnlockOut)
async def unlock(streamer_id: StreamerId, category: Category, caller: ServerOrAdmin, session: SessionDep,
                 clock: ClockDep) -> UnlockOut:
    """Force the key available whatever its state (an admin's repair tool; announced as gkey.force_unlocked)."""
    return await service.force_unlock(session, clock, caller.app, streamer_id, category, caller.identity)


@router.get("/energy", response_model=EnergyOut)
async def energy(streamer_id: StreamerId, caller: StreamerReader, session: SessionDep, clock: ClockDep) -> EnergyOut:
    """Energy packs now: current of maximum, used today, the next local-midnight reset (and regeneration)."""
    return await service.energy_of(session, clock, caller.app, streamer_id)
