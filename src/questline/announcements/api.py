"""Routes: announcements (create, list, read, edit, withdraw)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from questline.announcements import service
from questline.announcements.schemas import AnnouncementIn, AnnouncementOut, AnnouncementUpdate, Status, TargetKind
from questline.kit.ids import ID_PATTERN
from questline.kit.pagination import Page, PageParams, page_params
from questline.kit.routing import RuntimeDep, SessionDep, UnitOfWorkRoute
from questline.tenancy.auth import PLAYER, SERVER, Caller, ServerOrViewer, allow
from questline.tenancy.schemas import Role

router = APIRouter(prefix="/v1/announcements", tags=["announcements"], route_class=UnitOfWorkRoute)
AnnouncementId = Annotated[str, Path(pattern=ID_PATTERN, description="the announcement's id (ann_…)")]
Paging = Annotated[PageParams, Depends(page_params)]
# The server key and app admins announce anywhere; a player only to a community they administer.
Announcer = Annotated[Caller, allow(SERVER, PLAYER, admin_role=Role.ADMIN)]
Reader = Annotated[Caller, allow(SERVER, PLAYER, admin_role=Role.VIEWER)]
_ONE: dict[int | str, dict[str, Any]] = {404: {"description": "announcement_not_found"}}


@router.post("", response_model=AnnouncementOut, status_code=201,
             responses={400: {"description": "unknown_room"}, 403: {"description": "announcer_required"},
                        404: {"description": "community_not_found, competition_not_found"}})
async def create(body: AnnouncementIn, caller: Announcer, session: SessionDep, runtime: RuntimeDep) -> AnnouncementOut:
    """Announce to the app, a community or a competition: now, or at ``send_at`` (a scheduled job
    sends it). It reaches each recipient's inbox as their notification preferences allow."""
    return await service.create(session, runtime, caller, body)


@router.get("", response_model=Page[AnnouncementOut])
async def list_announcements(caller: ServerOrViewer, session: SessionDep, paging: Paging,
                             target_kind: TargetKind | None = None,
                             target_id: Annotated[str | None, Query(max_length=40)] = None,
                             status: Status | None = None) -> Page[AnnouncementOut]:
    """The app's announcements, newest first."""
    return await service.list_announcements(session, caller.app, target_kind, target_id, status, paging)


@router.get("/{announcement_id}", response_model=AnnouncementOut, responses=_ONE)
async def get_announcement(announcement_id: AnnouncementId, caller: Reader, session: SessionDep) -> AnnouncementOut:
    return await service.get(session, caller, announcement_id)


@router.patch("/{announcement_id}", response_model=AnnouncementOut,
              responses={**_ONE, 409: {"description": "announcement_withdrawn, announcement_sent, "
                                                      "announcement_changed"}})
async def update(announcement_id: AnnouncementId, body: AnnouncementUpdate, caller: Announcer, session: SessionDep,
                 runtime: RuntimeDep) -> AnnouncementOut:
    """Edit the title or body (a sent announcement's inbox entries are reworded), or a scheduled one's ``send_at``."""
    return await service.update(session, runtime, caller, announcement_id, body)


@router.post("/{announcement_id}/withdraw", response_model=AnnouncementOut,
             responses={**_ONE, 409: {"description": "announcement_withdrawn"}})
async def withdraw(announcement_id: AnnouncementId, caller: Announcer, session: SessionDep,
                   runtime: RuntimeDep) -> AnnouncementOut:
    """Withdraw: a scheduled announcement is never sent; a sent one leaves every inbox."""
    return await service.withdraw(session, runtime, caller, announcement_id)
