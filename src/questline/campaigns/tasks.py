"""Scheduled campaign work: the completion check every 5 minutes (claimed once across processes)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from questline.campaigns import completion
from questline.kit.jobs import Job, Scheduler, every
from questline.kit.runtime import Runtime


def register_jobs(scheduler: Scheduler, runtime: Runtime) -> None:
    async def check_completion(session: AsyncSession, now: datetime) -> str:
        run = await completion.check_all(session, runtime)
        return f"checked {run.checked}, completed {len(run.completed)}"

    scheduler.add(Job(completion.JOB_NAME, every(completion.JOB_EVERY_SECONDS), check_completion))
