"""Every creative query."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.assets.models import Asset


async def add(session: AsyncSession, asset: Asset) -> None:
    session.add(asset)
    await session.flush()


async def get(session: AsyncSession, app_id: str, asset_id: str) -> Asset | None:
    return (await session.execute(
        sa.select(Asset).where(Asset.app_id == app_id, Asset.id == asset_id, Asset.deleted_at.is_(None))
    )).scalar_one_or_none()


async def of_campaign(session: AsyncSession, app_id: str, campaign_id: str) -> Sequence[Asset]:
    return (await session.execute(
        sa.select(Asset).where(Asset.app_id == app_id, Asset.campaign_id == campaign_id, Asset.deleted_at.is_(None))
        .order_by(Asset.id)
    )).scalars().all()


async def count_of_campaign(session: AsyncSession, app_id: str, campaign_id: str) -> int:
    return int((await session.execute(
        sa.select(sa.func.count()).select_from(Asset).where(Asset.app_id == app_id, Asset.campaign_id == campaign_id,
                                                             Asset.deleted_at.is_(None))
    )).scalar_one())


async def mark_deleted(session: AsyncSession, app_id: str, asset_id: str, now: datetime) -> bool:
    done = await session.execute(
        sa.update(Asset).where(Asset.app_id == app_id, Asset.id == asset_id, Asset.deleted_at.is_(None))
        .values(deleted_at=now).returning(Asset.id)
    )
    return done.scalar_one_or_none() is not None
