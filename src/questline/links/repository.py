"""Every query of the links area."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.db import insert_ignore
from questline.links.models import LinkClick, LinkSalt, LinkVisit


async def salt_of(session: AsyncSession, day: str) -> str | None:
    return (await session.execute(sa.select(LinkSalt.salt).where(LinkSalt.day == day))).scalar_one_or_none()


async def add_salt(session: AsyncSession, day: str, salt: str, now: datetime) -> bool:
    result = await session.execute(insert_ignore(session, LinkSalt.__table__)
                                   .values(day=day, salt=salt, created_at=now).returning(LinkSalt.__table__.c.day))
    return result.scalar_one_or_none() is not None


async def forget_before(session: AsyncSession, day: str) -> None:
    """Delete earlier days' salts and visits: yesterday's visitor hashes can no longer be linked."""
    await session.execute(sa.delete(LinkSalt).where(LinkSalt.day < day))
    await session.execute(sa.delete(LinkVisit).where(LinkVisit.day < day))


async def first_visit(session: AsyncSession, row: dict[str, Any]) -> bool:
    """True for the visitor's first click on this link today."""
    result = await session.execute(insert_ignore(session, LinkVisit.__table__).values(**row)
                                   .returning(LinkVisit.__table__.c.visitor))
    return result.scalar_one_or_none() is not None


async def add_click(session: AsyncSession, row: dict[str, Any]) -> None:
    await session.execute(sa.insert(LinkClick).values(**row))


async def click(session: AsyncSession, app_id: str, click_id: str) -> LinkClick | None:
    return (await session.execute(
        sa.select(LinkClick).where(LinkClick.app_id == app_id, LinkClick.id == click_id)
        .execution_options(populate_existing=True)
    )).scalar_one_or_none()


async def mark_joined(session: AsyncSession, app_id: str, click_id: str, player_id: str, now: datetime) -> bool:
    """Record the one join a click attributed; False when another join took it first."""
    result = await session.execute(
        sa.update(LinkClick).where(LinkClick.app_id == app_id, LinkClick.id == click_id,
                                   LinkClick.joined_player_id.is_(None))
        .values(joined_player_id=player_id, joined_at=now, joined_day=now.date().isoformat()))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def click_counts(session: AsyncSession, community_id: str, first: str, last: str) -> Sequence[Any]:
    """(day, member code, outcome, clicks, distinct visitors) over the days first..last."""
    return (await session.execute(
        sa.select(LinkClick.day, LinkClick.member_code, LinkClick.outcome, sa.func.count(),
                  sa.func.count(sa.distinct(LinkClick.visitor)))
        .where(LinkClick.community_id == community_id, LinkClick.day >= first, LinkClick.day <= last)
        .group_by(LinkClick.day, LinkClick.member_code, LinkClick.outcome)
    )).all()


async def day_visitors(session: AsyncSession, community_id: str, first: str, last: str) -> Sequence[Any]:
    """(day, distinct counted visitors over every link of the community)."""
    return (await session.execute(
        sa.select(LinkClick.day, sa.func.count(sa.distinct(LinkClick.visitor)))
        .where(LinkClick.community_id == community_id, LinkClick.day >= first, LinkClick.day <= last,
               LinkClick.outcome == "counted")
        .group_by(LinkClick.day)
    )).all()


async def join_counts(session: AsyncSession, community_id: str, first: str, last: str) -> Sequence[Any]:
    """(join day, member code, joins attributed) over the days first..last."""
    return (await session.execute(
        sa.select(LinkClick.joined_day, LinkClick.member_code, sa.func.count())
        .where(LinkClick.community_id == community_id, LinkClick.joined_day >= first,
               LinkClick.joined_day <= last)
        .group_by(LinkClick.joined_day, LinkClick.member_code)
    )).all()
