"""Batch processing, the worker loop, and replay.

One batch is one transaction: every processor's writes, the outbox rows and the events'
"done" marks commit together or not at all. On PostgreSQL a transaction-scoped advisory lock
makes one worker process batches at a time (others wait their turn), so derived state has a
single writer; SQLite's write lock does the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from itertools import groupby

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.db import run_after_commit
from questline.kit.periods import zone
from questline.kit.runtime import Runtime
from questline.pipeline import repository as event_log
from questline.pipeline.batch import Batch, EventView, PlayerState
from questline.pipeline.ingest import signals
from questline.pipeline.models import EventRecord
from questline.pipeline.states import processors_of
from questline.players import service as players
from questline.rules.service import ruleset_cache

_log = structlog.get_logger("questline.worker")
PIPELINE_LOCK = 0x5155_4553  # "QUES": the advisory lock id of the batch writer


async def take_lock(session: AsyncSession) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return True  # BEGIN IMMEDIATE already made this the only writer
    got = await session.execute(sa.text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": PIPELINE_LOCK})
    return bool(got.scalar_one())


async def process_batch(runtime: Runtime, limit: int | None = None) -> int:
    """Process up to ``limit`` pending events in one transaction; returns how many."""
    limit = limit or runtime.settings.worker_batch_size
    async with runtime.sessions() as session:
        async with session.begin():
            if not await take_lock(session):
                return 0
            events = list(await event_log.next_pending(session, limit))
            if not events:
                return 0
            for app_id, group in groupby(sorted(events, key=lambda e: (e.app_id, e.seq)), key=lambda e: e.app_id):
                await _process_app(session, runtime, app_id, list(group))
            await event_log.mark_done(session, [e.seq for e in events])
        await run_after_commit(session)
    signals(runtime).announce_progress()
    return len(events)


async def _process_app(session: AsyncSession, runtime: Runtime, app_id: str, events: list[EventRecord]) -> None:
    ruleset = await ruleset_cache(runtime).get(session, app_id)
    known = await players.ensure_players(session, runtime.clock, app_id, {e.player_id for e in events})
    states = {pid: PlayerState(pid, zone(tz)) for pid, (_, tz) in known.items()}
    batch = Batch(session, runtime.clock, ruleset, events, states)
    steps = processors_of(runtime)
    for step in steps:
        await step.load(batch)
    for record in events:
        state = states[record.player_id]
        view = EventView.of(record, state.timezone)
        for step in steps:
            step.handle(batch, view, state)
    for step in steps:
        await step.flush(batch)
    await event_log.add_outbox(session, batch.outbox)


class BatchSizer:
    """Adapts the batch size so one batch holds the write lock about ``target`` seconds.

    Bigger batches amortize per-batch reads; shorter lock holds keep API writes (which wait for
    SQLite's single write lock) fast. Starts at the configured size, which is also the ceiling.
    """

    def __init__(self, ceiling: int, target: float = 1.0, floor: int = 20) -> None:
        self.ceiling, self.target, self.floor = ceiling, target, min(floor, ceiling)
        self.size = ceiling

    def observe(self, processed: int, seconds: float) -> None:
        if processed < self.size:
            return  # the log ran dry; the time says nothing about the size
        if seconds > self.target * 2:
            self.size = max(self.floor, self.size // 2)
        elif seconds < self.target / 2:
            self.size = min(self.ceiling, self.size * 2)


async def _timed_batch(runtime: Runtime, sizer: BatchSizer) -> int:
    started = time.perf_counter()
    done = await process_batch(runtime, sizer.size)
    sizer.observe(done, time.perf_counter() - started)
    return done


async def run_worker(runtime: Runtime, stop: asyncio.Event) -> None:
    """Process batches until ``stop``; sleeps when idle until woken by ingest (or a short poll)."""
    sig = signals(runtime)
    idle_poll = max(runtime.settings.worker_idle_seconds, 0.01)
    sizer = BatchSizer(runtime.settings.worker_batch_size)
    while not stop.is_set():
        try:
            done = await _timed_batch(runtime, sizer)
        except Exception:
            _log.exception("batch_failed")
            done = 0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
        if done:
            continue
        sig.new_events.clear()
        waiter = asyncio.ensure_future(sig.new_events.wait())
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait({waiter, stopper}, timeout=max(idle_poll, 0.25), return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        stopper.cancel()


async def drain(runtime: Runtime, on_progress: Callable[[int], None] | None = None) -> int:
    """Process until nothing is pending; returns how many events were processed."""
    total = 0
    sizer = BatchSizer(runtime.settings.worker_batch_size)
    while True:
        done = await _timed_batch(runtime, sizer)
        if done == 0:
            async with runtime.read_sessions() as session:
                if await event_log.count_all_pending(session) == 0:
                    return total
            await asyncio.sleep(0.05)  # another worker holds the lock
            continue
        total += done
        if on_progress is not None:
            on_progress(done)


