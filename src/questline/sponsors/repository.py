"""Every query of the marketplace accounts area."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.db import insert_ignore, upsert
from questline.sponsors.models import Brand, BrandMember, MarketSettings, Streamer


async def settings_of(session: AsyncSession, app_id: str) -> dict[str, Any] | None:
    return (await session.execute(
        sa.select(MarketSettings.body).where(MarketSettings.app_id == app_id)
    )).scalar_one_or_none()


async def put_settings(session: AsyncSession, app_id: str, body: dict[str, Any], now: datetime) -> None:
    stmt = upsert(session, MarketSettings.__table__).values(app_id=app_id, body=body, updated_at=now)
    await session.execute(stmt.on_conflict_do_update(index_elements=["app_id"],
                                                     set_={"body": stmt.excluded.body, "updated_at": now}))


# Brands ---------------------------------------------------------------------------------------


async def add(session: AsyncSession, row: Any) -> None:
    session.add(row)
    await session.flush()


async def email_taken(session: AsyncSession, app_id: str, email: str) -> bool:
    """An e-mail signs in one marketplace account of the app: a brand member or a streamer."""
    member = sa.select(BrandMember.id).where(BrandMember.app_id == app_id, BrandMember.email == email)
    streamer = sa.select(Streamer.id).where(Streamer.app_id == app_id, Streamer.email == email)
    return (await session.execute(sa.union_all(member, streamer).limit(1))).first() is not None


async def insert_member(session: AsyncSession, values: dict[str, Any]) -> bool:
    """False when the e-mail is already a member's (a racing sign-up)."""
    table = BrandMember.__table__
    done = await session.execute(insert_ignore(session, table).values(**values).returning(table.c.id))
    return done.scalar_one_or_none() is not None


async def get_brand(session: AsyncSession, app_id: str, brand_id: str) -> Brand | None:
    return (await session.execute(
        sa.select(Brand).where(Brand.app_id == app_id, Brand.id == brand_id).execution_options(populate_existing=True)
    )).scalar_one_or_none()


async def brands_by_id(session: AsyncSession, app_id: str, ids: Sequence[str]) -> dict[str, Brand]:
    if not ids:
        return {}
    rows = await session.execute(sa.select(Brand).where(Brand.app_id == app_id, Brand.id.in_(sorted(set(ids)))))
    return {b.id: b for b in rows.scalars()}


async def update_brand(session: AsyncSession, app_id: str, brand_id: str, values: dict[str, Any]) -> None:
    await session.execute(sa.update(Brand).where(Brand.app_id == app_id, Brand.id == brand_id).values(**values))


async def brands_page(session: AsyncSession, app_id: str, after: str | None, limit: int) -> Sequence[Brand]:
    stmt = sa.select(Brand).where(Brand.app_id == app_id).order_by(Brand.id).limit(limit + 1)
    if after is not None:
        stmt = stmt.where(Brand.id > after)
    return (await session.execute(stmt)).scalars().all()


async def member_by_email(session: AsyncSession, app_id: str, email: str) -> BrandMember | None:
    return (await session.execute(
        sa.select(BrandMember).where(BrandMember.app_id == app_id, BrandMember.email == email)
    )).scalar_one_or_none()


async def get_member(session: AsyncSession, app_id: str, member_id: str) -> BrandMember | None:
    return (await session.execute(
        sa.select(BrandMember).where(BrandMember.app_id == app_id, BrandMember.id == member_id)
        .execution_options(populate_existing=True)
    )).scalar_one_or_none()


async def members_of(session: AsyncSession, app_id: str, brand_id: str) -> Sequence[BrandMember]:
    return (await session.execute(
        sa.select(BrandMember).where(BrandMember.app_id == app_id, BrandMember.brand_id == brand_id)
        .order_by(BrandMember.id)
    )).scalars().all()


async def count_owners(session: AsyncSession, app_id: str, brand_id: str) -> int:
    return int((await session.execute(
        sa.select(sa.func.count()).select_from(BrandMember).where(
            BrandMember.app_id == app_id, BrandMember.brand_id == brand_id, BrandMember.role == "owner",
            BrandMember.removed_at.is_(None))
    )).scalar_one())


async def remove_member(session: AsyncSession, app_id: str, member_id: str, now: datetime) -> bool:
    done = await session.execute(
        sa.update(BrandMember).where(BrandMember.app_id == app_id, BrandMember.id == member_id,
                                     BrandMember.removed_at.is_(None))
        .values(removed_at=now).returning(BrandMember.id)
    )
    return done.scalar_one_or_none() is not None


# Streamers ------------------------------------------------------------------------------------


async def insert_streamer(session: AsyncSession, values: dict[str, Any]) -> bool:
    table = Streamer.__table__
    done = await session.execute(insert_ignore(session, table).values(**values).returning(table.c.id))
    return done.scalar_one_or_none() is not None


async def get_streamer(session: AsyncSession, app_id: str, streamer_id: str, *, lock: bool = False) -> Streamer | None:
    stmt = sa.select(Streamer).where(Streamer.app_id == app_id, Streamer.id == streamer_id) \
        .execution_options(populate_existing=True)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def streamers_by_id(session: AsyncSession, app_id: str, ids: Sequence[str]) -> dict[str, Streamer]:
    if not ids:
        return {}
    rows = await session.execute(sa.select(Streamer).where(Streamer.app_id == app_id,
                                                           Streamer.id.in_(sorted(set(ids)))))
    return {s.id: s for s in rows.scalars()}


async def streamer_by_email(session: AsyncSession, app_id: str, email: str) -> Streamer | None:
    return (await session.execute(
        sa.select(Streamer).where(Streamer.app_id == app_id, Streamer.email == email)
    )).scalar_one_or_none()


async def streamer_by_player(session: AsyncSession, app_id: str, player_id: str) -> Streamer | None:
    return (await session.execute(
        sa.select(Streamer).where(Streamer.app_id == app_id, Streamer.player_id == player_id)
    )).scalar_one_or_none()


async def update_streamer(session: AsyncSession, app_id: str, streamer_id: str, values: dict[str, Any]) -> None:
    await session.execute(sa.update(Streamer).where(Streamer.app_id == app_id, Streamer.id == streamer_id)
                          .values(**values))


async def streamers_page(session: AsyncSession, app_id: str, after: str | None, limit: int) -> Sequence[Streamer]:
    stmt = sa.select(Streamer).where(Streamer.app_id == app_id).order_by(Streamer.id).limit(limit + 1)
    if after is not None:
        stmt = stmt.where(Streamer.id > after)
    return (await session.execute(stmt)).scalars().all()
