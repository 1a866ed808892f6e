"""Routes: a room's messages (post, history, delete), reports, mutes and bans, the app's chat settings."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from questline.chat import service
from questline.chat.schemas import (
    ROOM_PATTERN,
    MessageIn,
    MessageOut,
    ReportIn,
    ReportOut,
    ReportStatus,
    ResolveIn,
    RestrictionIn,
    RestrictionKind,
    RestrictionOut,
    SettingsIn,
    SettingsOut,
)
from questline.kit.ids import ID_PATTERN
from questline.kit.pagination import Page, PageParams, page_params
from questline.kit.routing import ClockDep, SessionDep, UnitOfWorkRoute
from questline.players.schemas import PLAYER_ID_PATTERN
from questline.tenancy.auth import PLAYER, SERVER, Caller, ServerOrAdmin, ServerOrViewer, allow
from questline.tenancy.schemas import Role

router = APIRouter(prefix="/v1/chat", tags=["chat"], route_class=UnitOfWorkRoute)
Channel = Annotated[str, Path(pattern=ROOM_PATTERN, max_length=80,
                              description="community:{id or slug} or competition:{id}")]
MessageId = Annotated[str, Path(pattern=ID_PATTERN, description="the message's id (chm_…)")]
ReportId = Annotated[str, Path(pattern=ID_PATTERN, description="the report's id (chr_…)")]
MemberId = Annotated[str, Path(pattern=PLAYER_ID_PATTERN, description="the player's id")]
Paging = Annotated[PageParams, Depends(page_params)]
# Players (in the room), the server key (for a player) and admins; the service checks the room.
Reader = Annotated[Caller, allow(SERVER, PLAYER, admin_role=Role.VIEWER)]
Writer = Annotated[Caller, allow(SERVER, PLAYER, admin_role=Role.ADMIN)]
_ROOM: dict[int | str, dict[str, Any]] = {
    400: {"description": "unknown_room"},
    403: {"description": "chat_members_only, chat_banned"},
    404: {"description": "community_not_found, competition_not_found"}}
_MODERATE: dict[int | str, dict[str, Any]] = {
    403: {"description": "moderator_required"},
    404: {"description": "community_not_found, competition_not_found, message_not_found, player_not_found"}}


@router.post("/{channel}/messages", response_model=MessageOut, status_code=201,
             responses={**_ROOM, 403: {"description": "chat_members_only, chat_muted, chat_banned"},
                        422: {"description": "message_too_long, blocked_word, player_id_required"},
                        429: {"description": "chat_rate_limited"}})
async def post_message(channel: Channel, body: MessageIn, caller: Writer, session: SessionDep,
                       clock: ClockDep) -> MessageOut:
    """Post a message to a room (a player for themself; the server key names ``player_id``). It is
    stored and published on the live channel ``chat:{room}``."""
    return await service.post(session, clock, caller, channel, body)


@router.get("/{channel}/messages", response_model=Page[MessageOut], responses=_ROOM)
async def messages(channel: Channel, caller: Reader, session: SessionDep, clock: ClockDep,
                   paging: Paging) -> Page[MessageOut]:
    """The room's messages, newest first, with cursor paging (deleted ones without their text)."""
    return await service.history(session, clock, caller, channel, paging)


@router.delete("/{channel}/messages/{message_id}", status_code=204, responses=_MODERATE)
async def delete_message(channel: Channel, message_id: MessageId, caller: Writer, session: SessionDep,
                         clock: ClockDep) -> None:
    """Delete a message: its author, or a moderator (which resolves the message's open reports)."""
    await service.delete(session, clock, caller, channel, message_id)


@router.post("/{channel}/messages/{message_id}/reports", response_model=ReportOut, status_code=201,
             responses={200: {"model": ReportOut, "description": "reported already"},
                        **_ROOM, 404: {"description": "message_not_found"},
                        409: {"description": "message_deleted"},
                        422: {"description": "own_message, player_id_required"}})
async def report_message(channel: Channel, message_id: MessageId, body: ReportIn, caller: Writer,
                         session: SessionDep, clock: ClockDep, response: Response) -> ReportOut:
    """Report a message to the room's moderators (once per player and message)."""
    out, fresh = await service.report(session, clock, caller, channel, message_id, body)
    response.status_code = 201 if fresh else 200
    return out


@router.get("/{channel}/restrictions", response_model=list[RestrictionOut], responses=_MODERATE)
async def restrictions(channel: Channel, caller: Writer, session: SessionDep, clock: ClockDep) -> list[RestrictionOut]:
    """The mutes and bans in force in the room."""
    return await service.restrictions(session, clock, caller, channel)


@router.put("/{channel}/restrictions/{member}", response_model=RestrictionOut,
            responses={**_MODERATE, 422: {"description": "cannot_restrict_self"}})
async def restrict(channel: Channel, member: MemberId, body: RestrictionIn, caller: Writer, session: SessionDep,
                   clock: ClockDep) -> RestrictionOut:
    """Mute (no writing) or ban (no reading or writing) a player in the room, for ``seconds`` or until lifted."""
    return await service.restrict(session, clock, caller, channel, member, body)


@router.delete("/{channel}/restrictions/{member}", status_code=204,
               responses={**_MODERATE, 404: {"description": "restriction_not_found"}})
async def lift(channel: Channel, member: MemberId, caller: Writer, session: SessionDep,
               kind: Annotated[RestrictionKind, Query(description="mute or ban")]) -> None:
    await service.lift(session, caller, channel, member, kind)


@router.get("/reports", response_model=Page[ReportOut],
            responses={403: {"description": "moderator_required"}, 400: {"description": "unknown_room"}})
async def reports(caller: Writer, session: SessionDep, paging: Paging,
                  channel: Annotated[str | None, Query(pattern=ROOM_PATTERN, max_length=80)] = None,
                  status: ReportStatus | None = None) -> Page[ReportOut]:
    """The moderation queue, oldest first: every room for the server key and admins, a community
    admin's own rooms for them."""
    return await service.queue(session, caller, channel, status, paging)


@router.post("/reports/{report_id}/resolve", response_model=ReportOut,
             responses={403: {"description": "moderator_required"}, 404: {"description": "report_not_found"},
                        409: {"description": "report_resolved"}})
async def resolve(report_id: ReportId, body: ResolveIn, caller: Writer, session: SessionDep,
                  clock: ClockDep) -> ReportOut:
    """Act on a report (dismiss, delete the message, mute or ban its author): the message's open reports resolve."""
    return await service.resolve(session, clock, caller, report_id, body)


@router.get("/settings", response_model=SettingsOut)
async def get_settings(caller: ServerOrViewer, session: SessionDep) -> SettingsOut:
    return await service.get_settings(session, caller.app)


@router.put("/settings", response_model=SettingsOut)
async def set_settings(body: SettingsIn, caller: ServerOrAdmin, session: SessionDep, clock: ClockDep) -> SettingsOut:
    """The app's chat rules: blocked words, the longest message, messages per player per window."""
    return await service.set_settings(session, clock, caller.app, body)
