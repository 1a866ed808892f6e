"""Scheduled work of competitions: the lifecycle ticker (start, end, distribute)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from questline.competitions import service
from questline.kit.jobs import Job, Scheduler, every
from questline.kit.runtime import Runtime

LIFECYCLE_EVERY_SECONDS = 10


def register_jobs(scheduler: Scheduler, runtime: Runtime) -> None:
    async def lifecycle(session: AsyncSession, now: datetime) -> dict[str, int]:
        return await service.advance(session, runtime, now)

    scheduler.add(Job("competitions.lifecycle", every(LIFECYCLE_EVERY_SECONDS), lifecycle))
