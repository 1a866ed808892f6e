"""Scheduled billing work: payment reminders, and monthly invoicing for apps that turned it on."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from questline.billing import service
from questline.kit.jobs import Job, Scheduler, every
from questline.kit.runtime import Runtime

REMINDERS_EVERY_SECONDS = 3600
MONTHLY_EVERY_SECONDS = 3600


def register_jobs(scheduler: Scheduler, runtime: Runtime) -> None:
    async def reminders(session: AsyncSession, now: datetime) -> int:
        return await service.send_reminders(session, runtime.clock)

    async def monthly(session: AsyncSession, now: datetime) -> dict[str, int]:
        return await service.run_months(session, runtime.clock)

    scheduler.add(Job("billing.reminders", every(REMINDERS_EVERY_SECONDS), reminders))
    scheduler.add(Job("billing.monthly", every(MONTHLY_EVERY_SECONDS), monthly))
