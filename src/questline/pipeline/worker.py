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
import os
import random
import socket
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import groupby
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.db import deferring, is_busy, run_after_commit, send_queued
from questline.kit.ids import ulid
from questline.kit.periods import zone
from questline.kit.runtime import Runtime
from questline.ops import service as ops
from questline.pipeline import repository as event_log
from questline.pipeline.batch import Batch, PlayerState
from questline.pipeline.ingest import signals
from questline.pipeline.models import REPLAY, LogEvent
from questline.pipeline.states import processors_of
from questline.pipeline.stream import StreamLog, stream_log
from questline.players import service as players
from questline.rules.service import ruleset_cache

_log = structlog.get_logger("questline.worker")
PIPELINE_LOCK = 0x5155_4553  # "QUES": the advisory lock class of the partition writers
_LOCK = sa.text("SELECT pg_try_advisory_xact_lock(:k, :p)")
# One statement for a batch of several partitions: the ones this transaction became the writer of.
_LOCKS = sa.text("SELECT p FROM unnest(CAST(:ps AS integer[])) AS p WHERE pg_try_advisory_xact_lock(:k, p)")


async def take_lock(session: AsyncSession, partition: int | None) -> bool:
    """Become the writer of a partition (PostgreSQL) for this transaction; False if another is."""
    if partition is None or session.get_bind().dialect.name != "postgresql":
        return True  # SQLite: BEGIN IMMEDIATE already made this the only writer
    got = await session.execute(_LOCK, {"k": PIPELINE_LOCK, "p": partition})
    return bool(got.scalar_one())


async def take_locks(session: AsyncSession, partitions: Sequence[int]) -> list[int]:
    """Become the writer of those of ``partitions`` no other transaction writes; returns them.
    Only tries (never waits), so takers cannot deadlock whatever their order."""
    if len(partitions) == 1:
        return list(partitions) if await take_lock(session, partitions[0]) else []
    if session.get_bind().dialect.name != "postgresql":
        return list(partitions)  # SQLite: BEGIN IMMEDIATE already made this the only writer
    got = await session.execute(_LOCKS, {"k": PIPELINE_LOCK, "ps": list(partitions)})
    return sorted(got.scalars())


async def lock_all_partitions(session: AsyncSession, partitions: int) -> None:
    """Wait until this transaction is the writer of every partition (replay)."""
    await lock_partitions(session, range(partitions))


async def lock_partitions(session: AsyncSession, partitions: Iterable[int]) -> None:
    """Wait until this transaction is the writer of these partitions (PostgreSQL; SQLite's
    ``BEGIN IMMEDIATE`` already made it the only writer). Whoever writes derived state outside a
    worker batch (achievement backfill) takes them, so its reads and writes cannot interleave with
    a batch's. Taken in ascending order, as every waiting taker does, so two takers never deadlock;
    workers only try, and skip a partition that is taken."""
    if session.get_bind().dialect.name == "postgresql":
        for partition in sorted(set(partitions)):
            await session.execute(sa.text("SELECT pg_advisory_xact_lock(:k, :p)"),
                                  {"k": PIPELINE_LOCK, "p": partition})


async def process_batch(runtime: Runtime, limit: int | None = None,
                        partition: int | Sequence[int] | None = None) -> int:
    """Process up to ``limit`` pending events (of one partition or several, or of any) in one
    transaction; returns how many (0 also when other writers hold the partitions). Of several
    partitions, those another writer holds are left to it."""
    limit = limit or runtime.settings.worker_batch_size
    partitions = [partition] if isinstance(partition, int) else partition
    async with runtime.sessions() as session:
        async with session.begin():
            if partitions is not None:
                partitions = await take_locks(session, partitions)
                if not partitions:
                    return 0
            done = await _apply_pending(session, runtime, limit, partitions)
            if not done:
                return 0
        await run_after_commit(session)
    signals(runtime).announce_progress()
    return done


async def _apply_pending(session: AsyncSession, runtime: Runtime, limit: int,
                         partitions: Sequence[int] | None) -> int:
    """In the caller's transaction: process up to ``limit`` pending events of the partitions (or all)."""
    events = await event_log.next_pending(session, limit, partitions)
    if not events:
        return 0
    for app_id, group in groupby(sorted(events, key=lambda e: (e.app_id, e.seq)), key=lambda e: e.app_id):
        await _process_app(session, runtime, app_id, list(group))
    with deferring(session):
        await event_log.mark_done(session, [e.seq for e in events])
    # Replayed state changed: processes holding some of it in memory rebuild (see ReplayEpoch).
    replayed = sorted({e.app_id for e in events if e.pending == REPLAY})
    await event_log.raise_replay_epochs(session, replayed, runtime.clock.now())
    # The deferred writes (stat cells, tracks, outbox, done marks, …: see ``_process_app``) as one
    # statement, one round trip, before the commit.
    await send_queued(session)
    return len(events)


async def apply_stream_batch(runtime: Runtime, log: StreamLog, partition: int, limit: int,
                             wait: float = 0.0) -> int:
    """Apply the next messages of a partition's JetStream stream, exactly once.

    In one transaction: the partition's writer lock, the last applied stream sequence, the new
    events appended to the database log and processed, the new sequence recorded. Messages at or
    below the recorded sequence were applied before (a redelivery): skipped. A batch that does
    not start right after it, or has a gap, was delivered out of order (another worker, a
    restart): nothing is applied and the consumer restarts from the recorded position. Acks
    follow the commit; a lost ack only means a redelivery, which is skipped."""
    messages = await log.fetch(partition, limit, wait)
    if not messages:
        return 0
    stream = log.stream(partition)
    restart_at: int | None = None  # out of order: where the consumer must start again
    locked_out = False
    done = 0
    async with runtime.sessions() as session:
        async with session.begin():
            if not await take_lock(session, partition):
                locked_out = True  # another writer is applying this partition (a moving lease)
            else:
                expected = max(await event_log.stream_offset(session, stream) + 1, log.floor.get(partition, 0))
                fresh = [m for m in messages if m.seq >= expected]
                if [m.seq for m in fresh] != list(range(expected, expected + len(fresh))):
                    restart_at = expected
                elif fresh:
                    await event_log.append(session, [m.row for m in fresh],
                                           partitions=runtime.settings.pipeline_partitions)
                    await event_log.set_stream_offset(session, stream, fresh[-1].seq)
                    done = await _apply_pending(session, runtime, limit + len(fresh), [partition])
                # else: only redeliveries of what is applied
        await run_after_commit(session)
    if locked_out:  # handed back at once (not after the ack wait); order is checked when applied
        for message in messages:
            if message.msg is not None:
                with contextlib.suppress(Exception):
                    await message.msg.nak()
        return 0
    if restart_at is not None:
        _log.info("stream_out_of_order", partition=partition, restart_at=restart_at,
                  got=[messages[0].seq, messages[-1].seq])
        runtime.metrics.stream_restarts.inc()
        await log.reset(partition, restart_at)
        return 0
    for message in messages:
        if message.msg is not None:
            with contextlib.suppress(Exception):
                await message.msg.ack()
    if done:
        signals(runtime).announce_progress()
    return max(done, 1)  # redeliveries skipped are progress too


async def process_round(runtime: Runtime, sizer: BatchSizer, stop: asyncio.Event | None = None) -> int:
    """One batch of every partition that has pending events (one batch in all on SQLite);
    partitions with only a few pending events share a batch (see ``batch_groups``).

    ``stop`` set meanwhile ends the round after the batch in hand (graceful shutdown)."""
    if runtime.settings.is_sqlite:
        return await _timed(runtime, sizer, None)
    async with runtime.read_sessions() as session:  # a backlog beyond a batch's size groups alike
        waiting = await event_log.pending_by_partition(session, cap=sizer.size)
    done = 0
    for group in batch_groups(waiting, sizer.size):
        if stop is not None and stop.is_set():
            break
        done += await _timed(runtime, sizer, group)
    return done


def batch_groups(pending: dict[int, int], size: int) -> list[list[int]]:
    """The partitions with pending events (partition -> how many), grouped into batches of about
    ``size`` events: a partition with a backlog of its own is a batch alone, while partitions
    with a few events each share one (one transaction and one set of loads instead of one per
    partition: single events arriving one by one spread over every partition). The order is
    random, so workers racing for partitions spread out instead of queueing in order."""
    order = list(pending)
    random.shuffle(order)
    groups: list[list[int]] = []
    group: list[int] = []
    count = 0
    for partition in order:
        group.append(partition)
        count += pending[partition]
        if count >= size:
            groups.append(group)
            group, count = [], 0
    if group:
        groups.append(group)
    return groups


async def _process_app(session: AsyncSession, runtime: Runtime, app_id: str, events: list[LogEvent]) -> None:
    ruleset = await ruleset_cache(runtime).get(session, app_id)
    known = await players.ensure_players(session, runtime.clock, app_id, {e.player_id for e in events})
    states = {pid: PlayerState(pid, zone(tz)) for pid, (_, tz) in known.items()}
    batch = Batch(session, runtime.clock, ruleset, events, states, partitions=runtime.settings.pipeline_partitions,
                  players_exist=True)
    steps = [step for step in processors_of(runtime) if step.concerned(ruleset)]
    for step in steps:
        await step.load(batch)
    slicer = Slicer(runtime.settings.worker_slice_ms / 1000)
    for view in batch.views:
        state = states[view.record.player_id]
        for step in steps:
            step.handle(batch, view, state)
        if slicer.due():
            await slicer.pause()
    for step in steps:
        if getattr(step, "defers_writes", False):
            with deferring(session):
                await step.flush(batch)
        else:
            await step.flush(batch)
    with deferring(session):  # postings and the outbox: nothing in the batch reads them after
        await batch.write_effects()


class Slicer:
    """Bounds how long the worker holds the event loop between awaits.

    Handling a batch is synchronous work (hundreds of milliseconds for a big batch); in
    ``serve``, requests, the ingest committer and the scheduler share the worker's event loop and
    would wait all that time. After ``seconds`` of it the worker yields once, so every ready
    callback runs before it goes on. The batch's transaction stays open meanwhile; its state in
    memory is its own."""

    __slots__ = ("seconds", "since")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.since = time.perf_counter()

    def due(self) -> bool:
        return time.perf_counter() - self.since >= self.seconds

    async def pause(self) -> None:
        await asyncio.sleep(0)
        self.since = time.perf_counter()


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


async def _timed(runtime: Runtime, sizer: BatchSizer, partitions: Sequence[int] | None) -> int:
    started = time.perf_counter()
    done = await process_batch(runtime, sizer.size, partitions)
    seconds = time.perf_counter() - started
    sizer.observe(done, seconds)
    if done:
        runtime.metrics.events_processed.inc(done)
        runtime.metrics.batch_seconds.observe(seconds)
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
    if stream_log(runtime) is not None:
        await run_stream_worker(runtime, stop)
        return
    sig = signals(runtime)
    idle_poll = max(runtime.settings.worker_idle_seconds, 0.01)
    sizer = BatchSizer(runtime.settings.worker_batch_size)
    backoff = 0.0
    _log.info("worker_started", partitions=runtime.settings.pipeline_partitions)
    while not stop.is_set():
        try:
            await read_replay_epochs(runtime)  # a replay in another process is seen within a round
            done = await process_round(runtime, sizer, stop)
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


def install_checks(runtime: Runtime, *, worker: bool) -> None:
    """What ``/readyz`` and ``/metrics`` report for the pipeline: the event log reachable (on
    JetStream), and for a worker the lag per partition (events in the database log not yet
    processed, plus JetStream messages not yet applied)."""
    log = stream_log(runtime)
    if log is not None:
        ops.add_ready_check(runtime, "event_log", log.check)
    if not worker:
        return

    async def lag() -> None:
        async with runtime.read_sessions() as session:
            counts = await event_log.pending_by_partition(session)
        for partition in range(runtime.settings.pipeline_partitions):
            in_stream = 0
            if log is not None:
                in_stream = await log.pending(partition)
                runtime.metrics.stream_pending.labels(str(partition)).set(in_stream)
            runtime.metrics.partition_lag.labels(str(partition)).set(counts.get(partition, 0) + in_stream)

    ops.add_metrics_refresher(runtime, lag)


async def drain(runtime: Runtime, on_progress: Callable[[int], None] | None = None) -> int:
    """Process until nothing is pending; returns how many events were processed.

    Beside a running engine (its worker, its jobs, its requests) the database may be busy: a
    batch that meets it busy is retried after a growing pause, as in ``run_worker``."""
    log = stream_log(runtime)
    if log is not None:
        return await _drain_stream(runtime, log, on_progress)
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




async def _drain_stream(runtime: Runtime, log: StreamLog, on_progress: Callable[[int], None] | None) -> int:
    """``drain`` on the JetStream log: every partition's stream and its database backlog."""
    total = 0
    size = runtime.settings.worker_batch_size
    while True:
        round_done = 0
        for partition in range(runtime.settings.pipeline_partitions):
            if await log.pending(partition):
                round_done += await apply_stream_batch(runtime, log, partition, size, wait=1.0)
        round_done += await process_round(runtime, BatchSizer(size))
        if round_done:
            total += round_done
            if on_progress is not None:
                on_progress(round_done)
            continue
        async with runtime.read_sessions() as session:
            db_pending = await event_log.count_all_pending(session)
        stream_pending = [p for p in range(runtime.settings.pipeline_partitions) if await log.pending(p)]
        if db_pending == 0 and not stream_pending:
            return total
        await asyncio.sleep(0.05)  # another writer holds a partition


class LeaseClock:
    """Until when (event-loop time) this worker's leases are surely its own. Renewed by each
    heartbeat; a partition task applies nothing past it, so a worker whose heartbeats stall (a
    long pause, a lost database) stops writing before another worker can take its partitions."""

    def __init__(self) -> None:
        self.until = 0.0

    def valid(self) -> bool:
        return asyncio.get_running_loop().time() < self.until


async def run_stream_worker(runtime: Runtime, stop: asyncio.Event) -> None:
    """The worker on the JetStream log: hold the leases of a fair share of the partitions, one task
    per partition applying its stream; rebalance as workers join, leave or die.

    Heartbeats never wait for a partition being handed over: its task is stopped in the
    background, and its lease released only once its last batch has ended."""
    log = stream_log(runtime)
    assert log is not None
    me = f"{socket.gethostname()}:{os.getpid()}:{ulid()[-6:]}"
    lease = runtime.settings.worker_lease_seconds
    clock = LeaseClock()
    loop = asyncio.get_running_loop()
    owned: dict[int, tuple[asyncio.Task[None], asyncio.Event]] = {}
    leaving: dict[int, asyncio.Task[None]] = {}

    async def hand_over(partition: int, task: asyncio.Task[None], part_stop: asyncio.Event) -> None:
        part_stop.set()
        await asyncio.gather(task, return_exceptions=True)
        await log.forget(partition)  # no pull request of ours may take the next owner's messages
        with contextlib.suppress(Exception):
            async with runtime.sessions() as session, session.begin():
                await event_log.release_leases(session, [log.stream(partition)], me, _now())

    _log.info("worker_started", log="jetstream", worker=me, partitions=runtime.settings.pipeline_partitions)
    try:
        while not stop.is_set():
            for partition in [p for p, t in leaving.items() if t.done()]:
                del leaving[partition]
            waiting = False
            beat = loop.time()
            try:
                held, waiting = await _rebalance(runtime, log, me, lease, set(owned) | set(leaving))
                clock.until = beat + lease - LEASE_MARGIN * lease
            except Exception as exc:
                _log.warning("lease_renewal_failed", error=str(exc).splitlines()[0] if str(exc) else repr(exc))
                held = set(owned)
            for partition in sorted(set(owned) - held):
                task, part_stop = owned.pop(partition)
                leaving[partition] = asyncio.create_task(hand_over(partition, task, part_stop),
                                                         name=f"questline.worker.p{partition}.handover")
            for partition in sorted(held - set(owned)):
                if partition in leaving:  # ours again before its handover ended: start it after
                    waiting = True
                    continue
                part_stop = asyncio.Event()
                task = asyncio.create_task(_own_partition(runtime, log, partition, part_stop, clock),
                                           name=f"questline.worker.p{partition}")
                owned[partition] = (task, part_stop)
            runtime.metrics.partitions_owned.set(len(owned))
            # While a partition of our share is still another's (released at that owner's next
            # heartbeat, once its batch ends), ask again soon.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=HANDOVER_POLL if waiting or leaving else lease / 3)
    finally:
        for _, part_stop in owned.values():
            part_stop.set()
        await asyncio.gather(*(task for task, _ in owned.values()), *leaving.values(), return_exceptions=True)
        with contextlib.suppress(Exception):
            async with runtime.sessions() as session, session.begin():
                await event_log.release_leases(session, [log.stream(p) for p in owned], me, _now())
                await event_log.leave(session, log.namespace, me)
        runtime.metrics.partitions_owned.set(0)


HANDOVER_POLL = 0.5  # seconds between lease attempts while a partition of our share is being handed over
LEASE_MARGIN = 0.2  # the part of a lease a worker does not use: room for a slow commit and clock skew


def _now() -> datetime:
    return datetime.now(UTC)  # leases are about real processes: wall-clock time, not the engine's clock


async def _rebalance(runtime: Runtime, log: StreamLog, me: str, lease: float,
                     running: set[int]) -> tuple[set[int], bool]:
    """Heartbeat, then hold exactly this worker's share: rendezvous hashing over the live workers,
    so a worker joining or leaving moves only the partitions it takes or gives.

    Returns the partitions to hold and whether some of our share is still another's. A partition
    we give up keeps its lease while ``running`` says our task applies it; the caller releases it
    once that task has stopped (releasing it here would let the next owner read the applied
    position while our last batch is still committing)."""
    now = _now()
    until = now + timedelta(seconds=lease)
    held: set[int] = set()
    waiting = False
    async with runtime.sessions() as session, session.begin():
        members = await event_log.heartbeat(session, log.namespace, me, now, until)
        for partition in range(runtime.settings.pipeline_partitions):
            owner = _rendezvous(members, partition)
            stream = log.stream(partition)
            if owner == me:
                if await event_log.acquire_lease(session, stream, me, now, until):
                    held.add(partition)
                else:
                    waiting = True
            elif partition not in running:
                await event_log.release_leases(session, [stream], me, now)
    return held, waiting


def _rendezvous(members: list[str], partition: int) -> str:
    return max(members, key=lambda member: zlib.crc32(f"{member}/{partition}".encode()))


async def _own_partition(runtime: Runtime, log: StreamLog, partition: int, stop: asyncio.Event,
                         lease: LeaseClock) -> None:
    """Apply one partition's stream (and its database backlog) until ``stop``; the batch in hand
    finishes. Nothing is applied while the lease is not surely ours (heartbeats failing)."""
    sizer = BatchSizer(runtime.settings.worker_batch_size)
    backoff = 0.0
    positioned = False
    connection = log.connections
    idle_since = time.monotonic()
    while not stop.is_set():
        if not lease.valid():  # another worker may own it now: position again when ours once more
            positioned = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=HANDOVER_POLL)
            continue
        try:
            if connection != log.connections:  # reconnected: our pull requests died with the connection
                connection, positioned = log.connections, False
            if not positioned:  # a new owner starts right after what is applied, whatever the consumer says
                async with runtime.read_sessions() as session:
                    last = await event_log.stream_offset(session, log.stream(partition))
                await log.reset(partition, last + 1)
                positioned, idle_since = True, time.monotonic()
            started = time.perf_counter()
            done = await apply_stream_batch(runtime, log, partition, sizer.size, wait=0.5)
            if not done:
                done = await process_batch(runtime, sizer.size, partition)
            if done:
                seconds = time.perf_counter() - started
                sizer.observe(done, seconds)
                runtime.metrics.events_processed.inc(done)
                runtime.metrics.batch_seconds.observe(seconds)
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since >= STALL_SECONDS:
                idle_since = time.monotonic()
                if await _consumer_stalled(runtime, log, partition):
                    positioned = False
            backoff = 0.0
        except Exception as exc:
            backoff = min(BUSY_BACKOFF_MAX, max(0.25, backoff * 2))
            _log.warning("partition_batch_deferred", partition=partition, retry_in=backoff,
                         error=str(exc).splitlines()[0] if str(exc) else repr(exc))
            positioned = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=backoff)


STALL_SECONDS = 5.0  # a partition idle this long checks that its stream has nothing unapplied


async def _consumer_stalled(runtime: Runtime, log: StreamLog, partition: int) -> bool:
    """Whether the partition's stream holds messages past the applied position although fetches
    return none: a pull subscription can go silent (a request lost in a reconnect, a consumer
    replaced underneath it), and nothing else would notice. The caller positions it again."""
    last = await log.last_seq(partition)
    async with runtime.read_sessions() as session:
        applied = await event_log.stream_offset(session, log.stream(partition))
    if last < max(applied + 1, log.floor.get(partition, 0)):
        return False
    _log.warning("stream_consumer_stalled", partition=partition, applied=applied, last=last)
    runtime.metrics.stream_restarts.inc()
    return True
