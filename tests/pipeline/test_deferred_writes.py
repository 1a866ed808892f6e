"""Writes the worker holds back and sends as one statement (``kit.db.deferring``).

On PostgreSQL (asyncpg) a batch's stat cells, tracks, XP, streaks, postings, outbox rows and done
marks go to the server together, one ``WITH w0 AS (…), w1 AS (…) SELECT 1``; elsewhere each is
written at once. Either way what is stored is the same, two writes of one table never share a
statement, and a queue never outlives its transaction. Every test scopes its rows by an app id of
its own (the PostgreSQL database is shared).
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import sqlalchemy as sa

from questline.kit.db import Bulk, deferring, send_queued, unit_of_work
from questline.kit.ids import ulid
from questline.kit.runtime import Runtime
from questline.pipeline import repository as event_log
from questline.pipeline.models import EventRecord, OutboxMessage
from questline.rules.models import PlayerStat
from tests.conftest import Factory
from tests.pipeline.helpers import configure, recorded_statements, send, settle

CELLS = Bulk(PlayerStat.__table__, key=("app_id", "player_id", "stat", "period_key"),
             update=("value", "samples", "last_at", "last_seq", "updated_at"))
AT = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def _cell(app_id: str, player: str, value: int) -> dict[str, object]:
    return {"app_id": app_id, "player_id": player, "stat": "score", "period_key": "all", "value": value,
            "samples": 1, "last_at": AT, "last_seq": value, "updated_at": AT}


async def _cells(runtime: Runtime, app_id: str) -> dict[str, int]:
    async with runtime.read_sessions() as session:
        rows = await session.execute(sa.select(PlayerStat.player_id, PlayerStat.value)
                                     .where(PlayerStat.app_id == app_id))
        return {player: int(value) for player, value in rows}


async def test_queued_writes_store_what_immediate_ones_store(runtime: Runtime) -> None:
    app_id = f"defer_{ulid()}"
    async with unit_of_work(runtime.sessions) as session:
        await session.execute(sa.text("SELECT 1"))  # the transaction has begun: writes may be queued
        with recorded_statements(runtime) as sent:
            with deferring(session):
                await CELLS.write(session, [_cell(app_id, "ann", 1)])
                await event_log.add_outbox(session, [event_log.outbox_row(app_id, "t.0", "ann", {"n": [1, None]}, AT)])
                await CELLS.write(session, [_cell(app_id, "ann", 2)])  # the same table: the queue goes first
                await CELLS.write(session, [_cell(app_id, "bob", 3)])
            await send_queued(session)
            await send_queued(session)  # nothing left: nothing sent
    assert await _cells(runtime, app_id) == {"ann": 2, "bob": 3}
    async with runtime.read_sessions() as session:
        outbox = (await session.execute(sa.select(OutboxMessage.type, OutboxMessage.payload)
                                        .where(OutboxMessage.app_id == app_id))).all()
    assert [tuple(row) for row in outbox] == [("t.0", {"n": [1, None]})]
    if runtime.engine.dialect.driver == "asyncpg":
        assert len(sent) == 3, sent
        assert sent[0].startswith("WITH w0 AS (INSERT INTO player_stats") and "w1 AS (INSERT INTO outbox" in sent[0]
        assert all(s.count("INSERT INTO player_stats") == 1 for s in sent), sent
    else:
        assert len(sent) == 4, sent  # each written at once


async def test_a_queue_left_by_a_rolled_back_transaction_is_never_sent(runtime: Runtime) -> None:
    app_id = f"defer_{ulid()}"
    async with runtime.sessions() as session:
        await session.begin()
        await session.execute(sa.text("SELECT 1"))
        with deferring(session):
            await CELLS.write(session, [_cell(app_id, "ann", 1)])
        await session.rollback()
        async with session.begin():
            await session.execute(sa.text("SELECT 1"))
            await send_queued(session)
            with deferring(session):
                await CELLS.write(session, [_cell(app_id, "bob", 2)])
            await send_queued(session)
    assert await _cells(runtime, app_id) == {"bob": 2}


async def test_a_batch_of_two_apps_writes_each_apps_effects_once(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    apps = [await factory.app(), await factory.app()]
    for keys in apps:
        await configure(client, keys)
    await settle(runtime)  # what earlier tests left pending is not this batch's
    for n, keys in enumerate(apps):
        events = [{"id": f"e{i}", "player_id": f"p{i % 3}", "type": "match.won", "data": {"score": 10 * (n + 1)}}
                  for i in range(6)]
        assert (await send(client, keys, events)).status_code == 202
    with recorded_statements(runtime) as sent:
        assert await settle(runtime) == 12
    async with runtime.read_sessions() as session:
        for n, keys in enumerate(apps):
            scores = dict((await session.execute(
                sa.select(PlayerStat.player_id, PlayerStat.value)
                .where(PlayerStat.app_id == keys.app_id, PlayerStat.stat == "score",
                       PlayerStat.period_key == "all"))).all())
            assert scores == {"p0": 20 * (n + 1), "p1": 20 * (n + 1), "p2": 20 * (n + 1)}
            pending = (await session.execute(sa.select(sa.func.count()).select_from(EventRecord)
                                             .where(EventRecord.app_id == keys.app_id,
                                                    EventRecord.pending > 0))).scalar_one()
            assert pending == 0
            changed = (await session.execute(
                sa.select(sa.func.count()).select_from(OutboxMessage)
                .where(OutboxMessage.app_id == keys.app_id, OutboxMessage.type == "stat.changed"))).scalar_one()
            assert changed > 0
        profile = (await client.get("/v1/players/p0", headers=apps[1].server)).json()
        assert profile["levels"]["xp"]["total_xp"] == 120  # two wins, 60 XP each (daily cap 150)
    assert all(s.count("INSERT INTO player_stats") <= 1 for s in sent), sent
