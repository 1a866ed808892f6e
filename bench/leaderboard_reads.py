"""Leaderboard reads measured in process: the server's CPU and statements per top-100 and around-me read.

Drives the real app through httpx's ASGI transport (no sockets, no uvicorn, as ``bench/edge.py``
does) against a board seeded with ``--entries`` scored players through the real pipeline
(events, then the worker drained in this process). Every read uses a player token (privacy
applied for that player). Prints requests/s, CPU µs per read and statements per read, counted
where the database sees them (``bench/edge.py``'s counters: the wire on PostgreSQL, SQLite's trace).
The CPU figure includes the ASGI client's own share, the same before and after a change.

    python bench/leaderboard_reads.py --database sqlite
    python bench/leaderboard_reads.py --database postgres --redis redis://127.0.0.1:6379/0
    python bench/leaderboard_reads.py --database sqlite --profile /tmp/reads.prof   # cProfile, CPU clock
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager
from rich.console import Console
from rich.table import Table

from bench.edge import Figure, SqliteCounter, WireCounter, counted_runtime, drive, postgres_database
from questline import migrations
from questline.app import create_app
from questline.kit.db import unit_of_work
from questline.kit.logging import configure_logging
from questline.kit.pagination import PageParams
from questline.kit.runtime import Runtime
from questline.leaderboards import service
from questline.pipeline.worker import drain
from questline.tenancy import service as tenancy

console = Console(stderr=True)
BOARD = {"event_type": "score", "field": "data.points", "operator": "sum", "name": "Bench board"}


async def measure(database_url: str, redis_url: str | None, args: argparse.Namespace) -> list[Figure]:
    async with counted_runtime(database_url, redis_url, "lbreads") as (runtime, counter):
        return await _measure(runtime, counter, args)


async def _measure(runtime: Runtime, counter: WireCounter | SqliteCounter, args: argparse.Namespace) -> list[Figure]:
    seen: Counter[str] = Counter()
    if args.trace and isinstance(counter, SqliteCounter):
        counted = counter._hit

        def traced(sql: str) -> None:
            counted(sql)
            if tracing:
                seen[sql[:160]] += 1

        counter._hit = traced  # type: ignore[method-assign]
    tracing = False
    app = create_app(runtime=runtime, background=False)
    figures = []
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench.test") as client:
            async with unit_of_work(runtime.sessions) as session:
                org = await tenancy.create_org(session, runtime.clock, "Bench Org")
                bench_app, server_key, _ = await tenancy.create_app(session, runtime.clock, org.id, "Bench")
            app_id = bench_app.id
            server = {"Authorization": f"Bearer {server_key}"}
            resp = await client.put("/v1/definitions/leaderboard/bench", headers=server, json=BOARD)
            assert resp.status_code in (200, 201), resp.text
            for start in range(0, args.entries, 1000):
                events = [{"id": f"seed-{i}", "player_id": f"p{i:07d}", "type": "score",
                           "data": {"points": (i * 7919) % 100_000}}
                          for i in range(start, min(args.entries, start + 1000))]
                resp = await client.post("/v1/events", headers=server, json={"events": events})
                assert resp.status_code == 202, resp.text
                await drain(runtime)
            tokens = []
            for i in range(args.players):
                pid = f"p{(i * 104729) % args.entries:07d}"
                resp = await client.post(f"/v1/players/{pid}/tokens", headers=server, json={})
                assert resp.status_code == 201, resp.text
                tokens.append((pid, {"Authorization": f"Bearer {resp.json()['token']}"}))
            turn = iter(range(10**12))

            def top() -> Awaitable[httpx.Response]:
                _, headers = tokens[next(turn) % len(tokens)]
                return client.get("/v1/leaderboards/bench", params={"limit": 100}, headers=headers)

            def around() -> Awaitable[httpx.Response]:
                pid, headers = tokens[next(turn) % len(tokens)]
                return client.get(f"/v1/leaderboards/bench/players/{pid}", params={"around": 5},
                                  headers=headers)

            calls: dict[str, Callable[[], Awaitable[httpx.Response]]] = {
                "GET top 100 (player token)": top, "GET around-me 5 (player token)": around}
            for call in calls.values():  # warm the index, the caches and the pool; check replies
                resp = await call()
                assert resp.status_code == 200 and resp.json()["items"], resp.text
                await drive(call, max(2 * args.players, args.requests // 10), args.concurrency)
            tracing = True
            profiler = cProfile.Profile(time.process_time) if args.profile else None
            for name, call in calls.items() if args.http else ():
                if profiler:
                    profiler.enable()
                before, cpu = counter.statements, time.process_time()
                seconds = await drive(call, args.requests, args.concurrency)
                figures.append(Figure(name, args.requests, seconds, time.process_time() - cpu,
                                      counter.statements - before))
                if profiler:
                    profiler.disable()
            # The read alone (the leaderboards area's share, without the request edge): the
            # service's top and place as the routes call them, reply serialized, one session each.
            page = PageParams(limit=100)

            async def service_top() -> None:
                pid, _ = tokens[next(turn) % len(tokens)]
                async with runtime.sessions() as session:
                    info = await service.board_info(session, runtime, app_id, "bench")
                    service.to_json(await service.top(session, runtime, app_id, info, page, viewer=pid))

            async def service_around() -> None:
                pid, _ = tokens[next(turn) % len(tokens)]
                async with runtime.sessions() as session:
                    info = await service.board_info(session, runtime, app_id, "bench")
                    service.to_json(await service.player_place(session, runtime, app_id, info, pid, around=5))

            for name, read in (("service top 100 (no edge)", service_top),
                               ("service around-me 5 (no edge)", service_around)):
                for _ in range(args.players):
                    await read()
                if profiler:
                    profiler.enable()
                before, cpu, started = counter.statements, time.process_time(), time.perf_counter()
                for _ in range(args.requests):
                    await read()
                figures.append(Figure(name, args.requests, time.perf_counter() - started,
                                      time.process_time() - cpu, counter.statements - before))
                if profiler:
                    profiler.disable()
            if profiler:
                profiler.dump_stats(args.profile)
            for sql, times in seen.most_common(20):
                console.print(f"{times:6d}  {sql}")
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--postgres", default=os.environ.get("QUESTLINE_TEST_DATABASE_URL",
                                                             "postgresql+asyncpg://postgres@127.0.0.1:5432/test"),
                        help="a PostgreSQL URL whose server may create a scratch database")
    parser.add_argument("--redis", default=None, help="a Redis URL: the shared rank index and caches' pub/sub")
    parser.add_argument("--entries", type=int, default=10_000, help="scored players on the board")
    parser.add_argument("--players", type=int, default=200, help="players with tokens who read")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--no-http", dest="http", action="store_false",
                        help="measure only the service reads (no request edge)")
    parser.add_argument("--trace", action="store_true", help="SQLite: print the statements the reads ran")
    parser.add_argument("--profile", type=Path, default=None, help="write a cProfile (CPU clock) of the reads here")
    args = parser.parse_args()
    configure_logging("WARNING")
    load_before = os.getloadavg()
    if args.database == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
            await asyncio.to_thread(migrations.upgrade, url)
            figures = await measure(url, args.redis, args)
    else:
        async with postgres_database(args.postgres) as url:
            figures = await measure(url, args.redis, args)
    load_after = os.getloadavg()
    table = Table(title=f"leaderboard reads, {args.database}{' + redis' if args.redis else ''}, {args.entries:,} "
                        f"entries, {args.concurrency} concurrent, in process")
    for column in ("read", "requests/s", "CPU µs/request", "statements/request"):
        table.add_column(column, justify="right" if column != "read" else "left")
    for f in figures:
        table.add_row(f.name, f"{f.per_second:,.0f}", f"{f.cpu_us_per_request:,.0f}", f"{f.statements_per_request:.2f}")
    Console().print(table)
    Console().print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (2 cores, shared)")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
