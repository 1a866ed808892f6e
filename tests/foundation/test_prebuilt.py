"""Prebuilt reads (``kit.prebuilt``): the same values as a session reads, scoped by their parameters,
on the pool's own connections (a burst opens none beyond the pool), and a connection that fails
underneath is dropped and the read answered the usual way."""

from __future__ import annotations

import asyncio
from datetime import UTC
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.util import greenlet_spawn

from questline.kit.db import create_engine, unit_of_work
from questline.kit.prebuilt import PrebuiltRead
from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from questline.players import repository as players_repo
from questline.players.models import Player
from questline.tenancy import service as tenancy

COLUMNS = ("player_id", "display_name", "show_on_global_leaderboard", "preferences", "traits", "created_at",
           "timezone_changed_at")
STATEMENT = sa.select(*(Player.__table__.c[name] for name in COLUMNS)).where(
    Player.__table__.c.app_id == sa.bindparam("app_id"), Player.__table__.c.player_id == sa.bindparam("player_id"))
READ = PrebuiltRead(STATEMENT)


async def _two_apps(runtime: Runtime) -> tuple[str, str]:
    async with unit_of_work(runtime.sessions) as session:
        org = await tenancy.create_org(session, runtime.clock, "Prebuilt")
        one, _, _ = await tenancy.create_app(session, runtime.clock, org.id, "One")
        two, _, _ = await tenancy.create_app(session, runtime.clock, org.id, "Two")
        await players_repo.insert_missing(session, one.id, ["ann"], runtime.clock.now())
        await players_repo.insert_missing(session, two.id, ["ann"], runtime.clock.now())
        await players_repo.update(session, one.id, "ann", {
            "display_name": "Ann ✓", "show_on_global_leaderboard": False, "preferences": {"sound": False, "v": 7},
            "traits": {"team": "red", "level": 3}})
    return one.id, two.id


async def test_a_prebuilt_read_gives_what_a_session_reads(runtime: Runtime) -> None:
    one, two = await _two_apps(runtime)
    async with runtime.read_sessions() as session:
        expected = tuple((await session.execute(STATEMENT, {"app_id": one, "player_id": "ann"})).one())
    row = await READ.first(runtime.engine, {"app_id": one, "player_id": "ann"})
    assert row == expected
    assert row is not None
    assert row[1:5] == ("Ann ✓", False, {"sound": False, "v": 7}, {"team": "red", "level": 3})
    assert type(row[2]) is bool and row[5].tzinfo is not None and row[5].utcoffset() == UTC.utcoffset(None)
    assert row[6] is None
    # Every read is scoped by its parameters: the other app's player of the same id, and nobody.
    other = await READ.first(runtime.engine, {"app_id": two, "player_id": "ann"})
    assert other is not None and other[1] is None and other[2] is True and other[3] == {}
    assert await READ.first(runtime.engine, {"app_id": one, "player_id": "nobody"}) is None
    assert await READ.all(runtime.engine, {"app_id": "app_nope", "player_id": "ann"}) == []


async def test_a_burst_of_reads_waits_for_the_pools_connections(runtime: Runtime, settings: Settings) -> None:
    one, _ = await _two_apps(runtime)
    engine = create_engine(settings.database_url, pool_size=3)
    opened, out = [0], [0]
    most = [0]

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(*_args: Any) -> None:
        opened[0] += 1

    @event.listens_for(engine.sync_engine, "checkout")
    def _checkout(*_args: Any) -> None:
        out[0] += 1
        most[0] = max(most[0], out[0])

    @event.listens_for(engine.sync_engine, "checkin")
    def _checkin(*_args: Any) -> None:
        out[0] -= 1

    try:
        rows = await asyncio.gather(*(READ.first(engine, {"app_id": one, "player_id": "ann"}) for _ in range(40)))
        assert all(row is not None and row[1] == "Ann ✓" for row in rows)
        # PostgreSQL's pool could open as many again (max_overflow), each closed once back: never here.
        assert most[0] <= 3 and opened[0] <= 3, (most[0], opened[0])
        assert out[0] == 0
    finally:
        await engine.dispose()


async def test_a_connection_that_died_is_dropped_and_the_read_still_answered(runtime: Runtime,
                                                                             settings: Settings) -> None:
    one, _ = await _two_apps(runtime)
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        first = await READ.first(engine, {"app_id": one, "player_id": "ann"})
        pooled = await engine.raw_connection()
        driver = pooled.driver_connection
        assert driver is not None
        if engine.dialect.name == "postgresql":
            driver.terminate()  # the server side is gone; the pool does not know yet
        else:
            async def broken(*_args: Any) -> Any:
                raise ValueError("Connection closed")  # what aiosqlite says once its thread has stopped

            driver.execute_fetchall = broken
        await greenlet_spawn(pooled.close)
        again = await READ.first(engine, {"app_id": one, "player_id": "ann"})
        assert again == first and again is not None and again[1] == "Ann ✓"
        # The dead connection was invalidated: the next read takes a live one from the pool.
        fresh = await engine.raw_connection()
        try:
            assert fresh.driver_connection is not driver
        finally:
            await greenlet_spawn(fresh.close)
    finally:
        await engine.dispose()
