"""Routes: an app's conflict rules (app admins and the server key)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, status

from questline.conflicts import service
from questline.conflicts.schemas import RuleIn, RuleOut
from questline.kit.ids import ID_PATTERN
from questline.kit.pagination import Page, PageParams, page_params
from questline.kit.routing import ClockDep, SessionDep, UnitOfWorkRoute
from questline.tenancy.auth import ServerOrAdmin, ServerOrViewer

router = APIRouter(prefix="/v1/conflict-rules", tags=["conflict rules"], route_class=UnitOfWorkRoute)
RuleId = Annotated[str, Path(pattern=ID_PATTERN, description="a conflict rule's id (cfr_…)")]
Paging = Annotated[PageParams, Depends(page_params)]


@router.get("", response_model=Page[RuleOut])
async def list_rules(caller: ServerOrViewer, session: SessionDep, paging: Paging) -> Page[RuleOut]:
    return await service.list_rules(session, caller.app, paging)


@router.post("", response_model=RuleOut, status_code=201)
async def create(body: RuleIn, caller: ServerOrAdmin, session: SessionDep, clock: ClockDep) -> RuleOut:
    """A rule of kind time_overlap, category_conflict, platform_exclusivity or custom (a typed condition),
    checked on join and/or approval."""
    return await service.create(session, clock, caller.app, body)


@router.get("/{rule_id}", response_model=RuleOut)
async def get(rule_id: RuleId, caller: ServerOrViewer, session: SessionDep) -> RuleOut:
    return await service.get(session, caller.app, rule_id)


@router.put("/{rule_id}", response_model=RuleOut)
async def replace(rule_id: RuleId, body: RuleIn, caller: ServerOrAdmin, session: SessionDep,
                  clock: ClockDep) -> RuleOut:
    """Replace a rule (set ``enabled: false`` to switch it off)."""
    return await service.replace(session, clock, caller.app, rule_id, body)


@router.delete("/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete(rule_id: RuleId, caller: ServerOrAdmin, session: SessionDep) -> None:
    await service.delete(session, caller.app, rule_id)
