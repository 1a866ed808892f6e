"""The worker: batches of pending events, one transaction each, one writer per partition.

One batch is one transaction: every processor's writes, the ledger postings, the outbox rows and
the events' "done" marks commit together or not at all. The log is split into partitions (a
player's events all in one, ``pipeline_partitions`` of them); on PostgreSQL a transaction-scoped
advisory lock per partition gives each partition one writer at a time, so several workers (in
one process or many) process different partitions side by side and two apps never wait for each
other. SQLite has one writer whatever the partitions: its ``BEGIN IMMEDIATE`` write lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from itertools import groupby
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.db import is_busy, run_after_commit
from questline.kit.periods import zone
from questline.kit.runtime import Runtime
from questline.pipeline import repository as event_log
from questline.pipeline.batch import Batch, PlayerState
from questline.pipeline.ingest import signals
from questline.pipeline.models import REPLAY, LogEvent
from questline.pipeline.states import processors_of
from questline.players import service as players
from questline.rules.service import ruleset_cache

_log = structlog.get_logger("questline.worker")
PIPELINE_LOCK = 0x5155_4553  # "QUES": the advisory lock class of the partition writers
_LOCK = sa.text("SELECT pg_try_advisory_xact_lock(:k, :p)")


async def take_lock(session: AsyncSession, partition: int | None) -> bool:
    """Become the writer of a partition (PostgreSQL) for this transaction; False if another is."""
    if partition is None or session.get_bind().dialect.name != "postgresql":
        return True  # SQLite: BEGIN IMMEDIATE already made this the only writer
    got = await session.execute(_LOCK, {"k": PIPELINE_LOCK, "p": partition})
    return bool(got.scalar_one())


async def lock_all_partitions(session: AsyncSession, partitions: int) -> None:
    """Wait until this transaction is the writer of every partition (replay)."""
    if session.get_bind().dialect.name == "postgresql":
        for partition in range(partitions):
            await session.execute(sa.text("SELECT pg_advisory_xact_lock(:k, :p)"),
                                  {"k": PIPELINE_LOCK, "p": partition})


async def process_batch(runtime: Runtime, limit: int | None = None, partition: int | None = None) -> int:
    """Process up to ``limit`` pending events (of one partition, or of any on SQLite) in one
    transaction; returns how many (0 also when another writer holds the partition)."""
    limit = limit or runtime.settings.worker_batch_size
    async with runtime.sessions() as session:
        async with session.begin():
            if not await take_lock(session, partition):
                return 0
            events = await event_log.next_pending(session, limit, partition)
            if not events:
                return 0
            for app_id, group in groupby(sorted(events, key=lambda e: (e.app_id, e.seq)), key=lambda e: e.app_id):
                await _process_app(session, runtime, app_id, list(group))
            await event_log.mark_done(session, [e.seq for e in events])
            # Replayed state changed: processes holding some of it in memory rebuild (see ReplayEpoch).
            replayed = sorted({e.app_id for e in events if e.pending == REPLAY})
            await event_log.raise_replay_epochs(session, replayed, runtime.clock.now())
        await run_after_commit(session)
    signals(runtime).announce_progress()
    return len(events)


async def process_round(runtime: Runtime, sizer: BatchSizer) -> int:
    """One batch of every partition that has pending events (one batch in all on SQLite)."""
    if runtime.settings.is_sqlite:
        return await _timed(runtime, sizer, None)
    async with runtime.read_sessions() as session:
        waiting = await event_log.pending_partitions(session)
    random.shuffle(waiting)  # workers racing for partitions spread out instead of queueing in order
    done = 0
    for partition in waiting:
        done += await _timed(runtime, sizer, partition)
    return done


async def _process_app(session: AsyncSession, runtime: Runtime, app_id: str, events: list[LogEvent]) -> None:
    ruleset = await ruleset_cache(runtime).get(session, app_id)
    known = await players.ensure_players(session, runtime.clock, app_id, {e.player_id for e in events})
    states = {pid: PlayerState(pid, zone(tz)) for pid, (_, tz) in known.items()}
    batch = Batch(session, runtime.clock, ruleset, events, states, partitions=runtime.settings.pipeline_partitions)
    steps = processors_of(runtime)
    for step in steps:
        await step.load(batch)
    for view in batch.views:
        state = states[view.record.player_id]
        for step in steps:
            step.handle(batch, view, state)
    for step in steps:
        await step.flush(batch)
    await batch.write_effects()


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


async def _timed(runtime: Runtime, sizer: BatchSizer, partition: int | None) -> int:
    started = time.perf_counter()
    done = await process_batch(runtime, sizer.size, partition)
    sizer.observe(done, time.perf_counter() - started)
    return done


# runtime.extensions key: app -> replay epoch, as this process's worker last read them.
REPLAY_EPOCHS = "pipeline.replay_epochs"


def replay_epochs(extensions: dict[str, Any]) -> dict[str, int]:
    """The apps' replay epochs as this process last read them (see ``ReplayEpoch``): what holds
    derived state in memory (a rank index) compares them with those it was built under."""
    found = extensions.get(REPLAY_EPOCHS)
    return found if isinstance(found, dict) else {}


async def read_replay_epochs(runtime: Runtime) -> None:
    """Read every app's replay epoch (one small query; the worker does it on every round)."""
    async with runtime.read_sessions() as session:
        runtime.extensions[REPLAY_EPOCHS] = await event_log.replay_epochs(session)


# A busy database (SQLite's write lock held past the busy timeout, no pooled connection free) is
# load, not a fault: the worker waits and retries, doubling the wait up to this many seconds.
BUSY_BACKOFF_MAX = 8.0


async def run_worker(runtime: Runtime, stop: asyncio.Event) -> None:
    """Process batches until ``stop``; sleeps when idle until woken by ingest (or a short poll)."""
    sig = signals(runtime)
    idle_poll = max(runtime.settings.worker_idle_seconds, 0.01)
    sizer = BatchSizer(runtime.settings.worker_batch_size)
    backoff = 0.0
    while not stop.is_set():
        try:
            await read_replay_epochs(runtime)  # a replay in another process is seen within a round
            done = await process_round(runtime, sizer)
            backoff = 0.0
        except Exception as exc:
            done = 0
            if is_busy(exc):
                backoff = min(BUSY_BACKOFF_MAX, max(0.1, backoff * 2))
                _log.warning("batch_deferred_database_busy", retry_in=backoff, error=str(exc).splitlines()[0])
            else:
                backoff = 1.0
                _log.exception("batch_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=backoff)
        if done:
            continue
        sig.new_events.clear()
        waiter = asyncio.ensure_future(sig.new_events.wait())
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait({waiter, stopper}, timeout=max(idle_poll, 0.25), return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        stopper.cancel()


async def drain(runtime: Runtime, on_progress: Callable[[int], None] | None = None) -> int:
    """Process until nothing is pending; returns how many events were processed.

    Beside a running engine (its worker, its jobs, its requests) the database may be busy: a
    batch that meets it busy is retried after a growing pause, as in ``run_worker``."""
    total = 0
    sizer = BatchSizer(runtime.settings.worker_batch_size)
    backoff = 0.0
    while True:
        try:
            done = await process_round(runtime, sizer)
            backoff = 0.0
        except Exception as exc:
            if not is_busy(exc):
                raise
            backoff = min(BUSY_BACKOFF_MAX, max(0.1, backoff * 2))
            _log.warning("batch_deferred_database_busy", retry_in=backoff, error=str(exc).splitlines()[0])
            await asyncio.sleep(backoff)
            continue
        if done == 0:
            async with runtime.read_sessions() as session:
                if await event_log.count_all_pending(session) == 0:
                    return total
            await asyncio.sleep(0.05)  # another worker holds the lock
            continue
        total += done
        if on_progress is not None:
            on_progress(done)


