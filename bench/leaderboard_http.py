"""Leaderboard HTTP benchmark: score writes, top-100 reads and around-me reads under concurrency.

Starts a real ``questline serve`` (API, in-process worker and scheduler; one process) on a
loopback port against a fresh database (a SQLite file by default, or ``--database-url``, with
``--redis-url`` for the Redis rank index), defines one leaderboard, seeds it, mints tokens for
thousands of simulated players, then runs three bounded phases from ``--concurrency``
keep-alive connections:

- ``write``: ``POST /v1/events`` with ``--batch`` scoring events per request (1 = one player's
  event per request; larger = a game server batching), counted as committed only once the
  worker has put every one of them on the board;
- ``top100``: ``GET /v1/leaderboards/bench?limit=100`` with a random player's token (privacy
  applied for that player);
- ``around``: ``GET /v1/leaderboards/bench/players/{id}?around=5`` with that player's token.

Prints requests/s, rows/s and p50/p99 latency per phase, and the server's CPU and memory. The
load generator is a small asyncio HTTP/1.1 client in this process: on a small machine it
shares the cores with the server, which the report says.

    python bench/leaderboard_http.py --help
    python bench/leaderboard_http.py --writes 20000 --reads 20000 --json out.json
    python bench/leaderboard_http.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/bench \\
        --redis-url redis://127.0.0.1:6379/14
    python bench/leaderboard_http.py --compare out.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import psutil
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from questline import migrations
from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from questline.tenancy import service as tenancy

console = Console()
BOARD = {"event_type": "score", "field": "data.points", "operator": "sum", "name": "Bench board"}


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--database-url", help="default: a SQLite file in a temporary directory")
    p.add_argument("--redis-url", help="use the Redis rank index (and Redis rate limits)")
    p.add_argument("--seed-players", type=int, default=10_000, help="players on the board before the phases")
    p.add_argument("--players", type=int, default=2_000, help="simulated players with tokens who write and read")
    p.add_argument("--concurrency", type=int, default=200, help="connections (requests in flight)")
    p.add_argument("--writes", type=int, default=10_000, help="write requests")
    p.add_argument("--batch", type=int, default=1, help="scoring events per write request")
    p.add_argument("--reads", type=int, default=10_000, help="top-100 read requests")
    p.add_argument("--around", type=int, default=10_000, help="around-me read requests")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--compare", type=Path, help="a previous --json file: show the change")
    return p.parse_args()


# A small keep-alive HTTP/1.1 client: little CPU per request, so the server gets the cores. ------


class Connection:
    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, headers: bytes, body: bytes = b"") -> tuple[int, bytes]:
        try:
            return await self._request(method, path, headers, body)
        except (asyncio.IncompleteReadError, ConnectionError):
            # The server closed an idle keep-alive connection: open a new one and send again
            # (every request here is safe to repeat: reads, and events deduplicated by id).
            await self.close()
            self.reader = self.writer = None
            return await self._request(method, path, headers, body)

    async def _request(self, method: str, path: str, headers: bytes, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode() + headers
        if body:
            head += b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n"
        self.writer.write(head + b"\r\n" + body)
        status = int((await self.reader.readuntil(b"\r\n")).split()[1])
        length, chunked = 0, False
        while True:
            line = await self.reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if not chunked:
            return status, await self.reader.readexactly(length)
        data = b""
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
            chunk = await self.reader.readexactly(size + 2)
            if size == 0:
                return status, data
            data += chunk[:-2]

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()


def auth(token: str) -> bytes:
    return f"Authorization: Bearer {token}\r\n".encode()


async def call(conn: Connection, method: str, path: str, token: str, body: Any = None) -> Any:
    status, data = await conn.request(method, path, auth(token), orjson.dumps(body) if body is not None else b"")
    if status >= 300:
        raise SystemExit(f"{method} {path} -> {status}: {data[:300]!r}")
    return orjson.loads(data) if data else None


# The server -----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(env: dict[str, str], port: int, workdir: Path) -> Iterator[psutil.Process]:
    log = (workdir / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "questline", "serve", "--no-demo", "--no-migrate", "--host",
                             "127.0.0.1", "--port", str(port)], env=env, cwd=workdir, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            if proc.poll() is not None:
                raise SystemExit(f"the server exited; see {workdir / 'server.log'}")
            time.sleep(0.1)
        else:
            raise SystemExit("the server did not start")
        yield psutil.Process(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


async def make_app(settings: Settings) -> tuple[str, str, str]:
    runtime = Runtime.build(settings)
    try:
        async with unit_of_work(runtime.sessions) as session:
            org = await tenancy.create_org(session, runtime.clock, f"Bench {uuid.uuid4().hex[:6]}")
            app, server_key, client_key = await tenancy.create_app(session, runtime.clock, org.id, "Bench game")
        return app.id, server_key, client_key
    finally:
        await runtime.close()


async def analyze(database_url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("ANALYZE"))
    finally:
        await engine.dispose()


# Phases ----------------------------------------------------------------------------------------------


async def run_phase(name: str, port: int, concurrency: int, total: int,
                    make: Callable[[int], tuple[str, str, str, Any]], server: psutil.Process,
                    check: Callable[[Any], None] | None = None) -> dict[str, Any]:
    """``total`` requests from ``concurrency`` connections; ``make(i)`` -> (method, path, token, body)."""
    latencies: list[float] = []
    next_index = 0
    errors = 0
    conns = [Connection(port) for _ in range(concurrency)]

    async def worker(conn: Connection) -> None:
        nonlocal next_index, errors
        while next_index < total:
            i = next_index
            next_index += 1
            method, path, token, body = make(i)
            raw = orjson.dumps(body) if body is not None else b""
            t = time.perf_counter()
            status, data = await conn.request(method, path, auth(token), raw)
            latencies.append((time.perf_counter() - t) * 1000)
            if status >= 300:
                errors += 1
                if errors <= 3:
                    console.print(f"[red]{name}: {status} {data[:200]!r}")
            elif check is not None and i % 97 == 0:
                check(orjson.loads(data))

    server.cpu_percent(None)
    cpu0 = psutil.cpu_times()
    start = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    seconds = time.perf_counter() - start
    busy = _busy(cpu0, psutil.cpu_times())
    server_cpu = server.cpu_percent(None)
    for c in conns:
        await c.close()
    latencies.sort()
    console.print(f"  {name}: {total / seconds:,.0f} requests/s, p50 {statistics.median(latencies):.1f} ms, "
                  f"{errors} errors")
    return {"phase": name, "requests": total, "errors": errors, "seconds": seconds,
            "requests_per_second": total / seconds, "p50_ms": statistics.median(latencies),
            "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
            "server_cpu_percent": server_cpu, "machine_cpu_percent": busy,
            "server_rss_mb": server.memory_info().rss / 2**20}


def _busy(a: Any, b: Any) -> float:
    idle = (b.idle + getattr(b, "iowait", 0)) - (a.idle + getattr(a, "iowait", 0))
    total = sum(b) - sum(a)
    return 100.0 * (1 - idle / total) * psutil.cpu_count() if total else 0.0


async def wait_processed(conn: Connection, server_key: str, event: dict[str, Any]) -> None:
    """Send ``event`` with ?wait=true until the worker has processed it (and so everything before it)."""
    while True:
        status, data = await conn.request("POST", "/v1/events?wait=true", auth(server_key),
                                          orjson.dumps({"events": [event]}))
        if status == 200 and orjson.loads(data).get("processed"):
            return


async def main() -> None:
    args = parse()
    workdir = Path(tempfile.mkdtemp(prefix="ql-lbhttp-"))
    database_url = args.database_url or f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    env = {**os.environ, "QUESTLINE_DATABASE_URL": database_url, "QUESTLINE_LOG_LEVEL": "WARNING",
           "QUESTLINE_LOG_JSON": "true",
           # Limits out of the way, per second: a moving window keeps every hit of its window, so a
           # huge per-minute limit would make each request pay for thousands of remembered hits.
           "QUESTLINE_RATE_LIMIT_PER_KEY": "1000000/second", "QUESTLINE_RATE_LIMIT_PER_PLAYER": "1000000/second",
           "QUESTLINE_API_KEY_CACHE_SECONDS": "60"}
    if args.redis_url:
        env["QUESTLINE_REDIS_URL"] = args.redis_url
        env["QUESTLINE_REDIS_NAMESPACE"] = f"qlbench{uuid.uuid4().hex[:6]}"
    console.print(f"database {database_url}" + (f", Redis {args.redis_url}" if args.redis_url else ""))
    migrations.upgrade(database_url)
    settings = Settings(database_url=database_url, redis_url=args.redis_url)
    _, server_key, _ = await make_app(settings)
    port = free_port()
    rng = random.Random(7)
    results: list[dict[str, Any]] = []
    with serve(env, port, workdir) as server:
        admin = Connection(port)
        await call(admin, "PUT", "/v1/definitions/leaderboard/bench", server_key, BOARD)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=True) as progress:
            seeding = progress.add_task("seeding the board", total=args.seed_players)
            for start in range(0, args.seed_players, 1000):
                events = [{"id": f"seed-{i}", "player_id": f"seed-{i:06d}", "type": "score",
                           "data": {"points": rng.randrange(1, 100_000)}}
                          for i in range(start, min(args.seed_players, start + 1000))]
                await call(admin, "POST", "/v1/events", server_key, {"events": events})
                progress.advance(seeding, len(events))
            await wait_processed(admin, server_key, {"id": "seed-done", "player_id": "seed-000000", "type": "noop"})
            minting = progress.add_task("minting player tokens", total=args.players)
            tokens: list[str] = []
            for i in range(args.players):
                body = await call(admin, "POST", f"/v1/players/p{i:05d}/tokens", server_key, {})
                tokens.append(body["token"])
                progress.advance(minting)
        players = [f"p{i:05d}" for i in range(args.players)]
        if database_url.startswith("postgresql"):
            await analyze(database_url)  # a fresh database has no statistics yet; a live one has

        def write(i: int) -> tuple[str, str, str, Any]:
            events = [{"id": f"w{i}-{j}", "player_id": players[(i * args.batch + j) % len(players)], "type": "score",
                       "data": {"points": 1 + (i * 31 + j) % 500}} for j in range(args.batch)]
            return "POST", "/v1/events", server_key, {"events": events}

        console.print(f"write: {args.writes:,} requests × {args.batch} event(s) from {args.concurrency} connections")
        t0 = time.perf_counter()
        phase = await run_phase("write", port, args.concurrency, args.writes, write, server)
        await wait_processed(admin, server_key, {"id": "writes-done", "player_id": players[0], "type": "noop"})
        committed = time.perf_counter() - t0
        events = args.writes * args.batch
        phase.update(rows=events, rows_per_second=events / committed, committed_seconds=committed)
        results.append(phase)

        def top(i: int) -> tuple[str, str, str, Any]:
            return "GET", "/v1/leaderboards/bench?limit=100", tokens[(i * 7919) % len(tokens)], None

        def check_top(body: Any) -> None:
            assert len(body["items"]) == 100 and body["items"][0]["rank"] == 1

        console.print(f"top100: {args.reads:,} requests")
        phase = await run_phase("top100", port, args.concurrency, args.reads, top, server, check_top)
        phase.update(rows=args.reads * 100, rows_per_second=args.reads * 100 / phase["seconds"])
        results.append(phase)

        def around(i: int) -> tuple[str, str, str, Any]:
            k = (i * 104729) % len(tokens)
            return "GET", f"/v1/leaderboards/bench/players/{players[k]}?around=5", tokens[k], None

        def check_around(body: Any) -> None:
            assert body["me"] is not None and 6 <= len(body["items"]) <= 11  # fewer near the top

        console.print(f"around: {args.around:,} requests")
        phase = await run_phase("around", port, args.concurrency, args.around, around, server, check_around)
        phase.update(rows=args.around * 11, rows_per_second=args.around * 11 / phase["seconds"])
        results.append(phase)
        await admin.close()

    previous = {}
    if args.compare:
        previous = {r["phase"]: r for r in json.loads(args.compare.read_text())["results"]}
    table = Table(title=f"leaderboard over HTTP: {platform.python_implementation()} {platform.python_version()}, "
                        f"{psutil.cpu_count()} CPUs shared by server and load generator, "
                        f"{'Redis' if args.redis_url else 'in-process'} index, "
                        f"{'PostgreSQL' if 'postgresql' in database_url else 'SQLite'}")
    for col in ("phase", "requests", "req/s", "rows/s", "p50 ms", "p99 ms", "errors", "server CPU", "vs previous"):
        table.add_column(col, justify="left" if col == "phase" else "right")
    for r in results:
        before = previous.get(r["phase"])
        change = f"{(r['requests_per_second'] / before['requests_per_second'] - 1) * 100:+.0f}%" if before else ""
        table.add_row(r["phase"], f"{r['requests']:,}", f"{r['requests_per_second']:,.0f}",
                      f"{r['rows_per_second']:,.0f}", f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}", str(r["errors"]),
                      f"{r['server_cpu_percent']:.0f}%", change)
    console.print(table)
    console.print("write rows/s counts events committed to the board (the worker drained); req/s counts replies.")
    if args.json:
        args.json.write_text(json.dumps({"bench": "leaderboard_http", "database": database_url.split(":")[0],
                                         "redis": bool(args.redis_url), "concurrency": args.concurrency,
                                         "batch": args.batch, "results": results}, indent=2))
        console.print(f"wrote {args.json}")


if __name__ == "__main__":
    asyncio.run(main())
