"""Every treasury query; each is scoped by app."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.db import insert_ignore
from questline.kit.ids import new_id
from questline.treasury.models import ExchangeRate

# Rates ----------------------------------------------------------------------------------------


async def put_rate(session: AsyncSession, app_id: str, base: str, quote: str, rate: str, set_by: str,
                   now: datetime) -> None:
    await session.execute(insert_ignore(session, ExchangeRate.__table__).values(
        id=new_id("fx"), app_id=app_id, base=base, quote=quote, rate=rate, set_by=set_by, set_at=now))
    await session.execute(
        sa.update(ExchangeRate).where(ExchangeRate.app_id == app_id, ExchangeRate.base == base,
                                      ExchangeRate.quote == quote)
        .values(rate=rate, set_by=set_by, set_at=now))


async def get_rate(session: AsyncSession, app_id: str, base: str, quote: str) -> ExchangeRate | None:
    return (await session.execute(
        sa.select(ExchangeRate).where(ExchangeRate.app_id == app_id, ExchangeRate.base == base,
                                      ExchangeRate.quote == quote)
    )).scalar_one_or_none()


async def list_rates(session: AsyncSession, app_id: str) -> Sequence[ExchangeRate]:
    return (await session.execute(
        sa.select(ExchangeRate).where(ExchangeRate.app_id == app_id).order_by(ExchangeRate.base, ExchangeRate.quote)
    )).scalars().all()
