"""The notifications loop: sends due e-mail, Discord and Telegram deliveries (``serve`` runs it in-process)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.db import is_busy, is_connection_error
from questline.kit.jobs import Job, Scheduler, every
from questline.kit.runtime import Runtime
from questline.notifications import service

_log = structlog.get_logger("questline.notifications")
IDLE_SECONDS = 1.0
REMIND_EVERY_SECONDS = 60


def register_jobs(scheduler: Scheduler, runtime: Runtime) -> None:
    async def remind(session: AsyncSession, now: datetime) -> int:
        return await service.remind(session, runtime, now)

    scheduler.add(Job("notifications.reminders", every(REMIND_EVERY_SECONDS), remind))


async def run_notifications(runtime: Runtime, stop: asyncio.Event) -> None:
    wake = service.wake_event(runtime)
    while not stop.is_set():
        worked = 0
        try:
            worked = await service.process_due(runtime)
        except Exception as exc:
            if is_busy(exc) or is_connection_error(exc):
                _log.warning("notifications_deferred", reason=type(exc).__name__)
            else:
                _log.exception("notifications_loop_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=IDLE_SECONDS)
        if worked:
            continue
        wake.clear()
        waiter = asyncio.ensure_future(wake.wait())
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait({waiter, stopper}, timeout=IDLE_SECONDS, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        stopper.cancel()
