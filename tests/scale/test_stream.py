"""The event log on NATS JetStream: ingest publishes and answers once acked, workers apply each
partition's stream exactly once (offsets in the same transaction), leases share the partitions
out, and an unreachable log is a 503 that loses nothing."""

from __future__ import annotations

import asyncio
import os
import socket
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa

from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from questline.mechanics import install
from questline.pipeline import repository as event_log
from questline.pipeline.models import EventRecord, PartitionLease, StreamOffset
from questline.pipeline.stream import StreamLog, stream_log
from questline.pipeline.worker import (
    LeaseClock,
    _own_partition,
    _rebalance,
    apply_stream_batch,
    drain,
    run_stream_worker,
)
from tests.conftest import REQUIRE_SERVICES, Factory, problem
from tests.pipeline.helpers import configure, send, until
from tests.pipeline.snapshot import derived_state

NATS_URL = os.environ.get("QUESTLINE_TEST_EVENT_LOG") or "nats://127.0.0.1:4222"


def _reachable(url: str) -> bool:
    host, port = url.removeprefix("nats://").split(":")
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        return False
    return True


if not _reachable(NATS_URL):
    if REQUIRE_SERVICES:
        raise RuntimeError(f"QUESTLINE_REQUIRE_SERVICES=1 and NATS at {NATS_URL} is unreachable")
    pytest.skip(f"NATS JetStream is not reachable at {NATS_URL}", allow_module_level=True)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"event_log": NATS_URL, "pipeline_partitions": 4})


def won(i: int, player: str | None = None) -> dict[str, object]:
    return {"id": f"s-{i}", "player_id": player or f"p{i % 5}", "type": "match.won", "data": {"score": 10}}


async def db_events(runtime: Runtime, app_id: str) -> tuple[int, int]:
    async with runtime.read_sessions() as session:
        rows = dict((await session.execute(sa.select(EventRecord.pending, sa.func.count())
                                           .where(EventRecord.app_id == app_id).group_by(EventRecord.pending))).all())
    done = int(rows.pop(0, 0))
    return done, sum(int(n) for n in rows.values())


async def _applied(runtime: Runtime, app_id: str, count: int) -> bool:
    return await db_events(runtime, app_id) == (count, 0)


async def offsets(runtime: Runtime, log: StreamLog) -> dict[int, int]:
    async with runtime.read_sessions() as session:
        return {p: await event_log.stream_offset(session, log.stream(p)) for p in range(log.partitions)}


async def test_ingest_publishes_and_the_worker_applies_once(client: httpx.AsyncClient, factory: Factory,
                                                            runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys)
    resp = await send(client, keys, [won(i) for i in range(20)])
    assert resp.status_code == 202 and len(resp.json()["accepted"]) == 20
    # Answered once JetStream acked: the events are in the streams, not yet in the database.
    log = stream_log(runtime)
    assert log is not None
    assert sum([await log.pending(p) for p in range(4)]) == 20
    assert await db_events(runtime, keys.app_id) == (0, 0)
    # A retried publish (same ids) is a duplicate, in the stream as in the answer.
    again = await send(client, keys, [won(i) for i in range(20)])
    assert again.json()["duplicates"] == [f"s-{i}" for i in range(20)] and again.json()["accepted"] == []
    assert sum([await log.pending(p) for p in range(4)]) == 20

    assert await drain(runtime) >= 20
    assert await db_events(runtime, keys.app_id) == (20, 0)
    assert sum((await offsets(runtime, log)).values()) == 20  # one stream per partition: seqs 1..n each
    before = await derived_state(runtime, keys.app_id)
    wins = {row[0]: row[3] for row in before["player_stats"] if row[1] == "wins" and row[2] == "all"}
    assert wins == {f"p{i}": 4 for i in range(5)}

    # Every message delivered again (a worker restarted before its acks): skipped, nothing doubles.
    for partition in range(4):
        await log.reset(partition, 1)
        while await apply_stream_batch(runtime, log, partition, 100, wait=0.2):
            pass
        assert await log.pending(partition) == 0
    assert await derived_state(runtime, keys.app_id) == before
    # Duplicates of applied events are known to the database log too.
    late = await send(client, keys, [won(3)])
    assert late.json()["duplicates"] == ["s-3"]


async def test_out_of_order_delivery_applies_nothing_and_restarts_from_the_offset(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys)
    events = [won(i, player="solo") for i in range(6)]  # one player: one partition
    assert (await send(client, keys, events)).status_code == 202
    log = stream_log(runtime)
    assert log is not None
    (partition,) = [p for p in range(4) if await log.pending(p)]
    await log.reset(partition, 3)  # as if messages 1-2 were held by a dead worker
    assert await apply_stream_batch(runtime, log, partition, 100, wait=0.5) == 0
    assert await db_events(runtime, keys.app_id) == (0, 0)  # a gap: nothing applied
    while await apply_stream_batch(runtime, log, partition, 100, wait=0.5):
        pass
    assert await db_events(runtime, keys.app_id) == (6, 0)
    async with runtime.read_sessions() as session:
        seqs = (await session.execute(sa.select(EventRecord.event_id).where(EventRecord.app_id == keys.app_id)
                                      .order_by(EventRecord.seq))).scalars().all()
    assert seqs == [f"s-{i}" for i in range(6)]  # applied in stream order


async def test_an_unreachable_event_log_is_a_503_and_changes_nothing(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    log = stream_log(runtime)
    assert log is not None
    log.url = "nats://127.0.0.1:1"  # nothing listens there
    await log.close()
    resp = await send(client, keys, [won(1)])
    problem(resp, 503, "event_log_unavailable")
    assert int(resp.headers["retry-after"]) > 0
    assert (await client.get("/readyz")).json()["checks"]["event_log"].startswith("unreachable")
    assert await db_events(runtime, keys.app_id) == (0, 0)


async def test_workers_share_the_partitions_and_take_over_a_leaver(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, settings: Settings) -> None:
    keys = await factory.app()
    await configure(client, keys)
    quick = settings.model_copy(update={"worker_lease_seconds": 1.0})
    workers = []
    for _ in range(2):
        rt = Runtime.build(quick)
        install(rt)
        stop = asyncio.Event()
        workers.append((rt, stop, asyncio.create_task(run_stream_worker(rt, stop))))

    async def owners() -> dict[str, str]:
        async with runtime.read_sessions() as session:
            rows = await session.execute(sa.select(PartitionLease.stream, PartitionLease.owner).where(
                PartitionLease.stream.like(f"{settings.event_log_namespace.upper()}_%"),
                PartitionLease.expires_at > sa.func.now() if not settings.is_sqlite else sa.true()))
            return dict(rows.all())

    try:
        async def shared() -> bool:
            held = await owners()
            return len(held) == 4 and len(set(held.values())) == 2

        await until(shared, what="both workers held a share")
        held = await owners()
        assert len(held) == 4 and len(set(held.values())) == 2, held  # both workers hold a share
        assert (await send(client, keys, [won(i) for i in range(40)])).status_code == 202
        await until(lambda: _applied(runtime, keys.app_id, 40), what="40 events were applied")
        assert await db_events(runtime, keys.app_id) == (40, 0)

        rt0, stop0, task0 = workers.pop(0)  # one leaves: its partitions move to the other
        stop0.set()
        await task0
        await rt0.close()
        assert (await send(client, keys, [won(i) for i in range(40, 80)])).status_code == 202
        await until(lambda: _applied(runtime, keys.app_id, 80), what="80 events were applied")
        assert await db_events(runtime, keys.app_id) == (80, 0)
    finally:
        for rt, stop, task in workers:
            stop.set()
            await task
            await rt.close()
    state = await derived_state(runtime, keys.app_id)
    wins = {row[0]: row[3] for row in state["player_stats"] if row[1] == "wins" and row[2] == "all"}
    assert wins == {f"p{i}": 16 for i in range(5)}
    async with runtime.read_sessions() as session:
        applied = (await session.execute(sa.select(sa.func.sum(StreamOffset.seq)).where(
            StreamOffset.stream.like(f"{settings.event_log_namespace.upper()}_%")))).scalar_one()
    assert applied == 80


def restarts(rt: Runtime) -> float:
    return float(rt.metrics.stream_restarts._value.get())


async def test_a_joining_worker_takes_its_share_while_events_stream_without_a_restart(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, settings: Settings) -> None:
    """The old owner hands a partition over only after its last batch and its pull subscription
    are gone, so the new owner's consumer starts right after what is applied: no out-of-order
    delivery, no consumer restart, every event once."""
    keys = await factory.app()
    await configure(client, keys)
    quick = settings.model_copy(update={"worker_lease_seconds": 1.0})
    workers: list[tuple[Runtime, asyncio.Event, asyncio.Task[None]]] = []

    def start() -> None:
        rt = Runtime.build(quick)
        install(rt)
        stop = asyncio.Event()
        workers.append((rt, stop, asyncio.create_task(run_stream_worker(rt, stop))))

    async def owners() -> set[str]:
        async with runtime.read_sessions() as session:
            rows = await session.execute(sa.select(PartitionLease.owner).where(
                PartitionLease.stream.like(f"{settings.event_log_namespace.upper()}_%"),
                PartitionLease.expires_at > sa.func.now() if not settings.is_sqlite else sa.true()))
            return set(rows.scalars())

    start()
    try:
        sent = 0
        for round_ in range(30):  # events keep coming while the second worker joins and takes its share
            assert (await send(client, keys, [won(sent + i) for i in range(10)])).status_code == 202
            sent += 10
            if round_ == 5:
                start()
            await asyncio.sleep(0.1)
        async def done_by_both() -> bool:
            return await _applied(runtime, keys.app_id, sent) and len(await owners()) == 2

        await until(done_by_both, what="both workers held a share and every event was applied")
        assert await db_events(runtime, keys.app_id) == (sent, 0)
        assert len(await owners()) == 2  # both hold a share
        assert [restarts(rt) for rt, _, _ in workers] == [0.0, 0.0]
    finally:
        for rt, stop, task in workers:
            stop.set()
            await task
            await rt.close()
    state = await derived_state(runtime, keys.app_id)
    wins = {row[0]: row[3] for row in state["player_stats"] if row[1] == "wins" and row[2] == "all"}
    assert wins == {f"p{i}": sent // 5 for i in range(5)}


async def test_a_worker_whose_lease_is_not_surely_its_own_applies_nothing(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    """Heartbeats stalled (the lease clock ran out): the partition task stops writing, so it can
    never race the worker that takes the partition over; once renewed it applies again."""
    keys = await factory.app()
    await configure(client, keys)
    assert (await send(client, keys, [won(i, player="solo") for i in range(5)])).status_code == 202
    log = stream_log(runtime)
    assert log is not None
    (partition,) = [p for p in range(4) if await log.pending(p)]
    lease = LeaseClock()  # never renewed
    stop = asyncio.Event()
    task = asyncio.create_task(_own_partition(runtime, log, partition, stop, lease))
    try:
        await asyncio.sleep(1.5)  # several rounds of the task's loop
        assert await db_events(runtime, keys.app_id) == (0, 0)
        assert await log.pending(partition) == 5
        lease.until = asyncio.get_running_loop().time() + 60  # renewed
        await until(lambda: _applied(runtime, keys.app_id, 5), what="5 events were applied")
        assert await db_events(runtime, keys.app_id) == (5, 0)
    finally:
        stop.set()
        await task


async def test_a_partition_given_up_keeps_its_lease_until_its_task_has_stopped(runtime: Runtime) -> None:
    """Rebalancing gives a joining worker its share, but the old owner releases a partition only
    once its task has stopped: the new owner must not read the applied position while the old
    owner's last batch is still committing."""
    log = stream_log(runtime)
    assert log is not None
    held, waiting = await _rebalance(runtime, log, "old", 30.0, set())
    assert held == {0, 1, 2, 3} and not waiting  # alone: every partition
    now = datetime.now(UTC)
    async with runtime.sessions() as session, session.begin():
        await event_log.heartbeat(session, log.namespace, "new", now, now + timedelta(seconds=30))

    async def lease_owners() -> dict[str, str]:
        async with runtime.read_sessions() as session:
            rows = await session.execute(sa.select(PartitionLease.stream, PartitionLease.owner).where(
                PartitionLease.stream.like(f"{log.namespace.upper()}_%"),
                PartitionLease.expires_at > datetime.now(UTC)))
            return dict(rows.all())

    held, _ = await _rebalance(runtime, log, "old", 30.0, {0, 1, 2, 3})  # its tasks still run
    given = {0, 1, 2, 3} - held
    assert given and held  # the newcomer's share, by rendezvous hashing
    assert set((await lease_owners()).values()) == {"old"}  # nothing released while running
    new_held, new_waiting = await _rebalance(runtime, log, "new", 30.0, set())
    assert new_held == set() and new_waiting  # the newcomer waits for the handover
    held, _ = await _rebalance(runtime, log, "old", 30.0, held)  # the given ones' tasks have stopped
    new_held, new_waiting = await _rebalance(runtime, log, "new", 30.0, set())
    assert new_held == given and not new_waiting
    owners = await lease_owners()
    assert {s for s, o in owners.items() if o == "new"} == {log.stream(p) for p in given}


async def _silenced(log: StreamLog, partition: int) -> None:
    """Make the partition's pull subscription silent the way a lost pull request does: fetches
    time out although the stream has messages (here: bound to a consumer matching nothing)."""
    js = await log.js()
    await log.forget(partition)
    log._subs[partition] = await js.pull_subscribe(  # the state under test
        f"{log.namespace}.events.{partition}.nothing-matches", durable=f"{log.namespace}-silent-{partition}",
        stream=log.stream(partition))


async def _applied_once_silenced(client: httpx.AsyncClient, factory: Factory, runtime: Runtime,
                                 after_silencing: object) -> tuple[float, float]:
    """Apply 5 events of one partition, silence its subscription, send 5 more: returns the
    seconds until they were applied and the consumer restarts counted meanwhile."""
    keys = await factory.app()
    await configure(client, keys)
    log = stream_log(runtime)
    assert log is not None
    assert (await send(client, keys, [won(i, player="solo") for i in range(5)])).status_code == 202
    (partition,) = [p for p in range(4) if await log.pending(p)]
    lease = LeaseClock()
    lease.until = asyncio.get_running_loop().time() + 600
    stop = asyncio.Event()
    task = asyncio.create_task(_own_partition(runtime, log, partition, stop, lease))
    try:
        await until(lambda: _applied(runtime, keys.app_id, 5), what="5 events were applied")
        assert await db_events(runtime, keys.app_id) == (5, 0)
        await _silenced(log, partition)
        before = restarts(runtime)
        assert (await send(client, keys, [won(i, player="solo") for i in range(5, 10)])).status_code == 202
        if callable(after_silencing):
            after_silencing(log)
        started = asyncio.get_running_loop().time()
        await until(lambda: _applied(runtime, keys.app_id, 10), what="10 events were applied")
        assert await db_events(runtime, keys.app_id) == (10, 0)
        return asyncio.get_running_loop().time() - started, restarts(runtime) - before
    finally:
        stop.set()
        await task


async def test_a_silent_pull_subscription_is_noticed_and_positioned_again(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """A partition whose fetches come back empty while its stream holds unapplied messages (a
    pull request lost in a reconnect) checks the stream after STALL_SECONDS idle and positions
    its consumer again: the events are applied, once, and the restart is counted."""
    monkeypatch.setattr("questline.pipeline.worker.STALL_SECONDS", 1.0)
    seconds, restarted = await _applied_once_silenced(client, factory, runtime, None)
    assert restarted == 1
    assert seconds >= 0.5  # found by the idle check, not by the next fetch


async def test_a_reconnection_positions_every_partition_again(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """After NATS reconnects, a partition task positions its consumer again at once, without
    waiting for the idle check (here pushed out of reach)."""
    monkeypatch.setattr("questline.pipeline.worker.STALL_SECONDS", 3600.0)

    def reconnected(log: StreamLog) -> None:
        log.connections += 1  # what the connection's reconnected callback does

    _, restarted = await _applied_once_silenced(client, factory, runtime, reconnected)
    assert restarted == 0  # a reconnection is not a stall


async def test_publishing_while_a_worker_positions_its_consumers_always_succeeds(settings: Settings) -> None:
    """A process publishing for the first time while the partitions' owner positions their
    consumers (as on taking them over: delete, then make again from a sequence) is acknowledged
    every time. NATS answers two racing consumer makes with different start positions with a 500,
    so publishers make only the streams; the owner makes and positions the consumers."""
    worker_log = StreamLog(settings)
    publishers: list[StreamLog] = []
    stop = asyncio.Event()

    async def positions(log: StreamLog) -> int:
        done = 0
        while not stop.is_set():
            for partition in range(log.partitions):
                await log.reset(partition, 1)
                done += 1
        return done

    try:
        for partition in range(worker_log.partitions):
            await worker_log.ensure(partition)
        racing = asyncio.create_task(positions(worker_log))
        acked = 0
        for round_ in range(15):
            publisher = StreamLog(settings)
            publishers.append(publisher)
            rows = [{"app_id": "app_race", "event_id": f"e{round_}-{i}", "partition": i % publisher.partitions,
                     "occurred_at": datetime.now(UTC), "received_at": datetime.now(UTC)} for i in range(8)]
            acked += sum((await publisher.publish(rows)).values())
        stop.set()
        assert await racing > 0  # the owner really was positioning meanwhile
        assert acked == 15 * 8
        assert sum([await worker_log.pending(p) for p in range(worker_log.partitions)]) == 15 * 8
    finally:
        stop.set()
        await worker_log.delete_streams()
        for log in (worker_log, *publishers):
            await log.close()
