"""Scheduled jobs and the worker under a busy database, and the claims table kept small (audit 10.3, 10.4)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from datetime import datetime

import pytest
import sqlalchemy as sa

from questline.kit.clock import ManualClock
from questline.kit.db import unit_of_work
from questline.kit.jobs import Job, JobRun, Scheduler, every
from questline.kit.logging import configure_logging
from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from questline.mechanics import install
from questline.pipeline.ingest import ingest, signals
from questline.pipeline.worker import run_worker
from questline.tenancy.auth import SERVER, Caller
from tests.conftest import Factory


def _logged(lines: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in lines.splitlines() if line.strip().startswith("{")]


@contextlib.asynccontextmanager
async def _every_connection_taken(runtime: Runtime):  # type: ignore[no-untyped-def]
    """Hold every connection the pool may open, so whoever asks for one waits out the pool timeout."""
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(1 if runtime.settings.is_sqlite else 2):
            held = await stack.enter_async_context(runtime.engine.connect())
            await held.exec_driver_sql("SELECT 1")
        yield


def _small(settings: Settings) -> Settings:
    return settings.model_copy(update={"database_pool_size": 1, "database_pool_timeout_seconds": 0.2})


async def test_a_job_meeting_a_busy_database_is_retried_later_without_a_traceback(
        settings: Settings, clock: ManualClock, capsys: pytest.CaptureFixture[str]) -> None:
    runtime = Runtime.build(_small(settings), clock)
    runs: list[datetime] = []

    async def body(session: object, now: datetime) -> int:
        runs.append(now)
        return len(runs)

    name = f"test.busy.{uuid.uuid4().hex[:8]}"
    scheduler = Scheduler(runtime.sessions, clock, worker_name="test")
    scheduler.add(Job(name, every(3600), body))
    configure_logging("INFO", json=True)
    try:
        async with _every_connection_taken(runtime):
            assert name not in await scheduler.tick()
        clock.advance(seconds=0.5)
        assert name not in await scheduler.tick()  # backing off: not even tried yet
        clock.advance(seconds=2)
        assert name in await scheduler.tick()  # the database is free again
        logged = _logged(capsys.readouterr().err)
    finally:
        configure_logging("WARNING", json=True)
        await runtime.close()
    assert len(runs) == 1
    deferred = [e for e in logged if e["event"] == "job_deferred_database_busy" and e.get("job") == name]
    assert deferred and deferred[0]["level"] == "warning" and "exception" not in deferred[0]
    assert not [e for e in logged if e["event"] == "job_failed"]


async def test_a_worker_batch_meeting_a_busy_database_waits_and_then_processes(
        settings: Settings, clock: ManualClock, factory: Factory, capsys: pytest.CaptureFixture[str]) -> None:
    keys = await factory.app()
    runtime = Runtime.build(_small(settings), clock)
    install(runtime)
    caller = Caller(kind=SERVER, app_id=keys.app_id, key_id="test")
    await ingest(runtime, caller, {"id": "busy-1", "player_id": "alice", "type": "match.won"})
    stop = asyncio.Event()
    configure_logging("INFO", json=True)
    try:
        async with _every_connection_taken(runtime):
            worker = asyncio.create_task(run_worker(runtime, stop))
            await asyncio.sleep(0.5)  # the worker meets the taken pool (timeout 0.2 s) at least once
            progress = signals(runtime).progress
        await asyncio.wait_for(progress.wait(), timeout=20)  # processed once the pool is free
        stop.set()
        await asyncio.wait_for(worker, timeout=10)
        logged = _logged(capsys.readouterr().err)
    finally:
        stop.set()
        configure_logging("WARNING", json=True)
        await runtime.close()
    assert [e for e in logged if e["event"] == "batch_deferred_database_busy" and e["level"] == "warning"]
    assert not [e for e in logged if e["event"] == "batch_failed"]


async def test_claims_of_periods_that_are_over_are_swept(runtime: Runtime, clock: ManualClock) -> None:
    name = f"test.sweep.{uuid.uuid4().hex[:8]}"

    async def body(session: object, now: datetime) -> None:
        return None

    scheduler = Scheduler(runtime.sessions, clock, worker_name="test")
    scheduler.add(Job(name, every(60), body))
    for _ in range(30):  # half an hour of a once-a-minute job
        assert name in await scheduler.tick()
        clock.advance(seconds=60)

    async def claims() -> int:
        async with unit_of_work(runtime.sessions) as session:
            return int((await session.execute(
                sa.select(sa.func.count()).select_from(JobRun).where(JobRun.job == name))).scalar_one())

    assert await claims() == 30
    clock.advance(hours=2)
    ran = await scheduler.tick()
    assert "jobs.sweep" in ran and name in ran
    assert await claims() == 1  # only the claim of the current period is left
    assert name not in await scheduler.tick()  # and it still stops a second run of that period


async def test_a_period_known_to_be_claimed_is_not_claimed_again(runtime: Runtime, clock: ManualClock) -> None:
    """Once a scheduler ran a period's job, or found another's committed claim, it sends nothing
    for that job until the period moves on (an idle engine ticks every second)."""
    name = f"test.claimed.{uuid.uuid4().hex[:8]}"
    runs: list[str] = []

    async def body(session: object, now: datetime) -> None:
        runs.append(now.isoformat())

    here = Scheduler(runtime.sessions, clock, worker_name="here")
    there = Scheduler(runtime.sessions, clock, worker_name="there")
    for scheduler in (here, there):
        scheduler.add(Job(name, every(60), body))
    attempts: list[str] = []

    def count_claims(conn: object, cursor: object, statement: str, parameters: object, *args: object) -> None:
        if "INSERT INTO job_runs" in statement and name in str(parameters):
            attempts.append(statement)

    sa.event.listen(runtime.engine.sync_engine, "before_cursor_execute", count_claims)
    try:
        assert name in await here.tick()
        assert name not in await there.tick()  # finds here's claim: one attempt, then it knows
        assert len(attempts) == 2
        for _ in range(5):
            clock.advance(seconds=5)
            assert name not in await here.tick() and name not in await there.tick()
        assert len(attempts) == 2  # the same period: neither tried again
        clock.advance(seconds=60)
        ran = [name in await here.tick(), name in await there.tick()]
        assert ran == [True, False] and len(attempts) == 4  # a new period: tried again, run once
    finally:
        sa.event.remove(runtime.engine.sync_engine, "before_cursor_execute", count_claims)
    assert len(runs) == 2
