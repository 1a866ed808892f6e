"""Every conflict rule query."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.conflicts.models import ConflictRule


async def add(session: AsyncSession, rule: ConflictRule) -> None:
    session.add(rule)
    await session.flush()


async def get(session: AsyncSession, app_id: str, rule_id: str) -> ConflictRule | None:
    return (await session.execute(
        sa.select(ConflictRule).where(ConflictRule.app_id == app_id, ConflictRule.id == rule_id)
        .execution_options(populate_existing=True)
    )).scalar_one_or_none()


async def page(session: AsyncSession, app_id: str, after: str | None, limit: int) -> Sequence[ConflictRule]:
    stmt = sa.select(ConflictRule).where(ConflictRule.app_id == app_id).order_by(ConflictRule.id).limit(limit + 1)
    if after is not None:
        stmt = stmt.where(ConflictRule.id > after)
    return (await session.execute(stmt)).scalars().all()


async def enabled(session: AsyncSession, app_id: str) -> Sequence[ConflictRule]:
    return (await session.execute(
        sa.select(ConflictRule).where(ConflictRule.app_id == app_id, ConflictRule.enabled.is_(True))
        .order_by(ConflictRule.id)
    )).scalars().all()


async def count(session: AsyncSession, app_id: str) -> int:
    return int((await session.execute(
        sa.select(sa.func.count()).select_from(ConflictRule).where(ConflictRule.app_id == app_id)
    )).scalar_one())


async def update(session: AsyncSession, app_id: str, rule_id: str, values: dict[str, Any]) -> None:
    await session.execute(sa.update(ConflictRule).where(ConflictRule.app_id == app_id, ConflictRule.id == rule_id)
                          .values(**values))


async def delete(session: AsyncSession, app_id: str, rule_id: str) -> bool:
    done = await session.execute(sa.delete(ConflictRule).where(ConflictRule.app_id == app_id,
                                                               ConflictRule.id == rule_id)
                                 .returning(ConflictRule.id))
    return done.scalar_one_or_none() is not None
