"""Partitions with a few pending events each share one worker batch (one transaction, one set of
loads); a partition with a backlog of its own is a batch alone; a partition another writer holds
is left to it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import event as sa_event

from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from questline.pipeline.models import EventRecord, partition_of
from questline.pipeline.worker import PIPELINE_LOCK, BatchSizer, batch_groups, process_batch, process_round
from tests.conftest import Factory
from tests.pipeline.helpers import configure, send, settle


def players_in_distinct_partitions(app_id: str, partitions: int, count: int) -> list[str]:
    """``count`` player ids of this app whose events fall in ``count`` different partitions."""
    found: dict[int, str] = {}
    i = 0
    while len(found) < count:
        player = f"pl{i}"
        found.setdefault(partition_of(app_id, player, partitions), player)
        i += 1
    return list(found.values())


def won(player: str, n: int) -> dict[str, Any]:
    return {"id": f"{player}-{n}", "player_id": player, "type": "match.won", "data": {"score": 10},
            "timestamp": "2026-03-10T12:00:00Z"}


async def wins(client: httpx.AsyncClient, headers: dict[str, str], player: str) -> int:
    resp = await client.get(f"/v1/players/{player}/stats", headers=headers,
                            params={"at": "2026-03-10T12:00:00+00:00"})
    if resp.status_code == 404:  # not processed yet: the worker creates players
        return 0
    assert resp.status_code == 200, resp.text
    return int(resp.json().get("wins", {}).get("all", 0))


async def pending_of(runtime: Runtime, app_id: str) -> int:
    async with runtime.read_sessions() as session:
        return int((await session.execute(
            sa.select(sa.func.count()).select_from(EventRecord)
            .where(EventRecord.app_id == app_id, EventRecord.pending > 0))).scalar_one())


def test_small_partitions_share_a_batch_and_a_backlog_is_a_batch_alone() -> None:
    pending = {0: 3, 1: 2, 2: 600, 3: 1, 4: 700, 5: 4}
    for _ in range(20):  # the order is random; the grouping rules hold for every order
        groups = batch_groups(pending, 500)
        assert sorted(p for group in groups for p in group) == sorted(pending)  # each once
        for group in groups:
            # a group closes once it holds a batch's worth, so only its last partition takes it there
            assert sum(pending[p] for p in group[:-1]) < 500
        assert len(groups) <= 3  # the two backlogs close a group each; the small ones ride along
    (only,) = batch_groups({p: 1 for p in range(16)}, 500)  # single events over every partition: one batch
    assert sorted(only) == list(range(16))
    assert batch_groups({}, 500) == []


async def test_one_batch_processes_the_events_of_several_partitions(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, settings: Settings) -> None:
    if settings.event_log:
        pytest.skip("the database log's batches")
    keys = await factory.app()
    await configure(client, keys)
    await settle(runtime)  # what other tests left pending on the shared database
    a, b, c = players_in_distinct_partitions(keys.app_id, settings.pipeline_partitions, 3)
    resp = await send(client, keys, [won(a, 1), won(a, 2), won(b, 1), won(c, 1)])
    assert resp.status_code == 202, resp.text

    chosen = [partition_of(keys.app_id, p, settings.pipeline_partitions) for p in (a, b)]
    assert await process_batch(runtime, None, chosen) == 3  # a's two and b's one, in one transaction
    assert await wins(client, keys.server, a) == 2
    assert await wins(client, keys.server, b) == 1
    assert await wins(client, keys.server, c) == 0  # its partition was not in the batch
    assert await pending_of(runtime, keys.app_id) == 1

    await settle(runtime)
    assert await wins(client, keys.server, c) == 1
    assert await pending_of(runtime, keys.app_id) == 0


async def test_a_partition_another_writer_holds_is_left_to_it(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, settings: Settings) -> None:
    if settings.is_sqlite or settings.event_log:
        pytest.skip("PostgreSQL's partition locks (SQLite has one writer)")
    keys = await factory.app()
    await configure(client, keys)
    await settle(runtime)  # what other tests left pending on the shared database
    a, b = players_in_distinct_partitions(keys.app_id, settings.pipeline_partitions, 2)
    await send(client, keys, [won(a, 1), won(b, 1)])
    held, free = (partition_of(keys.app_id, p, settings.pipeline_partitions) for p in (a, b))

    async with runtime.sessions() as other, other.begin():
        await other.execute(sa.text("SELECT pg_advisory_xact_lock(:k, :p)"), {"k": PIPELINE_LOCK, "p": held})
        assert await process_batch(runtime, None, [held, free]) == 1
        assert await wins(client, keys.server, b) == 1
        assert await wins(client, keys.server, a) == 0  # held by the other writer: untouched
        assert await process_batch(runtime, None, [held]) == 0
    await settle(runtime)
    assert await wins(client, keys.server, a) == 1


async def test_a_round_of_single_events_over_many_partitions_is_one_transaction(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, settings: Settings) -> None:
    if settings.is_sqlite or settings.event_log:
        pytest.skip("PostgreSQL's partitions (SQLite's batch already spans them)")
    keys = await factory.app()
    await configure(client, keys)
    await settle(runtime)  # what other tests left pending on the shared database
    players = players_in_distinct_partitions(keys.app_id, settings.pipeline_partitions, 6)
    for player in players:  # one request each, as single events arrive
        assert (await send(client, keys, [won(player, 1)])).status_code == 202

    locks: list[str] = []

    def count_locks(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "pg_try_advisory_xact_lock" in statement:
            locks.append(statement)

    sa_event.listen(runtime.engine.sync_engine, "before_cursor_execute", count_locks)
    try:
        done = await process_round(runtime, BatchSizer(500))
    finally:
        sa_event.remove(runtime.engine.sync_engine, "before_cursor_execute", count_locks)
    assert done >= 6
    assert len(locks) == 1  # one batch took the writer locks of all six partitions at once
    for player in players:
        assert await wins(client, keys.server, player) == 1
