"""Scheduled treasury work: expire KYC verifications and delete documents past their retention."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.jobs import Job, Scheduler, every
from questline.kit.runtime import Runtime
from questline.treasury import kyc

SWEEP_EVERY_SECONDS = 3600


def register_jobs(scheduler: Scheduler, runtime: Runtime) -> None:
    async def sweep(session: AsyncSession, now: datetime) -> int:
        return await kyc.sweep(session, runtime)

    scheduler.add(Job("treasury.kyc_sweep", every(SWEEP_EVERY_SECONDS), sweep))
