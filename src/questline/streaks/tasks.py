"""The streaks job: asks the worker to break streaks at the player's local midnight."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.jobs import Job, Scheduler, every
from questline.kit.runtime import Runtime
from questline.pipeline import ingest as events
from questline.streaks import repository as repo
from questline.streaks.processor import CHECK_EVENT

CHECKS_PER_RUN = 2000


# The break job ----------------------------------------------------------------------------------


def check_event_id(streak: str, player_id: str, check_at: datetime | None) -> str:
    raw = f"streak-check:{streak}:{player_id}:{int(check_at.timestamp()) if check_at else 0}"
    if len(raw) <= 128:
        return raw
    return f"streak-check:{hashlib.sha256(raw.encode()).hexdigest()}"


async def request_checks(session: AsyncSession, runtime: Runtime, now: datetime) -> int:
    """Append a check event for every live streak whose kept period has ended; returns how many.

    A check already in the log (the worker has not reached it yet) has the same id and is not
    appended twice, so the job is idempotent.
    """
    due = await repo.due_checks(session, now, CHECKS_PER_RUN)
    await events.append_internal_many(session, runtime, [
        events.InternalEvent(app_id, player_id, check_event_id(streak, player_id, check_at), CHECK_EVENT,
                             {"streak": streak})
        for app_id, player_id, streak, check_at in due])
    return len(due)


def _job(runtime: Runtime) -> Callable[[AsyncSession, datetime], Any]:
    async def body(session: AsyncSession, now: datetime) -> int:
        return await request_checks(session, runtime, now)

    return body


def register_jobs(scheduler: Scheduler, runtime: Runtime) -> None:
    scheduler.add(Job("streaks.check_breaks", every(60), _job(runtime)))
