"""The request edge, measured in process: ``/healthz`` against an authenticated one-query GET.

Both go through httpx's ASGI transport into the real app (no sockets, no uvicorn), so the
figures are the cost of the edge itself: middleware, routing, authentication, rate limits,
the database session and the JSON reply. Statements per request are counted where the
database sees them: on PostgreSQL at the wire (a small proxy counts the frontend's simple
``Query`` and extended ``Execute`` messages, so BEGIN, ROLLBACK and pre-pings show), on SQLite
through SQLite's own trace callback.

    python bench/edge.py --database sqlite
    python bench/edge.py --database postgres --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/test \
        --redis redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import struct
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import event
from sqlalchemy.engine import make_url

from questline import migrations
from questline.app import create_app
from questline.kit.db import unit_of_work
from questline.kit.logging import configure_logging
from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from questline.tenancy import service as tenancy

console = Console(stderr=True)


class WireCounter:
    """A TCP proxy in front of PostgreSQL that counts the statements clients send.

    Frontend messages after the startup packet are ``type (1 byte) + length (4 bytes) + body``;
    ``Q`` is a simple query (one statement, e.g. ``BEGIN``) and ``E`` executes a prepared one.
    """

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.port = 0
        self.counts: Counter[str] = Counter()
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()

    @property
    def statements(self) -> int:
        return self.counts["Q"] + self.counts["E"]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        await asyncio.gather(self._frontend(reader, up_writer), self._pump(up_reader, writer),
                             return_exceptions=True)

    async def _frontend(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            # Startup (and an SSLRequest before it): length-prefixed, no type byte.
            while True:
                head = await reader.readexactly(4)
                (length,) = struct.unpack("!I", head)
                body = await reader.readexactly(length - 4)
                writer.write(head + body)
                if length != 8:  # 8 bytes: SSLRequest/GSSENCRequest, answered by one byte; startup follows
                    break
            while True:
                kind = await reader.readexactly(1)
                head = await reader.readexactly(4)
                (length,) = struct.unpack("!I", head)
                body = await reader.readexactly(length - 4)
                self.counts[kind.decode()] += 1
                writer.write(kind + head + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()


class SqliteCounter:
    """Counts what SQLite itself executes (BEGIN, COMMIT and every statement) on every connection."""

    def __init__(self, runtime: Runtime) -> None:
        self.count = 0

        @event.listens_for(runtime.engine.sync_engine, "connect")
        def _trace(dbapi_conn: Any, _record: Any) -> None:
            raw = dbapi_conn.driver_connection  # aiosqlite.Connection
            # The trace callback runs on aiosqlite's thread; an int += is enough for a count.
            raw._conn.set_trace_callback(self._hit)

    def _hit(self, _sql: str) -> None:
        self.count += 1

    @property
    def statements(self) -> int:
        return self.count


@dataclass
class Figure:
    name: str
    requests: int
    seconds: float
    cpu_seconds: float  # this process's CPU (every thread): the edge's own cost, less sensitive to load
    statements: int

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_us_per_request(self) -> float:
        return self.cpu_seconds / self.requests * 1e6

    @property
    def statements_per_request(self) -> float:
        return self.statements / self.requests


def median_figure(runs: list[Figure]) -> Figure:
    """The run of median throughput, with the median CPU per request (rounds differ with the machine's load)."""
    by_rate = sorted(runs, key=lambda f: f.per_second)[len(runs) // 2]
    cpu = sorted(f.cpu_seconds for f in runs)[len(runs) // 2]
    return Figure(by_rate.name, by_rate.requests, by_rate.seconds, cpu, by_rate.statements)


async def drive(call: Callable[[], Awaitable[httpx.Response]], requests: int, concurrency: int) -> float:
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            resp = await call()
            if resp.status_code != 200:
                raise SystemExit(f"unexpected answer {resp.status_code}: {resp.text[:300]}")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


@contextlib.asynccontextmanager
async def postgres_database(url: str) -> AsyncIterator[str]:
    import asyncpg

    base = make_url(url)
    name = f"questline_edge_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    conn = await asyncpg.connect(host=base.host, port=base.port, user=base.username, database=base.database)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    made = base.set(database=name).render_as_string(hide_password=False)
    try:
        await asyncio.to_thread(migrations.upgrade, made)
        yield made
    finally:
        conn = await asyncpg.connect(host=base.host, port=base.port, user=base.username, database=base.database)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


@contextlib.asynccontextmanager
async def counted_runtime(database_url: str, redis_url: str | None,
                          namespace: str) -> AsyncIterator[tuple[Runtime, WireCounter | SqliteCounter]]:
    """A runtime for in-process measurements (no background loops, limits out of the way) and the
    counter of the statements its database receives: at the wire on PostgreSQL, at the driver on SQLite."""
    counter_pg: WireCounter | None = None
    if database_url.startswith("postgresql"):
        direct = make_url(database_url)
        counter_pg = WireCounter(direct.host or "127.0.0.1", direct.port or 5432)
        await counter_pg.start()
        database_url = direct.set(host="127.0.0.1", port=counter_pg.port).render_as_string(hide_password=False)
    settings = Settings(
        env="test", database_url=database_url, redis_url=redis_url,
        redis_namespace=f"{namespace}:{uuid.uuid4().hex[:8]}",
        secret_key="bench-secret-key-that-is-long-enough-0123456789",  # type: ignore[arg-type]
        rate_limit_per_key="100000000/minute", rate_limit_per_player="100000000/minute",
        api_key_cache_seconds=60, run_worker=False, run_scheduler=False, log_level="WARNING",
    )
    runtime = Runtime.build(settings)
    try:
        yield runtime, counter_pg if counter_pg is not None else SqliteCounter(runtime)
    finally:
        await runtime.close()
        if counter_pg is not None:
            await counter_pg.close()


async def measure(database_url: str, redis_url: str | None, requests: int, concurrency: int) -> list[Figure]:
    figures = []
    async with counted_runtime(database_url, redis_url, "edgebench") as (runtime, counter):
        app = create_app(runtime=runtime, background=False)
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench.test") as client:
                async with unit_of_work(runtime.sessions) as session:
                    org = await tenancy.create_org(session, runtime.clock, "Bench Org")
                    _, server_key, _ = await tenancy.create_app(session, runtime.clock, org.id, "Bench")
                headers = {"Authorization": f"Bearer {server_key}"}
                put = await client.put("/v1/players/p1/account", headers=headers, json={"display_name": "Bench"})
                assert put.status_code == 200, put.text
                calls: dict[str, Callable[[], Awaitable[httpx.Response]]] = {
                    "GET /healthz": lambda: client.get("/healthz"),
                    "GET /v1/players/{id}/account (server key)":
                        lambda: client.get("/v1/players/p1/account", headers=headers),
                }
                with Progress(console=console, transient=True) as progress:
                    for name, call in calls.items():
                        task = progress.add_task(name, total=None)
                        await drive(call, max(50, requests // 10), concurrency)  # warm caches and the pool
                        before, cpu = counter.statements, time.process_time()
                        seconds = await drive(call, requests, concurrency)
                        figures.append(Figure(name, requests, seconds, time.process_time() - cpu,
                                              counter.statements - before))
                        progress.remove_task(task)
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--postgres", default=os.environ.get("QUESTLINE_TEST_DATABASE_URL",
                                                             "postgresql+asyncpg://postgres@127.0.0.1:5432/test"),
                        help="a PostgreSQL URL whose server may create a scratch database")
    parser.add_argument("--redis", default=None, help="a Redis URL (the scaled tier's rate limits)")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=1, help="measure this many times; report each figure's median")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    configure_logging("WARNING")
    load_before = os.getloadavg()
    rounds: list[list[Figure]] = []
    for _ in range(max(1, args.rounds)):
        if args.database == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
                await asyncio.to_thread(migrations.upgrade, url)
                rounds.append(await measure(url, args.redis, args.requests, args.concurrency))
        else:
            async with postgres_database(args.postgres) as url:
                rounds.append(await measure(url, args.redis, args.requests, args.concurrency))
    figures = [median_figure([r[i] for r in rounds]) for i in range(len(rounds[0]))]
    load_after = os.getloadavg()
    table = Table(title=f"request edge, {args.database}{' + redis' if args.redis else ''}, "
                        f"{args.concurrency} concurrent, in process, median of {len(rounds)}")
    for column in ("route", "requests/s", "CPU µs/request", "statements/request"):
        table.add_column(column, justify="right" if column != "route" else "left")
    for f in figures:
        table.add_row(f.name, f"{f.per_second:,.0f}", f"{f.cpu_us_per_request:,.0f}", f"{f.statements_per_request:.2f}")
    Console().print(table)
    Console().print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (2 cores, shared)")
    if args.json:
        args.json.write_text(json.dumps({
            "database": args.database, "redis": bool(args.redis), "load": [load_before[0], load_after[0]],
            "figures": [{"name": f.name, "per_second": f.per_second, "cpu_us_per_request": f.cpu_us_per_request,
                         "statements_per_request": f.statements_per_request} for f in figures]}, indent=2))


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
