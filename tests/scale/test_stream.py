"""The event log on NATS JetStream: ingest publishes and answers once acked, workers apply each
partition's stream exactly once (offsets in the same transaction), leases share the partitions
out, and an unreachable log is a 503 that loses nothing."""

from __future__ import annotations

import asyncio
import os
import socket

import httpx
import pytest
import sqlalchemy as sa

from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from questline.mechanics import install
from questline.pipeline import repository as event_log
from questline.pipeline.models import EventRecord, PartitionLease, StreamOffset
from questline.pipeline.stream import StreamLog, stream_log
from questline.pipeline.worker import apply_stream_batch, drain, run_stream_worker
from tests.conftest import REQUIRE_SERVICES, Factory, problem
from tests.pipeline.helpers import configure, send
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
        for _ in range(300):  # real background loops: wait, bounded
            held = await owners()
            if len(held) == 4 and len(set(held.values())) == 2:
                break
            await asyncio.sleep(0.05)
        assert len(held) == 4 and len(set(held.values())) == 2, held  # both workers hold a share
        assert (await send(client, keys, [won(i) for i in range(40)])).status_code == 202
        for _ in range(300):
            if await db_events(runtime, keys.app_id) == (40, 0):
                break
            await asyncio.sleep(0.05)
        assert await db_events(runtime, keys.app_id) == (40, 0)

        rt0, stop0, task0 = workers.pop(0)  # one leaves: its partitions move to the other
        stop0.set()
        await task0
        await rt0.close()
        assert (await send(client, keys, [won(i) for i in range(40, 80)])).status_code == 202
        for _ in range(400):
            if await db_events(runtime, keys.app_id) == (80, 0):
                break
            await asyncio.sleep(0.05)
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
