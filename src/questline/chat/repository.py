"""Every query of chat (and the membership reads it needs from communities and competitions)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.chat.models import ChatMessage, ChatReport, ChatRestriction, ChatSettings
from questline.communities.models import Community, CommunityMember
from questline.competitions.models import Competition, Participant
from questline.kit.db import insert_ignore, upsert

# Rooms and who is in them ------------------------------------------------------------------------


async def community_id(session: AsyncSession, app_id: str, ref: str) -> str | None:
    """The community's id from its id or slug."""
    found = await session.execute(sa.select(Community.id).where(
        Community.app_id == app_id, sa.or_(Community.id == ref, Community.slug == ref)))
    return found.scalar_one_or_none()


async def competition_exists(session: AsyncSession, app_id: str, competition_id: str) -> bool:
    found = await session.execute(sa.select(Competition.id).where(Competition.app_id == app_id,
                                                                  Competition.id == competition_id))
    return found.first() is not None


async def community_member(session: AsyncSession, app_id: str, community: str,
                           player_id: str) -> CommunityMember | None:
    return (await session.execute(sa.select(CommunityMember).where(
        CommunityMember.app_id == app_id, CommunityMember.community_id == community,
        CommunityMember.player_id == player_id))).scalar_one_or_none()


async def entrant(session: AsyncSession, app_id: str, competition_id: str, player_id: str) -> bool:
    found = await session.execute(sa.select(Participant.player_id).where(
        Participant.app_id == app_id, Participant.competition_id == competition_id,
        Participant.player_id == player_id, Participant.status == "joined"))
    return found.first() is not None


async def active_members(session: AsyncSession, app_id: str, community: str) -> list[str]:
    return list((await session.execute(sa.select(CommunityMember.player_id).where(
        CommunityMember.app_id == app_id, CommunityMember.community_id == community,
        CommunityMember.status == "active").order_by(CommunityMember.player_id))).scalars().all())


# Messages ----------------------------------------------------------------------------------------


async def add_message(session: AsyncSession, row: dict[str, Any]) -> None:
    await session.execute(sa.insert(ChatMessage).values(**row))


async def message(session: AsyncSession, app_id: str, room: str, message_id: str) -> ChatMessage | None:
    return (await session.execute(sa.select(ChatMessage).where(
        ChatMessage.app_id == app_id, ChatMessage.room == room, ChatMessage.id == message_id)
        .execution_options(populate_existing=True))).scalar_one_or_none()


async def history(session: AsyncSession, app_id: str, room: str, before: str | None,
                  limit: int) -> Sequence[ChatMessage]:
    """Newest first; ``before``: the last id of the previous page."""
    stmt = sa.select(ChatMessage).where(ChatMessage.app_id == app_id, ChatMessage.room == room)
    if before is not None:
        stmt = stmt.where(ChatMessage.id < before)
    return (await session.execute(stmt.order_by(ChatMessage.id.desc()).limit(limit + 1))).scalars().all()


async def posted_since(session: AsyncSession, app_id: str, player_id: str, since: datetime) -> int:
    """How many messages the player posted (in any room of the app) since a time."""
    return int((await session.execute(sa.select(sa.func.count()).select_from(ChatMessage).where(
        ChatMessage.app_id == app_id, ChatMessage.player_id == player_id,
        ChatMessage.created_at > since))).scalar_one())


async def oldest_since(session: AsyncSession, app_id: str, player_id: str, since: datetime) -> datetime | None:
    return (await session.execute(sa.select(sa.func.min(ChatMessage.created_at)).where(
        ChatMessage.app_id == app_id, ChatMessage.player_id == player_id,
        ChatMessage.created_at > since))).scalar_one_or_none()


async def delete_message(session: AsyncSession, app_id: str, message_id: str, at: datetime, by: str) -> bool:
    """Blank a message's text (once); False when it was deleted already."""
    result = await session.execute(sa.update(ChatMessage).where(
        ChatMessage.app_id == app_id, ChatMessage.id == message_id, ChatMessage.deleted_at.is_(None))
        .values(body="", deleted_at=at, deleted_by=by).execution_options(synchronize_session=False))
    return bool(result.rowcount)  # type: ignore[attr-defined]


# Restrictions ------------------------------------------------------------------------------------


async def restrictions_of(session: AsyncSession, app_id: str, room: str, player_id: str,
                          now: datetime) -> dict[str, ChatRestriction]:
    """The player's restrictions in force in the room, by kind."""
    rows = (await session.execute(sa.select(ChatRestriction).where(
        ChatRestriction.app_id == app_id, ChatRestriction.room == room, ChatRestriction.player_id == player_id,
        sa.or_(ChatRestriction.until.is_(None), ChatRestriction.until > now)))).scalars().all()
    return {r.kind: r for r in rows}


async def restrictions(session: AsyncSession, app_id: str, room: str, now: datetime) -> Sequence[ChatRestriction]:
    return (await session.execute(sa.select(ChatRestriction).where(
        ChatRestriction.app_id == app_id, ChatRestriction.room == room,
        sa.or_(ChatRestriction.until.is_(None), ChatRestriction.until > now))
        .order_by(ChatRestriction.player_id, ChatRestriction.kind))).scalars().all()


async def save_restriction(session: AsyncSession, row: dict[str, Any]) -> None:
    stmt = upsert(session, ChatRestriction).values(**row)
    keys = ("app_id", "room", "player_id", "kind")
    await session.execute(stmt.on_conflict_do_update(
        index_elements=list(keys), set_={k: stmt.excluded[k] for k in row if k not in keys}))


async def lift(session: AsyncSession, app_id: str, room: str, player_id: str, kind: str) -> bool:
    result = await session.execute(sa.delete(ChatRestriction).where(
        ChatRestriction.app_id == app_id, ChatRestriction.room == room, ChatRestriction.player_id == player_id,
        ChatRestriction.kind == kind))
    return bool(result.rowcount)  # type: ignore[attr-defined]


# Reports -----------------------------------------------------------------------------------------


async def add_report(session: AsyncSession, row: dict[str, Any]) -> bool:
    """False when this player reported this message already."""
    result = await session.execute(insert_ignore(session, ChatReport).values(**row))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def report(session: AsyncSession, app_id: str, report_id: str) -> ChatReport | None:
    return (await session.execute(sa.select(ChatReport).where(
        ChatReport.app_id == app_id, ChatReport.id == report_id)
        .execution_options(populate_existing=True))).scalar_one_or_none()


async def report_of(session: AsyncSession, app_id: str, message_id: str, player_id: str) -> ChatReport | None:
    return (await session.execute(sa.select(ChatReport).where(
        ChatReport.app_id == app_id, ChatReport.message_id == message_id, ChatReport.player_id == player_id)
        .execution_options(populate_existing=True))).scalar_one_or_none()


async def reports(session: AsyncSession, app_id: str, rooms: Sequence[str] | None, status: str | None,
                  after: str | None, limit: int) -> Sequence[ChatReport]:
    """Oldest first (a queue); ``rooms`` None: every room of the app."""
    stmt = sa.select(ChatReport).where(ChatReport.app_id == app_id)
    if rooms is not None:
        stmt = stmt.where(ChatReport.room.in_(list(rooms)))
    if status is not None:
        stmt = stmt.where(ChatReport.status == status)
    if after is not None:
        stmt = stmt.where(ChatReport.id > after)
    return (await session.execute(stmt.order_by(ChatReport.id).limit(limit + 1))).scalars().all()


async def resolve_reports(session: AsyncSession, app_id: str, message_id: str, action: str, by: str,
                          at: datetime) -> int:
    """Resolve every open report of a message with the moderator's action."""
    result = await session.execute(sa.update(ChatReport).where(
        ChatReport.app_id == app_id, ChatReport.message_id == message_id, ChatReport.status == "open")
        .values(status="resolved", action=action, resolved_by=by, resolved_at=at)
        .execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def admin_rooms(session: AsyncSession, app_id: str, player_id: str) -> list[str]:
    """The community rooms a player administers."""
    ids = (await session.execute(sa.select(CommunityMember.community_id).where(
        CommunityMember.app_id == app_id, CommunityMember.player_id == player_id,
        CommunityMember.status == "active", CommunityMember.role == "admin"))).scalars().all()
    return [f"community:{c}" for c in ids]


# Settings ----------------------------------------------------------------------------------------


async def settings(session: AsyncSession, app_id: str) -> ChatSettings | None:
    return (await session.execute(sa.select(ChatSettings).where(ChatSettings.app_id == app_id)
                                  .execution_options(populate_existing=True))).scalar_one_or_none()


async def save_settings(session: AsyncSession, row: dict[str, Any]) -> None:
    stmt = upsert(session, ChatSettings).values(**row)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=["app_id"], set_={k: stmt.excluded[k] for k in row if k != "app_id"}))
