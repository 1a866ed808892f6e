"""Scheduled shop work: pending orders whose hold ran out are released and marked expired."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.jobs import Job, Scheduler, every
from questline.kit.runtime import Runtime
from questline.shop import service

EXPIRE_EVERY_SECONDS = 15


def register_jobs(scheduler: Scheduler, runtime: Runtime) -> None:
    async def expire_orders(session: AsyncSession, now: datetime) -> int:
        return await service.expire_orders(session, runtime.clock)

    scheduler.add(Job("shop.expire_orders", every(EXPIRE_EVERY_SECONDS), expire_orders))
