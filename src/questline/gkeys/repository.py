"""Every G-Key and energy query. Transitions are conditional UPDATEs: two racing callers cannot both win."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.gkeys.models import Energy, GKey
from questline.kit.db import insert_ignore

# Keys -----------------------------------------------------------------------------------------


async def keys_of(session: AsyncSession, app_id: str, streamer_id: str) -> Sequence[GKey]:
    return (await session.execute(
        sa.select(GKey).where(GKey.app_id == app_id, GKey.streamer_id == streamer_id).order_by(GKey.category)
        .execution_options(populate_existing=True)
    )).scalars().all()


async def get_key(session: AsyncSession, app_id: str, streamer_id: str, category: str, *,
                  lock: bool = False) -> GKey | None:
    stmt = sa.select(GKey).where(GKey.app_id == app_id, GKey.streamer_id == streamer_id, GKey.category == category) \
        .execution_options(populate_existing=True)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def ensure_keys(session: AsyncSession, app_id: str, streamer_id: str, categories: Sequence[str],
                      now: datetime) -> None:
    """Create the streamer's keys of these categories that do not exist yet (available)."""
    rows = [{"app_id": app_id, "streamer_id": streamer_id, "category": c, "status": "available", "usage_count": 0,
             "created_at": now, "updated_at": now} for c in sorted(set(categories))]
    if rows:
        await session.execute(insert_ignore(session, GKey.__table__), rows)


def _usable(now: datetime, brand_id: str | None) -> Any:
    in_cooloff = GKey.status == "cooloff"
    ended = sa.or_(GKey.cooloff_until.is_(None), GKey.cooloff_until <= now)
    same_brand = sa.and_(GKey.last_brand_id.is_not(None), GKey.last_brand_id == brand_id) if brand_id \
        else sa.false()
    return sa.or_(GKey.status == "available", sa.and_(in_cooloff, sa.or_(ended, same_brand)))


async def lock_key(session: AsyncSession, app_id: str, streamer_id: str, category: str, *, campaign_id: str,
                   brand_id: str, now: datetime) -> bool:
    """available (or usable cooloff) -> locked with the campaign; False when the key is not usable."""
    done = await session.execute(
        sa.update(GKey)
        .where(GKey.app_id == app_id, GKey.streamer_id == streamer_id, GKey.category == category,
               _usable(now, brand_id))
        .values(status="locked", locked_campaign_id=campaign_id, locked_brand_id=brand_id, locked_at=now,
                cooloff_until=None, updated_at=now)
        .returning(GKey.id)
    )
    return done.scalar_one_or_none() is not None


async def key_locked_with(session: AsyncSession, app_id: str, streamer_id: str, campaign_id: str) -> GKey | None:
    return (await session.execute(
        sa.select(GKey).where(GKey.app_id == app_id, GKey.streamer_id == streamer_id, GKey.status == "locked",
                              GKey.locked_campaign_id == campaign_id)
        .with_for_update().execution_options(populate_existing=True)
    )).scalar_one_or_none()


async def cool_off(session: AsyncSession, key_id: int, campaign_id: str, *, until: datetime, brand_id: str,
                   brand_hours: int, now: datetime) -> bool:
    """locked (with this campaign) -> cooloff until ``until``; False if it was released meanwhile."""
    done = await session.execute(
        sa.update(GKey)
        .where(GKey.id == key_id, GKey.status == "locked", GKey.locked_campaign_id == campaign_id)
        .values(status="cooloff", cooloff_until=until, locked_campaign_id=None, locked_brand_id=None,
                locked_at=None, last_used_at=now, usage_count=GKey.usage_count + 1, last_brand_id=brand_id,
                last_brand_cooloff_hours=brand_hours, updated_at=now)
        .returning(GKey.id)
    )
    return done.scalar_one_or_none() is not None


async def force_available(session: AsyncSession, key_id: int, now: datetime) -> None:
    await session.execute(
        sa.update(GKey).where(GKey.id == key_id)
        .values(status="available", locked_campaign_id=None, locked_brand_id=None, locked_at=None,
                cooloff_until=None, updated_at=now)
    )


async def expire_cooloffs(session: AsyncSession, now: datetime, limit: int) -> Sequence[tuple[str, str, str]]:
    """Ended cooloffs -> available; (app_id, streamer_id, category) of each key this call moved."""
    due = (
        sa.select(GKey.id).where(GKey.status == "cooloff", GKey.cooloff_until <= now)
        .order_by(GKey.cooloff_until, GKey.id).limit(limit)
    ).scalar_subquery()
    rows = await session.execute(
        sa.update(GKey).where(GKey.id.in_(due), GKey.status == "cooloff", GKey.cooloff_until <= now)
        .values(status="available", cooloff_until=None, updated_at=now)
        .returning(GKey.app_id, GKey.streamer_id, GKey.category)
    )
    return [(a, s, c) for a, s, c in rows]


# Energy ---------------------------------------------------------------------------------------


async def ensure_energy(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(insert_ignore(session, Energy.__table__).values(**values))


async def get_energy(session: AsyncSession, app_id: str, streamer_id: str, *, lock: bool = False) -> Energy | None:
    stmt = sa.select(Energy).where(Energy.app_id == app_id, Energy.streamer_id == streamer_id) \
        .execution_options(populate_existing=True)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def save_energy(session: AsyncSession, app_id: str, streamer_id: str, *, expected: dict[str, Any],
                      values: dict[str, Any]) -> bool:
    """Write the new state if the row still holds ``expected`` (compare-and-set)."""
    conditions = [getattr(Energy, name) == value if value is not None else getattr(Energy, name).is_(None)
                  for name, value in expected.items()]
    done = await session.execute(
        sa.update(Energy).where(Energy.app_id == app_id, Energy.streamer_id == streamer_id, *conditions)
        .values(**values).returning(Energy.streamer_id)
    )
    return done.scalar_one_or_none() is not None


async def due_resets(session: AsyncSession, now: datetime, limit: int) -> Sequence[Energy]:
    return (await session.execute(
        sa.select(Energy).where(Energy.next_reset_at <= now).order_by(Energy.next_reset_at).limit(limit)
        .execution_options(populate_existing=True)
    )).scalars().all()
