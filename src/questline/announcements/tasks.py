"""The scheduled job that sends announcements when their time comes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from questline.announcements import service
from questline.kit.jobs import Job, Scheduler, every
from questline.kit.runtime import Runtime

SEND_EVERY_SECONDS = 15


def register_jobs(scheduler: Scheduler, runtime: Runtime) -> None:
    async def send(session: AsyncSession, now: datetime) -> int:
        return await service.send_due(session, runtime, now)

    scheduler.add(Job("announcements.send", every(SEND_EVERY_SECONDS), send))
