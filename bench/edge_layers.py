"""The request edge layer by layer: CPU per call of each piece an authenticated one-query GET runs.

``bench/edge.py`` gives the whole request's CPU; this script times the pieces one at a time, in
this process, on a real database, so the whole can be read as a sum: routing through the app's
route table, a read session opened and closed, the same one-row SELECT built afresh as an ORM
statement, as a prebuilt ORM statement, as a prebuilt Core statement through the session, through
a bare connection, and at the driver (the floor under SQLAlchemy). CPU is this process's (every
thread's: aiosqlite runs SQLite on a thread of its own), so other processes' load matters less
than for wall time; compare figures taken at a similar load average.

    python bench/edge_layers.py --database sqlite
    python bench/edge_layers.py --database postgres --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table
from starlette.routing import Match

from questline import migrations
from questline.app import create_app
from questline.kit.db import unit_of_work
from questline.kit.logging import configure_logging
from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from questline.players import repository as players_repo
from questline.players.models import Player
from questline.tenancy import service as tenancy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.edge import postgres_database

PATH = "/v1/players/p1/account"


async def cpu_per_call(call: Callable[[], Awaitable[Any]], calls: int) -> float:
    """Microseconds of this process's CPU per call (after a warm-up that fills caches and the pool)."""
    for _ in range(max(50, calls // 10)):
        await call()
    started = time.process_time()
    for _ in range(calls):
        await call()
    return (time.process_time() - started) / calls * 1e6


async def measure(database_url: str, calls: int) -> list[tuple[str, float]]:
    settings = Settings(env="test", database_url=database_url, run_worker=False, run_scheduler=False,
                        secret_key="bench-secret-key-that-is-long-enough-0123456789",  # type: ignore[arg-type]
                        log_level="WARNING")
    runtime = Runtime.build(settings)
    app = create_app(runtime=runtime, background=False)
    try:
        async with unit_of_work(runtime.sessions) as session:
            org = await tenancy.create_org(session, runtime.clock, "Layers")
            made, _, _ = await tenancy.create_app(session, runtime.clock, org.id, "Layers")
            await players_repo.insert_missing(session, made.id, ["p1"], runtime.clock.now())
        app_id, params = made.id, {"app_id": made.id, "player_id": "p1"}
        table = Player.__table__
        core = sa.select(*table.c).where(table.c.app_id == sa.bindparam("app_id"),
                                         table.c.player_id == sa.bindparam("player_id"))
        orm = sa.select(Player).where(Player.app_id == sa.bindparam("app_id"),
                                      Player.player_id == sa.bindparam("player_id"))
        readonly = runtime.read_sessions.kw["bind"]
        sqlite = runtime.engine.dialect.name == "sqlite"

        async def route() -> None:
            scope = {"type": "http", "method": "GET", "path": PATH, "root_path": "", "headers": [],
                     "query_string": b""}
            for candidate in app.router.routes:
                if candidate.matches(dict(scope))[0] is Match.FULL:
                    return
            raise SystemExit(f"no route matched {PATH}")

        async def session_only() -> None:
            async with runtime.read_sessions():
                pass

        async def orm_fresh() -> None:
            async with runtime.read_sessions() as s:
                stmt = sa.select(Player).where(Player.app_id == app_id, Player.player_id == "p1")
                assert (await s.execute(stmt)).scalar_one() is not None

        async def orm_prebuilt() -> None:
            async with runtime.read_sessions() as s:
                assert (await s.execute(orm, params)).scalar_one() is not None

        async def core_session() -> None:
            async with runtime.read_sessions() as s:
                (await s.execute(core, params)).one()

        async def core_connection() -> None:
            async with readonly.connect() as conn:
                (await conn.execute(core, params)).one()

        async def driver() -> None:
            async with readonly.connect() as conn:
                raw = (await conn.get_raw_connection()).driver_connection
                if sqlite:
                    cursor = await raw.execute("SELECT * FROM players WHERE app_id = ? AND player_id = ?",
                                               (app_id, "p1"))
                    assert await cursor.fetchall()
                    await cursor.close()
                else:
                    assert await raw.fetchrow("SELECT * FROM players WHERE app_id = $1 AND player_id = $2",
                                              app_id, "p1")

        pieces: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("route matching (the app's route table, in order)", route),
            ("read session opened and closed, no statement", session_only),
            ("SELECT: ORM statement built per call (read session)", orm_fresh),
            ("SELECT: prebuilt ORM statement (read session)", orm_prebuilt),
            ("SELECT: prebuilt Core statement, plain row (read session)", core_session),
            ("SELECT: prebuilt Core statement (bare connection)", core_connection),
            ("SELECT: driver only (pool checkout + the driver's call)", driver),
        ]
        return [(name, await cpu_per_call(call, calls)) for name, call in pieces]
    finally:
        await runtime.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--postgres", default=os.environ.get("QUESTLINE_TEST_DATABASE_URL",
                                                             "postgresql+asyncpg://postgres@127.0.0.1:5432/test"),
                        help="a PostgreSQL URL whose server may create a scratch database")
    parser.add_argument("--calls", type=int, default=3000, help="timed calls per piece")
    args = parser.parse_args()
    configure_logging("WARNING")
    load_before = os.getloadavg()[0]
    async with contextlib.AsyncExitStack() as stack:
        if args.database == "sqlite":
            url = f"sqlite+aiosqlite:///{Path(stack.enter_context(tempfile.TemporaryDirectory())) / 'layers.db'}"
            await asyncio.to_thread(migrations.upgrade, url)
        else:
            url = await stack.enter_async_context(postgres_database(args.postgres))
        figures = await measure(url, args.calls)
    table = Table(title=f"request edge by layer, {args.database}, in process, CPU per call")
    table.add_column("piece")
    table.add_column("CPU µs/call", justify="right")
    for name, micros in figures:
        table.add_row(name, f"{micros:,.0f}")
    Console().print(table)
    Console().print(f"load average before {load_before:.2f}, after {os.getloadavg()[0]:.2f} (2 cores, shared)")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
