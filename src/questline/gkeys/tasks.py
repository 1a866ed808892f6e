"""Scheduled G-Key and energy work: ended cooloffs back to available, energy back to full at local midnight."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from questline.gkeys import service
from questline.kit.jobs import Job, Scheduler, every
from questline.kit.runtime import Runtime

COOLOFF_EVERY_SECONDS = 60
ENERGY_EVERY_SECONDS = 60


def register_jobs(scheduler: Scheduler, runtime: Runtime) -> None:
    async def expire_cooloffs(session: AsyncSession, now: datetime) -> int:
        return await service.expire_cooloffs(session, runtime.clock)

    async def reset_energy(session: AsyncSession, now: datetime) -> int:
        return await service.reset_due_energy(session, runtime.clock)

    scheduler.add(Job("gkeys.expire_cooloffs", every(COOLOFF_EVERY_SECONDS), expire_cooloffs))
    scheduler.add(Job("gkeys.reset_energy", every(ENERGY_EVERY_SECONDS), reset_energy))
