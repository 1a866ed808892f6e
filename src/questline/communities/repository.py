"""Every query of the communities area."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.communities.models import Community, CommunityMember
from questline.kit.db import insert_ignore

MEMBER_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32: no I, L, O, U


async def insert_community(session: AsyncSession, row: dict[str, Any]) -> bool:
    """False when the slug is taken in the app."""
    result = await session.execute(insert_ignore(session, Community.__table__).values(**row)
                                   .returning(Community.__table__.c.id))
    return result.scalar_one_or_none() is not None


async def find(session: AsyncSession, app_id: str, id_or_slug: str) -> Community | None:
    return (await session.execute(
        sa.select(Community).where(Community.app_id == app_id,
                                   sa.or_(Community.id == id_or_slug, Community.slug == id_or_slug))
        .execution_options(populate_existing=True)
    )).scalar_one_or_none()


async def slug_taken(session: AsyncSession, app_id: str, slug: str) -> bool:
    found = await session.execute(sa.select(Community.id).where(Community.app_id == app_id, Community.slug == slug))
    return found.first() is not None


async def page(session: AsyncSession, app_id: str, after: str | None, limit: int) -> Sequence[Community]:
    stmt = sa.select(Community).where(Community.app_id == app_id).order_by(Community.id).limit(limit + 1)
    if after is not None:
        stmt = stmt.where(Community.id > after)
    return (await session.execute(stmt)).scalars().all()


async def update_community(session: AsyncSession, community_id: str, values: dict[str, Any]) -> None:
    await session.execute(sa.update(Community).where(Community.id == community_id).values(**values))


async def take_seat(session: AsyncSession, community_id: str) -> bool:
    """Count one more active member unless the community is full."""
    result = await session.execute(
        sa.update(Community)
        .where(Community.id == community_id,
               sa.or_(Community.max_members.is_(None), Community.member_count < Community.max_members))
        .values(member_count=Community.member_count + 1)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def free_seat(session: AsyncSession, community_id: str) -> None:
    await session.execute(sa.update(Community).where(Community.id == community_id, Community.member_count > 0)
                          .values(member_count=Community.member_count - 1))


# Members --------------------------------------------------------------------------------------


async def member(session: AsyncSession, community_id: str, player_id: str) -> CommunityMember | None:
    return (await session.execute(
        sa.select(CommunityMember).where(CommunityMember.community_id == community_id,
                                         CommunityMember.player_id == player_id)
        .execution_options(populate_existing=True)
    )).scalar_one_or_none()


def new_member_code() -> str:
    return "".join(secrets.choice(MEMBER_CODE_ALPHABET) for _ in range(8))


async def insert_member(session: AsyncSession, row: dict[str, Any]) -> bool:
    """False when the player has a place in the community already; each new member gets a member code."""
    for _ in range(10):
        result = await session.execute(insert_ignore(session, CommunityMember.__table__)
                                       .values(**row, member_code=new_member_code())
                                       .returning(CommunityMember.__table__.c.player_id))
        if result.scalar_one_or_none() is not None:
            return True
        if await member(session, row["community_id"], row["player_id"]) is not None:
            return False
        # else the random member code was taken in this community (1 in 10^12): draw again
    raise RuntimeError("no free member code after 10 draws")  # pragma: no cover


async def member_by_code(session: AsyncSession, community_id: str, code: str) -> CommunityMember | None:
    return (await session.execute(
        sa.select(CommunityMember).where(CommunityMember.community_id == community_id,
                                         CommunityMember.member_code == code)
    )).scalar_one_or_none()


async def codes_of(session: AsyncSession, community_id: str, codes: Iterable[str]) -> dict[str, str]:
    """member code -> player id, for these codes of the community."""
    wanted = list(codes)
    if not wanted:
        return {}
    rows = await session.execute(sa.select(CommunityMember.member_code, CommunityMember.player_id)
                                 .where(CommunityMember.community_id == community_id,
                                        CommunityMember.member_code.in_(wanted)))
    return {code: player for code, player in rows if code is not None}


async def find_in_app(session: AsyncSession, app_id: str, slug: str) -> Community | None:
    return (await session.execute(
        sa.select(Community).where(Community.app_id == app_id, Community.slug == slug)
    )).scalar_one_or_none()


async def move_member(session: AsyncSession, community_id: str, player_id: str, *, from_: Iterable[str],
                      values: dict[str, Any]) -> bool:
    """Change a member whose status is one of ``from_``; False when it was not (a racing change won)."""
    result = await session.execute(
        sa.update(CommunityMember)
        .where(CommunityMember.community_id == community_id, CommunityMember.player_id == player_id,
               CommunityMember.status.in_(list(from_)))
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def members_page(session: AsyncSession, community_id: str, status: str | None, after: str | None,
                       limit: int) -> Sequence[CommunityMember]:
    stmt = (sa.select(CommunityMember).where(CommunityMember.community_id == community_id)
            .order_by(CommunityMember.player_id).limit(limit + 1))
    if status is not None:
        stmt = stmt.where(CommunityMember.status == status)
    if after is not None:
        stmt = stmt.where(CommunityMember.player_id > after)
    return (await session.execute(stmt)).scalars().all()


async def memberships_of(session: AsyncSession, app_id: str, player_id: str) -> Sequence[CommunityMember]:
    return (await session.execute(
        sa.select(CommunityMember).where(CommunityMember.app_id == app_id, CommunityMember.player_id == player_id)
        .order_by(CommunityMember.community_id)
    )).scalars().all()


async def active_members_among(session: AsyncSession, app_id: str, communities: Iterable[str],
                               player_ids: Iterable[str]) -> set[str]:
    """Which of these players are active members of at least one of these communities (ids or slugs)."""
    wanted = list(communities)
    rows = await session.execute(
        sa.select(CommunityMember.player_id).distinct()
        .join(Community, Community.id == CommunityMember.community_id)
        .where(Community.app_id == app_id, sa.or_(Community.id.in_(wanted), Community.slug.in_(wanted)),
               CommunityMember.status == "active", CommunityMember.player_id.in_(list(player_ids)))
    )
    return {r[0] for r in rows}
