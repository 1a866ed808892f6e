"""Scheduled finance work: queue large transactions for review even when nobody reads the queue."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from questline.finance import repository as repo
from questline.finance import reviews
from questline.kit.jobs import Job, Scheduler, every
from questline.kit.runtime import Runtime

SCAN_EVERY_SECONDS = 600


def register_jobs(scheduler: Scheduler, runtime: Runtime) -> None:
    async def scan(session: AsyncSession, now: datetime) -> int:
        seen = 0
        for app_id in await repo.apps_with_settings(session):
            seen += await reviews.scan(session, runtime, app_id)
        return seen

    scheduler.add(Job("finance.review_scan", every(SCAN_EVERY_SECONDS), scan))
