"""Scheduled jobs, run exactly once per period even when several processes tick.

Each job names the period it is due for (``period_key``). A tick claims ``(job, period)``
with an insert into ``job_runs`` and runs the job in the same transaction: if the job
fails the claim rolls back with it and the next tick retries; if another process already
claimed it, the unique key stops this one. In the embedded tier one in-process ticker runs;
scaled out, every worker ticks and the database decides.

Many schedulers: a claim held uncommitted by another scheduler (its run in progress) is skipped
after a short wait instead of waited out; a scheduler that dies mid-run (SIGKILL, lost
connection) takes its uncommitted claim with it, so the next tick anywhere runs the job again
for the same period.

A busy database (SQLite's write lock held past the busy timeout, the pool out of connections)
is load, not a fault: the job is retried at a later tick, waiting twice as long each time it
meets it again, and logged as a warning without a traceback. The scheduler's own
``jobs.sweep`` forgets claims of periods that are over (only the current period's claim can
stop a run), so ``job_runs`` stays the size of the job list.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from questline.kit.clock import Clock
from questline.kit.db import Base, BigInt, UTCDateTime, insert_ignore, is_busy, run_after_commit

_log = structlog.get_logger("questline.jobs")
SWEEP_JOB = "jobs.sweep"
SWEEP_EVERY_SECONDS = 3600
# Claims younger than this stay even when their period is over: processes' clocks may differ a little.
SWEEP_MIN_AGE = timedelta(hours=1)
BUSY_BACKOFF_MAX = 60.0
JobBody = Callable[[AsyncSession, datetime], Awaitable[object]]


# How long a claim waits for another scheduler's uncommitted claim of the same run (PostgreSQL).
CLAIM_WAIT_MS = 200
LOCK_NOT_AVAILABLE = "55P03"


def _sqlstate_of(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    for candidate in (orig, getattr(orig, "__cause__", None)):
        state = getattr(candidate, "sqlstate", None)
        if isinstance(state, str):
            return state
    return None


class JobRun(Base):
    __tablename__ = "job_runs"
    __table_args__ = (sa.UniqueConstraint("job", "period_key"),)

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(sa.String(120))
    period_key: Mapped[str] = mapped_column(sa.String(120))
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str] = mapped_column(sa.String(120))
    result: Mapped[str | None] = mapped_column(sa.String(500))


@dataclass(frozen=True)
class Job:
    name: str
    period_key: Callable[[datetime], str | None]
    body: JobBody


def every(seconds: float) -> Callable[[datetime], str]:
    def key(now: datetime) -> str:
        return str(int(now.timestamp() // seconds))

    return key


class _Held(Exception):
    """A job found the scheduler held (see ``Scheduler``): its claim is rolled back."""


class Scheduler:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock, *, worker_name: str,
                 held: Callable[[AsyncSession], Awaitable[bool]] | None = None) -> None:
        """``held``: asked in a job's transaction once it has claimed its run; while it answers
        True no job runs (the claim is rolled back and the job runs at its first tick after)."""
        self._sessions = sessions
        self._held = held
        self._clock = clock
        self._worker_name = worker_name
        self._jobs: dict[str, Job] = {}
        self._busy: dict[str, tuple[datetime, float]] = {}  # job -> (retry not before, last wait in seconds)
        # job -> the period this scheduler knows is claimed for good (it ran here, or another
        # scheduler's claim was committed): no claim is tried again until the period moves on,
        # which keeps an idle engine from sending four statements per job every tick.
        self._claimed: dict[str, str] = {}
        self.add(Job(SWEEP_JOB, every(SWEEP_EVERY_SECONDS), self._sweep))

    def add(self, job: Job) -> None:
        if job.name in self._jobs:
            raise ValueError(f"job {job.name!r} is registered twice")
        self._jobs[job.name] = job

    @property
    def jobs(self) -> list[str]:
        return sorted(self._jobs)

    async def tick(self, only: Collection[str] | None = None) -> list[str]:
        """Run every job that is due and not yet claimed (of ``only``, if given); returns the names
        that ran here."""
        ran = []
        now = self._clock.now()
        for job in self._jobs.values():
            if only is not None and job.name not in only:
                continue
            busy = self._busy.get(job.name)
            if busy is not None and now < busy[0]:
                continue
            period = job.period_key(now)
            if period is None or self._claimed.get(job.name) == period:
                continue
            if await self._run_once(job, period, now):
                ran.append(job.name)
        return ran

    async def _sweep(self, session: AsyncSession, now: datetime) -> int:
        """Delete the claims of periods that are over (a claim only stops a run of its own period)."""
        removed = 0
        for job in self._jobs.values():
            current = job.period_key(now)
            stmt = sa.delete(JobRun).where(JobRun.job == job.name, JobRun.claimed_at < now - SWEEP_MIN_AGE)
            if current is not None:
                stmt = stmt.where(JobRun.period_key != current)
            removed += int((await session.execute(stmt)).rowcount)  # type: ignore[attr-defined]
        return removed

    async def _run_once(self, job: Job, period: str, now: datetime) -> bool:
        table = JobRun.__table__
        try:
            async with self._sessions() as session:
                async with session.begin():
                    postgres = session.get_bind().dialect.name == "postgresql"
                    if postgres:
                        # A claim another scheduler holds uncommitted is a run in progress there:
                        # skip it now instead of waiting for that whole run (it stays this period's
                        # if it commits; if that scheduler dies, the claim goes and a tick retries).
                        await session.execute(sa.text(f"SET LOCAL lock_timeout = '{CLAIM_WAIT_MS}ms'"))
                    claimed = await session.execute(
                        insert_ignore(session, table).values(
                            job=job.name, period_key=period, claimed_at=now, claimed_by=self._worker_name,
                        ).returning(table.c.id)
                    )
                    run_id = claimed.scalar_one_or_none()
                    if run_id is None:  # a committed claim: this period's run is done or being done
                        self._claimed[job.name] = period
                        return False
                    if postgres:
                        await session.execute(sa.text("SET LOCAL lock_timeout TO DEFAULT"))
                    if self._held is not None and await self._held(session):
                        raise _Held  # rolls the claim back: the job runs at a tick after the hold
                    result = await job.body(session, now)
                    await session.execute(
                        sa.update(JobRun).where(JobRun.id == run_id).values(result=str(result)[:500])
                    )
                await run_after_commit(session)
        except _Held:
            _log.debug("job_held", job=job.name, period=period)
            return False
        except Exception as exc:
            if _sqlstate_of(exc) == LOCK_NOT_AVAILABLE:
                _log.debug("job_running_elsewhere", job=job.name, period=period)
                return False
            if is_busy(exc):
                wait = min(BUSY_BACKOFF_MAX, 2 * self._busy.get(job.name, (now, 0.5))[1])
                self._busy[job.name] = (now + timedelta(seconds=wait), wait)
                _log.warning("job_deferred_database_busy", job=job.name, period=period, retry_in=wait)
            else:
                _log.exception("job_failed", job=job.name, period=period)
            return False
        self._busy.pop(job.name, None)
        self._claimed[job.name] = period
        _log.info("job_ran", job=job.name, period=period, result=str(result)[:200])
        return True

    async def run_forever(self, stop: asyncio.Event, interval: float) -> None:
        while not stop.is_set():
            await self.tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
