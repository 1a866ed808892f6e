"""Scheduled work of leaderboards: period rollover and archives."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.jobs import Job, Scheduler, every
from questline.kit.runtime import Runtime
from questline.leaderboards import service

ROLLOVER_EVERY_SECONDS = 15


def register_jobs(scheduler: Scheduler, runtime: Runtime) -> None:
    async def roll_over(session: AsyncSession, now: datetime) -> int:
        return await service.roll_over(session, runtime, now)

    scheduler.add(Job("leaderboards.roll_over", every(ROLLOVER_EVERY_SECONDS), roll_over))
