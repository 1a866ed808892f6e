"""Scheduled ledger work: give back holds whose purchase never completed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.jobs import Job, Scheduler, every
from questline.kit.runtime import Runtime
from questline.ledger import service

RELEASE_EVERY_SECONDS = 15


def register_jobs(scheduler: Scheduler, runtime: Runtime) -> None:
    async def release_expired(session: AsyncSession, now: datetime) -> int:
        return await service.release_expired_holds(session, runtime.clock)

    scheduler.add(Job("ledger.release_expired_holds", every(RELEASE_EVERY_SECONDS), release_expired))
