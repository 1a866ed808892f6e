"""Routes: inboxes (players, brands, streamers), a player's notification preferences, templates."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from questline.kit.ids import ID_PATTERN
from questline.kit.pagination import Page, PageParams, page_params
from questline.kit.routing import RuntimeDep, SessionDep, UnitOfWorkRoute
from questline.notifications import service
from questline.notifications.schemas import (
    LOCALE_PATTERN,
    TYPE_PATTERN,
    InboxStatus,
    Marked,
    NotificationOut,
    PreferencesIn,
    PreferencesOut,
    TemplateIn,
    TemplateOut,
    UnreadCount,
)
from questline.players.schemas import PLAYER_ID_PATTERN
from questline.tenancy.auth import (
    BRAND,
    SERVER,
    STREAMER,
    Caller,
    PlayerOrServer,
    PlayerOrServerWrite,
    ServerOrAdmin,
    ServerOrViewer,
    allow,
)
from questline.tenancy.schemas import Role

router = APIRouter(prefix="/v1", tags=["notifications"], route_class=UnitOfWorkRoute)
Paging = Annotated[PageParams, Depends(page_params)]
PlayerId = Annotated[str, Path(pattern=PLAYER_ID_PATTERN, description="your own id for the player")]
NotificationId = Annotated[str, Path(pattern=ID_PATTERN, description="the notification's id (ntf_…)")]
BrandId = Annotated[str, Path(pattern=ID_PATTERN, description="the brand's id")]
StreamerId = Annotated[str, Path(pattern=ID_PATTERN, description="the streamer's id")]
Status = Annotated[InboxStatus | None, Query(description="default: unread and read (not archived)")]
BrandInbox = Annotated[Caller, allow(SERVER, BRAND, admin_role=Role.VIEWER)]
StreamerInbox = Annotated[Caller, allow(SERVER, STREAMER, admin_role=Role.VIEWER)]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "notification_not_found"}}


# A player's inbox --------------------------------------------------------------------------------


@router.get("/players/{player_id}/notifications", response_model=Page[NotificationOut])
async def player_inbox(player_id: PlayerId, caller: PlayerOrServer, session: SessionDep, paging: Paging,
                       status: Status = None) -> Page[NotificationOut]:
    """The player's notifications, newest first."""
    return await service.inbox(session, caller.app, "player", player_id, status, paging)


@router.get("/players/{player_id}/notifications/unread-count", response_model=UnreadCount)
async def player_unread(player_id: PlayerId, caller: PlayerOrServer, session: SessionDep) -> UnreadCount:
    return await service.unread_count(session, caller.app, "player", player_id)


@router.post("/players/{player_id}/notifications/read-all", response_model=Marked)
async def player_read_all(player_id: PlayerId, caller: PlayerOrServerWrite, session: SessionDep,
                          runtime: RuntimeDep) -> Marked:
    """Mark every unread notification read."""
    return await service.mark_all_read(session, runtime, caller.app, "player", player_id)


@router.post("/players/{player_id}/notifications/{notification_id}/read", response_model=NotificationOut,
             responses=_NOT_FOUND)
async def player_read(player_id: PlayerId, notification_id: NotificationId, caller: PlayerOrServerWrite,
                      session: SessionDep, runtime: RuntimeDep) -> NotificationOut:
    return await service.mark(session, runtime, caller.app, "player", player_id, notification_id, "read")


@router.post("/players/{player_id}/notifications/{notification_id}/archive", response_model=NotificationOut,
             responses=_NOT_FOUND)
async def player_archive(player_id: PlayerId, notification_id: NotificationId, caller: PlayerOrServerWrite,
                         session: SessionDep, runtime: RuntimeDep) -> NotificationOut:
    return await service.mark(session, runtime, caller.app, "player", player_id, notification_id, "archived")


@router.get("/players/{player_id}/notification-preferences", response_model=PreferencesOut)
async def get_preferences(player_id: PlayerId, caller: PlayerOrServer, session: SessionDep) -> PreferencesOut:
    return await service.get_preferences(session, caller.app, player_id)


@router.put("/players/{player_id}/notification-preferences", response_model=PreferencesOut)
async def set_preferences(player_id: PlayerId, body: PreferencesIn, caller: PlayerOrServerWrite, session: SessionDep,
                          runtime: RuntimeDep) -> PreferencesOut:
    """What the player receives where: channels per type, quiet hours (their time zone), a daily digest."""
    return await service.set_preferences(session, runtime, caller.app, player_id, body)


# Brand and streamer inboxes ----------------------------------------------------------------------


@router.get("/brands/{brand_id}/notifications", response_model=Page[NotificationOut])
async def brand_inbox(brand_id: BrandId, caller: BrandInbox, session: SessionDep, paging: Paging,
                      status: Status = None) -> Page[NotificationOut]:
    """The brand's notifications (streamers joining its campaigns, approvals), newest first."""
    return await service.inbox(session, caller.app, "brand", brand_id, status, paging)


@router.get("/brands/{brand_id}/notifications/unread-count", response_model=UnreadCount)
async def brand_unread(brand_id: BrandId, caller: BrandInbox, session: SessionDep) -> UnreadCount:
    return await service.unread_count(session, caller.app, "brand", brand_id)


@router.post("/brands/{brand_id}/notifications/{notification_id}/read", response_model=NotificationOut,
             responses=_NOT_FOUND)
async def brand_read(brand_id: BrandId, notification_id: NotificationId, caller: BrandInbox, session: SessionDep,
                     runtime: RuntimeDep) -> NotificationOut:
    return await service.mark(session, runtime, caller.app, "brand", brand_id, notification_id, "read")


@router.post("/brands/{brand_id}/notifications/{notification_id}/archive", response_model=NotificationOut,
             responses=_NOT_FOUND)
async def brand_archive(brand_id: BrandId, notification_id: NotificationId, caller: BrandInbox, session: SessionDep,
                        runtime: RuntimeDep) -> NotificationOut:
    return await service.mark(session, runtime, caller.app, "brand", brand_id, notification_id, "archived")


@router.get("/streamers/{streamer_id}/notifications", response_model=Page[NotificationOut])
async def streamer_inbox(streamer_id: StreamerId, caller: StreamerInbox, session: SessionDep, paging: Paging,
                         status: Status = None) -> Page[NotificationOut]:
    """The streamer's notifications (earnings), newest first."""
    return await service.inbox(session, caller.app, "streamer", streamer_id, status, paging)


@router.get("/streamers/{streamer_id}/notifications/unread-count", response_model=UnreadCount)
async def streamer_unread(streamer_id: StreamerId, caller: StreamerInbox, session: SessionDep) -> UnreadCount:
    return await service.unread_count(session, caller.app, "streamer", streamer_id)


@router.post("/streamers/{streamer_id}/notifications/{notification_id}/read", response_model=NotificationOut,
             responses=_NOT_FOUND)
async def streamer_read(streamer_id: StreamerId, notification_id: NotificationId, caller: StreamerInbox,
                        session: SessionDep, runtime: RuntimeDep) -> NotificationOut:
    return await service.mark(session, runtime, caller.app, "streamer", streamer_id, notification_id, "read")


# Templates ---------------------------------------------------------------------------------------


TypeParam = Annotated[str, Path(pattern=TYPE_PATTERN, description="a notification type")]
LocaleParam = Annotated[str, Path(pattern=LOCALE_PATTERN, description="en, de, pt-BR, …")]


@router.get("/notification-templates", response_model=list[TemplateOut])
async def templates(caller: ServerOrViewer, session: SessionDep) -> list[TemplateOut]:
    """The app's templates, and the built-in wording of the types it has not replaced."""
    return await service.list_templates(session, caller.app)


@router.put("/notification-templates/{type}/{locale}", response_model=TemplateOut,
            responses={404: {"description": "notification_type_not_found"},
                       422: {"description": "invalid_template"}})
async def set_template(type: TypeParam, locale: LocaleParam, body: TemplateIn, caller: ServerOrAdmin,
                       session: SessionDep, runtime: RuntimeDep) -> TemplateOut:
    """Word a notification type in a locale (Jinja2 over the message's fields; ``text`` is the plain-text part)."""
    return await service.set_template(session, runtime, caller.app, type, locale, body)


@router.delete("/notification-templates/{type}/{locale}", status_code=204,
               responses={404: {"description": "notification_type_not_found, template_not_found"}})
async def delete_template(type: TypeParam, locale: LocaleParam, caller: ServerOrAdmin, session: SessionDep) -> None:
    await service.delete_template(session, caller.app, type, locale)
