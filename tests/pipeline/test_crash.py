"""A worker killed with SIGKILL at random moments loses nothing and counts nothing twice."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys

import httpx
import pytest
import sqlalchemy as sa

from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from questline.ledger import service as ledger
from questline.pipeline.models import EventRecord
from tests.conftest import Factory
from tests.pipeline.helpers import configure, send, until
from tests.pipeline.snapshot import derived_state, expected_from_log
from tests.pipeline.test_replay import random_events

TOTAL_EVENTS = 3000


def worker_env(settings: Settings) -> dict[str, str]:
    """A child worker's environment: the parent test's database, Redis and event log (the JetStream
    pass's ingest publishes to NATS, so a child reading the database's log would never see an event)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUESTLINE_")}
    env |= {"QUESTLINE_DATABASE_URL": settings.database_url, "QUESTLINE_WORKER_BATCH_SIZE": "40",
            "QUESTLINE_LOG_LEVEL": "WARNING", "QUESTLINE_ENV": "test", "QUESTLINE_SECRET_KEY": settings.signing_key(),
            "QUESTLINE_PIPELINE_PARTITIONS": str(settings.pipeline_partitions)}
    if settings.redis_url:
        env |= {"QUESTLINE_REDIS_URL": settings.redis_url, "QUESTLINE_REDIS_NAMESPACE": settings.redis_namespace}
    if settings.event_log:
        env |= {"QUESTLINE_EVENT_LOG": settings.event_log,
                "QUESTLINE_EVENT_LOG_NAMESPACE": settings.event_log_namespace}
    return env


async def start_worker(settings: Settings) -> asyncio.subprocess.Process:
    env = worker_env(settings)
    return await asyncio.create_subprocess_exec(sys.executable, "-m", "questline", "worker", env=env,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)


async def done_count(runtime: Runtime, app_id: str) -> tuple[int, int]:
    async with runtime.read_sessions() as session:
        rows = await session.execute(
            sa.select(EventRecord.pending, sa.func.count()).where(EventRecord.app_id == app_id)
            .group_by(EventRecord.pending))
        counts = {int(pending): int(n) for pending, n in rows}
    done = counts.pop(0, 0)
    return done, sum(counts.values())


async def test_a_child_worker_applies_what_this_process_ingested(client: httpx.AsyncClient, factory: Factory,
                                                                 runtime: Runtime, settings: Settings) -> None:
    """The drills' child workers read the log the test's own engine writes: the database's, or
    JetStream's in the JetStream pass (``QUESTLINE_TEST_EVENT_LOG``), with the same namespace."""
    env = worker_env(settings)
    assert env.get("QUESTLINE_EVENT_LOG") == settings.event_log
    assert env.get("QUESTLINE_EVENT_LOG_NAMESPACE", "questline") == (
        settings.event_log_namespace if settings.event_log else "questline")
    keys = await factory.app()
    await configure(client, keys)
    events = random_events(60, seed=5)
    worker = await start_worker(settings)
    try:
        assert (await send(client, keys, events)).status_code == 202

        async def applied() -> bool:
            return await done_count(runtime, keys.app_id) == (len(events), 0)

        await until(applied, what="the child worker applied the events")
    finally:
        worker.send_signal(signal.SIGTERM)
        await worker.wait()
    expected = await expected_from_log(runtime, keys.app_id, {})
    state = await derived_state(runtime, keys.app_id)
    wins = {row[0]: row[3] for row in state["player_stats"] if row[1] == "wins" and row[2] == "all"}
    assert wins == expected["wins"] and sum(wins.values()) == len(events)


@pytest.mark.slow
async def test_sigkilled_worker_loses_and_doubles_nothing(client: httpx.AsyncClient, factory: Factory,
                                                         runtime: Runtime, settings: Settings) -> None:
    keys = await factory.app()
    await configure(client, keys)
    rnd = random.Random(42)
    events = random_events(TOTAL_EVENTS, seed=99)
    kills = 0
    worker = await start_worker(settings)
    try:
        for start in range(0, TOTAL_EVENTS, 250):
            resp = await send(client, keys, events[start:start + 250])
            assert resp.status_code == 202, resp.text
            before, _ = await done_count(runtime, keys.app_id)

            async def progressed(before: int = before) -> bool:
                return (await done_count(runtime, keys.app_id))[0] > before

            await until(progressed, what="the worker made progress")
            # Let it get a random way into its next batches, then kill it without warning.
            await asyncio.sleep(rnd.uniform(0, 0.3))
            worker.send_signal(signal.SIGKILL)
            await worker.wait()
            kills += 1
            worker = await start_worker(settings)

        async def drained() -> bool:
            return await done_count(runtime, keys.app_id) == (TOTAL_EVENTS, 0)

        await until(drained, what="the worker drained the log")
    finally:
        if worker.returncode is None:
            worker.send_signal(signal.SIGTERM)
            await worker.wait()

    assert kills >= 10
    assert await done_count(runtime, keys.app_id) == (TOTAL_EVENTS, 0)
    expected = await expected_from_log(runtime, keys.app_id, {})
    state = await derived_state(runtime, keys.app_id)
    wins = {row[0]: row[3] for row in state["player_stats"] if row[1] == "wins" and row[2] == "all"}
    scores = {row[0]: row[3] for row in state["player_stats"] if row[1] == "score" and row[2] == "all"}
    xp = {row[0]: row[2] for row in state["player_tracks"] if row[1] == "xp"}
    assert wins == expected["wins"] and sum(wins.values()) == TOTAL_EVENTS
    assert scores == expected["score"]
    assert xp == expected["xp"]
    async with runtime.read_sessions() as session:
        assert await ledger.verify(session, keys.app_id) == []
        for player, points in expected["points"].items():
            balances = await ledger.player_balances(session, keys.app_id, player)
            held = balances["points"].balance if "points" in balances else 0
            assert held == points, (player, held, points)


PARTITIONED_EVENTS = 20_000
WORKERS = 5


@pytest.mark.slow
async def test_five_partition_writers_killed_at_random_lose_and_double_nothing(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, settings: Settings, backend: str) -> None:
    """Five worker processes share the log's partitions (one writer each at a time) while events
    stream in; workers are SIGKILLed at random and restarted. Every total equals the log's."""
    if backend != "postgres":
        pytest.skip("several writers at once is PostgreSQL's (SQLite has one writer whatever the processes)")
    keys = await factory.app()
    await configure(client, keys)
    rnd = random.Random(7)
    events = random_events(PARTITIONED_EVENTS, seed=1234, players=400)
    workers = [await start_worker(settings) for _ in range(WORKERS)]
    kills = 0
    try:
        for start in range(0, PARTITIONED_EVENTS, 1000):
            resp = await send(client, keys, events[start:start + 1000])
            assert resp.status_code == 202, resp.text
            await asyncio.sleep(rnd.uniform(0, 0.2))
            victim = rnd.randrange(WORKERS)
            workers[victim].send_signal(signal.SIGKILL)
            await workers[victim].wait()
            kills += 1
            workers[victim] = await start_worker(settings)

        async def drained() -> bool:
            return await done_count(runtime, keys.app_id) == (PARTITIONED_EVENTS, 0)

        await until(drained, seconds=600, what="the workers drained the log")
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.send_signal(signal.SIGTERM)
                await worker.wait()

    assert kills == PARTITIONED_EVENTS // 1000
    assert await done_count(runtime, keys.app_id) == (PARTITIONED_EVENTS, 0)
    async with runtime.read_sessions() as session:
        partitions = (await session.execute(
            sa.select(sa.func.count(sa.distinct(EventRecord.partition))).where(EventRecord.app_id == keys.app_id)
        )).scalar_one()
    assert partitions == settings.pipeline_partitions  # the players really were spread over every partition
    expected = await expected_from_log(runtime, keys.app_id, {})
    state = await derived_state(runtime, keys.app_id)
    wins = {row[0]: row[3] for row in state["player_stats"] if row[1] == "wins" and row[2] == "all"}
    scores = {row[0]: row[3] for row in state["player_stats"] if row[1] == "score" and row[2] == "all"}
    xp = {row[0]: row[2] for row in state["player_tracks"] if row[1] == "xp"}
    assert wins == expected["wins"] and sum(wins.values()) == PARTITIONED_EVENTS
    assert scores == expected["score"]
    assert xp == expected["xp"]
    async with runtime.read_sessions() as session:
        assert await ledger.verify(session, keys.app_id) == []
        for player, points in expected["points"].items():
            balances = await ledger.player_balances(session, keys.app_id, player)
            held = balances["points"].balance if "points" in balances else 0
            assert held == points, (player, held, points)
