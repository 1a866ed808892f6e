"""Scheduled jobs with many scheduler processes: once per period, and a run whose process dies
mid-way (SIGKILL) is picked up again by another scheduler for the same period."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.clock import ManualClock
from questline.kit.jobs import Job, JobRun, Scheduler
from questline.kit.runtime import Runtime

# A scheduler in its own process whose job starts, says so, and never finishes.
DYING = """
import asyncio, sys
from questline.kit.clock import SystemClock
from questline.kit.db import create_engine, session_factory
from questline.kit.jobs import Job, Scheduler

async def main() -> None:
    engine = create_engine(sys.argv[1], pool_size=2, pool_timeout=10)
    scheduler = Scheduler(session_factory(engine), SystemClock(), worker_name="doomed")

    async def body(session, now):
        print("running", flush=True)
        await asyncio.sleep(3600)

    scheduler.add(Job(sys.argv[2], lambda now: "forever", body))
    await scheduler.tick()

asyncio.run(main())
"""


async def test_a_run_whose_scheduler_dies_midway_runs_again_elsewhere(runtime: Runtime, clock: ManualClock) -> None:
    name = f"test.dies.{uuid.uuid4().hex[:8]}"
    doomed = await asyncio.create_subprocess_exec(sys.executable, "-c", DYING, runtime.settings.database_url, name,
                                                  stdout=asyncio.subprocess.PIPE)
    assert doomed.stdout is not None
    try:
        async def started() -> None:
            assert doomed.stdout is not None
            while (line := await doomed.stdout.readline()) and line.strip() != b"running":
                pass  # its log lines (the scheduler's own sweep job runs first)
            assert line, "the doomed scheduler exited"

        await asyncio.wait_for(started(), timeout=60)

        runs: list[datetime] = []

        async def body(session: AsyncSession, now: datetime) -> str:
            runs.append(now)
            return "done here"

        survivor = Scheduler(runtime.sessions, clock, worker_name="survivor")
        survivor.add(Job(name, lambda now: "forever", body))
        if not runtime.settings.is_sqlite:
            # While the other run is in progress this scheduler skips the job at once (it does
            # not wait that run out, nor run it a second time).
            started = time.monotonic()
            assert name not in await survivor.tick()
            assert time.monotonic() - started < 5 and runs == []
        doomed.kill()
        await doomed.wait()
        # The dead run's claim went with its transaction: the next tick runs the job, same period.
        for _ in range(100):
            if name in await survivor.tick():
                break
            await asyncio.sleep(0.1)  # SQLite: the dead process's lock is released by the OS
        assert len(runs) == 1
        assert name not in await survivor.tick()  # and only once
    finally:
        if doomed.returncode is None:
            doomed.kill()
            await doomed.wait()
    async with runtime.read_sessions() as session:
        rows = (await session.execute(sa.select(JobRun.period_key, JobRun.claimed_by, JobRun.result)
                                      .where(JobRun.job == name))).all()
    assert [tuple(r) for r in rows] == [("forever", "survivor", "done here")]


async def test_many_schedulers_run_a_job_once_per_period(runtime: Runtime, clock: ManualClock) -> None:
    name = f"test.once.{uuid.uuid4().hex[:8]}"
    runs: list[str] = []

    def scheduler(worker: str) -> Scheduler:
        async def body(session: AsyncSession, now: datetime) -> None:
            runs.append(worker)
            await asyncio.sleep(0.05)  # overlap with the others' ticks

        made = Scheduler(runtime.sessions, clock, worker_name=worker)
        made.add(Job(name, lambda now: now.strftime("%H"), body))
        return made

    schedulers = [scheduler(f"s{i}") for i in range(4)]
    for _ in range(3):
        await asyncio.gather(*(s.tick() for s in schedulers))
    assert len(runs) == 1
    clock.advance(hours=1)
    for _ in range(3):
        await asyncio.gather(*(s.tick() for s in schedulers))
    assert len(runs) == 2
