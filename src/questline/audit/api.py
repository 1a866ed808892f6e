"""The audit log, for the owners of an app's organization."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from questline.audit import service
from questline.audit.schemas import AuditEntryOut
from questline.kit.pagination import Page, PageParams, page_params
from questline.kit.routing import SessionDep, UnitOfWorkRoute
from questline.tenancy.auth import Caller, allow
from questline.tenancy.schemas import Role

router = APIRouter(prefix="/v1", tags=["audit"], route_class=UnitOfWorkRoute)


@router.get("/audit", response_model=Page[AuditEntryOut])
async def audit_log(
    caller: Annotated[Caller, allow(admin_role=Role.OWNER)], session: SessionDep,
    paging: Annotated[PageParams, Depends(page_params)],
    actor: Annotated[str | None, Query(max_length=64, description="a server key's id or an admin's id")] = None,
    action: Annotated[str | None, Query(max_length=100, description="an operation id, e.g. ledger_adjust")] = None,
) -> Page[AuditEntryOut]:
    """What server keys and admins changed in this app (and its organization), newest first."""
    page = await service.entries(session, caller, actor=actor, action=action, paging=paging)
    return Page[AuditEntryOut](items=[AuditEntryOut.model_validate(e) for e in page.items],
                               next_cursor=page.next_cursor)
