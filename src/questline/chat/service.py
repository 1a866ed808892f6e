"""Chat: a room per community and per competition, carried on the live channels.

A message is posted over HTTP, stored, and written to the outbox (``chat.message``) in the same
transaction; the relay's live-channel subscriber publishes it on ``chat:{room}``, so a room has
offsets, bounded history and recovery like every channel, and a message is published once even
when the relay hands it over twice. Only a community's active members (a competition's entrants)
read and write; the server key and app admins read every room and post for a player.

Limits come from the app's chat settings: a message's length, a word filter, and how many
messages a player may post per window (counted from the stored messages, so every process of a
scaled install agrees). Moderators (the server key, app admins, a community's admins in its
room) delete messages, mute (no writing) or ban (no reading either) a player for a time, and
work the queue of players' reports; acting on a reported message resolves its reports.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from questline.chat import repository as repo
from questline.chat.models import ChatMessage, ChatSettings
from questline.chat.schemas import (
    ROOM_PATTERN,
    MessageIn,
    MessageOut,
    ReportIn,
    ReportOut,
    ResolveIn,
    RestrictionIn,
    RestrictionOut,
    SettingsIn,
    SettingsOut,
)
from questline.kit.clock import Clock
from questline.kit.errors import Conflict, Forbidden, NotFound, ProblemError, RateLimited, Unprocessable
from questline.kit.ids import new_id
from questline.kit.pagination import Page, PageParams, build_page
from questline.pipeline import repository as event_log
from questline.players import service as players
from questline.tenancy.auth import PLAYER, Caller

MEMBERS_ONLY = "chat_members_only"


# Rooms -------------------------------------------------------------------------------------------


async def room_of(session: AsyncSession, app_id: str, channel: str) -> str:
    """The room a path names (``community:{id or slug}`` or ``competition:{id}``), by its canonical id."""
    if not re.match(ROOM_PATTERN, channel):
        raise ProblemError(f"unknown chat room {channel[:80]!r}: community:{{id}} or competition:{{id}}",
                           code="unknown_room")
    kind, _, ref = channel.partition(":")
    if kind == "community":
        found = await repo.community_id(session, app_id, ref)
        if found is None:
            raise NotFound(f"community {ref} not found", code="community_not_found")
        return f"community:{found}"
    if not await repo.competition_exists(session, app_id, ref):
        raise NotFound(f"competition {ref} not found", code="competition_not_found")
    return channel


async def in_room(session: AsyncSession, app_id: str, room: str, player_id: str) -> bool:
    """An active member of the community, or an entrant of the competition."""
    kind, _, target = room.partition(":")
    if kind == "community":
        member = await repo.community_member(session, app_id, target, player_id)
        return member is not None and member.status == "active"
    return await repo.entrant(session, app_id, target, player_id)


async def _ensure_in_room(session: AsyncSession, app_id: str, room: str, player_id: str, now: datetime,
                          *, writing: bool) -> None:
    if not await in_room(session, app_id, room, player_id):
        what = "active members" if room.startswith("community:") else "entrants"
        raise Forbidden(f"only {what} take part in {room}'s chat", code=MEMBERS_ONLY)
    held = await repo.restrictions_of(session, app_id, room, player_id, now)
    for kind in ("ban", "mute") if writing else ("ban",):
        found = held.get(kind)
        if found is not None:
            until = found.until.isoformat().replace("+00:00", "Z") if found.until else None
            raise Forbidden(f"player {player_id} is {'banned from' if kind == 'ban' else 'muted in'} {room}"
                            + (f" until {until}" if until else ""),
                            code="chat_banned" if kind == "ban" else "chat_muted", extra={"until": until})


async def authorize_read(session: AsyncSession, caller: Caller, room: str, now: datetime) -> None:
    """May ``caller`` read the room (its history, its live channel)? Refuses with a problem."""
    if caller.is_trusted:
        return
    if caller.kind is not PLAYER or caller.player_id is None:
        raise Forbidden("chat is for players in the room, the server key and admins", code=MEMBERS_ONLY)
    await _ensure_in_room(session, caller.app, room, caller.player_id, now, writing=False)


def _acting_player(caller: Caller, named: str | None) -> str:
    """The player a call is for: the token's own, or the one the server key (or an admin) names."""
    if caller.kind is PLAYER:
        assert caller.player_id is not None
        if named is not None:
            caller.ensure_acts_for(named)
        return caller.player_id
    if named is None:
        raise Unprocessable("the server key names the player_id it acts for", code="player_id_required")
    return named


async def ensure_moderator(session: AsyncSession, caller: Caller, room: str) -> None:
    """The server key, app admins, and a community's admins in its own room."""
    if caller.is_trusted:
        return
    if caller.kind is PLAYER and caller.player_id is not None and room.startswith("community:"):
        member = await repo.community_member(session, caller.app, room.partition(":")[2], caller.player_id)
        if member is not None and member.status == "active" and member.role == "admin":
            return
    raise Forbidden(f"moderating {room} is for its community's admins, the server key and app admins",
                    code="moderator_required")


# Settings ----------------------------------------------------------------------------------------


def _settings_out(row: ChatSettings | None) -> SettingsOut:
    if row is None:
        return SettingsOut(updated_at=None)
    return SettingsOut(blocked_words=list(row.blocked_words), max_length=row.max_length, rate_count=row.rate_count,
                       rate_seconds=row.rate_seconds, updated_at=row.updated_at)


async def get_settings(session: AsyncSession, app_id: str) -> SettingsOut:
    return _settings_out(await repo.settings(session, app_id))


async def set_settings(session: AsyncSession, clock: Clock, app_id: str, body: SettingsIn) -> SettingsOut:
    await repo.save_settings(session, {"app_id": app_id, "blocked_words": body.blocked_words,
                                       "max_length": body.max_length, "rate_count": body.rate_count,
                                       "rate_seconds": body.rate_seconds, "updated_at": clock.now()})
    return await get_settings(session, app_id)


def blocked_word(words: list[str], text: str) -> str | None:
    """The first blocked word ``text`` contains as a whole word (any case), or None."""
    if not words:
        return None
    pattern = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    found = re.search(rf"(?<!\w)(?:{pattern})(?!\w)", text.lower())
    return found.group(0) if found else None


# Messages ----------------------------------------------------------------------------------------


def _out(row: ChatMessage) -> MessageOut:
    return MessageOut(id=row.id, room=row.room, player_id=row.player_id,
                      body=None if row.deleted_at else row.body, created_at=row.created_at,
                      deleted_at=row.deleted_at)


async def _emit(session: AsyncSession, app_id: str, type_: str, player_id: str, payload: dict[str, Any],
                now: datetime) -> None:
    # The author's id on the outbox row: erasing the player erases what is still queued. The room
    # orders the relay partition: a room's messages and deletions go out in the order they were made.
    await event_log.add_outbox(session, [event_log.outbox_row(app_id, type_, player_id, payload, now,
                                                              order_key=f"chat:{payload['room']}")])


async def post(session: AsyncSession, clock: Clock, caller: Caller, channel: str, body: MessageIn) -> MessageOut:
    """Post a message: refused for non-members (403), the muted and banned (403), too long or with a
    blocked word (422), or over the player's rate (429)."""
    app_id = caller.app
    room = await room_of(session, app_id, channel)
    author = _acting_player(caller, body.player_id)
    now = clock.now()
    await _ensure_in_room(session, app_id, room, author, now, writing=True)
    rules = await get_settings(session, app_id)
    if len(body.body) > rules.max_length:
        raise Unprocessable(f"messages are at most {rules.max_length} characters", code="message_too_long",
                            extra={"max_length": rules.max_length})
    word = blocked_word(rules.blocked_words, body.body)
    if word is not None:
        raise Unprocessable("the message contains a word this app does not allow", code="blocked_word")
    since = now - timedelta(seconds=rules.rate_seconds)
    if await repo.posted_since(session, app_id, author, since) >= rules.rate_count:
        oldest = await repo.oldest_since(session, app_id, author, since) or now
        wait = max(1, math.ceil((oldest + timedelta(seconds=rules.rate_seconds) - now).total_seconds()))
        raise RateLimited(f"at most {rules.rate_count} messages per {rules.rate_seconds} s; try again in {wait} s",
                          retry_after=wait, code="chat_rate_limited")
    await players.ensure_players(session, clock, app_id, [author])
    message_id = new_id("chm")
    await repo.add_message(session, {"id": message_id, "app_id": app_id, "room": room, "player_id": author,
                                     "body": body.body, "created_at": now, "deleted_at": None, "deleted_by": None})
    found = await repo.message(session, app_id, room, message_id)
    assert found is not None
    out = _out(found)
    await _emit(session, app_id, "chat.message", author, {"room": room, "message": out.model_dump(mode="json")}, now)
    return out


async def history(session: AsyncSession, clock: Clock, caller: Caller, channel: str,
                  page: PageParams) -> Page[MessageOut]:
    """The room's messages, newest first (deleted ones without their text)."""
    room = await room_of(session, caller.app, channel)
    await authorize_read(session, caller, room, clock.now())
    rows = await repo.history(session, caller.app, room, page.after_str(), page.limit)
    built = build_page(list(rows), page.limit, lambda m: [m.id])
    return Page[MessageOut](items=[_out(m) for m in built.items], next_cursor=built.next_cursor)


async def _message(session: AsyncSession, app_id: str, room: str, message_id: str) -> ChatMessage:
    found = await repo.message(session, app_id, room, message_id)
    if found is None:
        raise NotFound(f"message {message_id} not found in {room}", code="message_not_found")
    return found


async def _delete(session: AsyncSession, found: ChatMessage, by: str, now: datetime) -> None:
    if await repo.delete_message(session, found.app_id, found.id, now, by):
        await _emit(session, found.app_id, "chat.deleted", found.player_id,
                    {"room": found.room, "message_id": found.id}, now)


async def delete(session: AsyncSession, clock: Clock, caller: Caller, channel: str, message_id: str) -> None:
    """A moderator deletes a message (its open reports are resolved), or the author their own."""
    room = await room_of(session, caller.app, channel)
    found = await _message(session, caller.app, room, message_id)
    if not (caller.kind is PLAYER and caller.player_id == found.player_id):
        await ensure_moderator(session, caller, room)
    now = clock.now()
    await _delete(session, found, caller.identity, now)
    await repo.resolve_reports(session, caller.app, found.id, "delete", caller.identity, now)


# Restrictions ------------------------------------------------------------------------------------


async def restrict(session: AsyncSession, clock: Clock, caller: Caller, channel: str, player_id: str,
                   body: RestrictionIn) -> RestrictionOut:
    room = await room_of(session, caller.app, channel)
    await ensure_moderator(session, caller, room)
    return await _restrict(session, clock, caller, room, player_id, body.kind, body.seconds, body.reason)


async def _restrict(session: AsyncSession, clock: Clock, caller: Caller, room: str, player_id: str, kind: str,
                    seconds: int | None, reason: str | None) -> RestrictionOut:
    if caller.kind is PLAYER and caller.player_id == player_id:
        raise Unprocessable("a moderator does not restrict themself", code="cannot_restrict_self")
    await players.get_player(session, caller.app, player_id)
    now = clock.now()
    await repo.save_restriction(session, {
        "app_id": caller.app, "room": room, "player_id": player_id, "kind": kind,
        "until": now + timedelta(seconds=seconds) if seconds else None, "reason": reason,
        "created_by": caller.identity, "created_at": now})
    held = await repo.restrictions_of(session, caller.app, room, player_id, now)
    return RestrictionOut.model_validate(held[kind])


async def lift(session: AsyncSession, caller: Caller, channel: str, player_id: str, kind: str) -> None:
    room = await room_of(session, caller.app, channel)
    await ensure_moderator(session, caller, room)
    if not await repo.lift(session, caller.app, room, player_id, kind):
        raise NotFound(f"player {player_id} has no {kind} in {room}", code="restriction_not_found")


async def restrictions(session: AsyncSession, clock: Clock, caller: Caller, channel: str) -> list[RestrictionOut]:
    room = await room_of(session, caller.app, channel)
    await ensure_moderator(session, caller, room)
    return [RestrictionOut.model_validate(r) for r in await repo.restrictions(session, caller.app, room, clock.now())]


# Reports -----------------------------------------------------------------------------------------


async def report(session: AsyncSession, clock: Clock, caller: Caller, channel: str, message_id: str,
                 body: ReportIn) -> tuple[ReportOut, bool]:
    """A reader reports a message into the moderation queue (once per reader and message)."""
    app_id = caller.app
    room = await room_of(session, app_id, channel)
    reporter = _acting_player(caller, body.player_id)
    now = clock.now()
    if not await in_room(session, app_id, room, reporter):
        raise Forbidden(f"only players in {room} report its messages", code=MEMBERS_ONLY)
    found = await _message(session, app_id, room, message_id)
    if found.player_id == reporter:
        raise Unprocessable("players report other players' messages", code="own_message")
    if found.deleted_at is not None:
        raise Conflict(f"message {message_id} was deleted already", code="message_deleted")
    fresh = await repo.add_report(session, {
        "id": new_id("chr"), "app_id": app_id, "room": room, "message_id": found.id, "player_id": reporter,
        "author_id": found.player_id, "reason": body.reason, "status": "open", "action": None,
        "resolved_by": None, "resolved_at": None, "created_at": now})
    row = await repo.report_of(session, app_id, found.id, reporter)
    assert row is not None
    return ReportOut.model_validate(row), fresh


async def queue(session: AsyncSession, caller: Caller, channel: str | None, status: str | None,
                page: PageParams) -> Page[ReportOut]:
    """Reports, oldest first: every room for the server key and admins; a community admin's own rooms."""
    rooms: list[str] | None = None
    if channel is not None:
        room = await room_of(session, caller.app, channel)
        await ensure_moderator(session, caller, room)
        rooms = [room]
    elif not caller.is_trusted:
        assert caller.player_id is not None
        rooms = await repo.admin_rooms(session, caller.app, caller.player_id)
        if not rooms:
            raise Forbidden("the moderation queue is for moderators", code="moderator_required")
    rows = await repo.reports(session, caller.app, rooms, status, page.after_str(), page.limit)
    built = build_page(list(rows), page.limit, lambda r: [r.id])
    return Page[ReportOut](items=[ReportOut.model_validate(r) for r in built.items], next_cursor=built.next_cursor)


async def resolve(session: AsyncSession, clock: Clock, caller: Caller, report_id: str, body: ResolveIn) -> ReportOut:
    """Act on a report: dismiss it, delete the message, mute or ban its author; every open report
    of that message is resolved with the action."""
    found = await repo.report(session, caller.app, report_id)
    if found is None:
        raise NotFound(f"report {report_id} not found", code="report_not_found")
    await ensure_moderator(session, caller, found.room)
    if found.status != "open":
        raise Conflict(f"report {report_id} was resolved already ({found.action})", code="report_resolved")
    now = clock.now()
    if body.action == "delete":
        await _delete(session, await _message(session, caller.app, found.room, found.message_id),
                      caller.identity, now)
    elif body.action in ("mute", "ban"):
        await _restrict(session, clock, caller, found.room, found.author_id, body.action, body.seconds,
                        body.note or found.reason)
    await repo.resolve_reports(session, caller.app, found.message_id, body.action, caller.identity, now)
    fresh = await repo.report(session, caller.app, report_id)
    assert fresh is not None
    return ReportOut.model_validate(fresh)
