"""Scheduled work of challenges: forget old calendar-period progress."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from questline.challenges import repository as repo
from questline.kit.jobs import Job, Scheduler, every
from questline.kit.runtime import Runtime

# Progress of a day, week or month is kept this long after its last change (history stays in completions).
PROGRESS_KEPT = timedelta(days=62)


async def trim_progress(session: AsyncSession, now: datetime) -> int:
    """Forget the progress of periods long over; a completion is kept for ever in ``challenge_completions``."""
    return await repo.trim_progress(session, now - PROGRESS_KEPT)


def register_jobs(scheduler: Scheduler, runtime: Runtime) -> None:
    scheduler.add(Job("challenges.trim_progress", every(3600), trim_progress))
