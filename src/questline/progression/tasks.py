"""Scheduled work of progression: trim the activity feed."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.jobs import Job, Scheduler, every
from questline.kit.runtime import Runtime
from questline.progression import repository as repo


async def trim_activities(session: AsyncSession, now: object) -> int:
    return await repo.trim_activities(session, ACTIVITIES_KEPT)

ACTIVITIES_KEPT = 50


def register_jobs(scheduler: Scheduler, runtime: Runtime) -> None:
    scheduler.add(Job("progression.trim_activities", every(300), trim_activities))
