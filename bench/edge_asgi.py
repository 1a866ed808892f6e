"""The account GET against the bare PK SELECT, in process, on raw ASGI calls (no sockets, no client).

Each request is one ``app(scope, receive, send)`` call, with ``concurrency`` of them in flight on
uvloop (the loop ``questline serve`` runs). So the figures are what the server's app costs per
request, without uvicorn's HTTP parsing or a client's side, which both paths pay alike over HTTP:
the CPU ratio here is lower than over HTTP (the common part is left out), and it moves with the
app's own cost only. CPU is this process's (every thread: aiosqlite's too).

    python bench/edge_asgi.py --database postgres --redis redis://127.0.0.1:6379/0
    python bench/edge_asgi.py --database sqlite --rounds 5

The ceiling (``bench/ceilings.py``'s app, one asyncpg ``fetchrow``) runs on PostgreSQL only; for
SQLite it is still printed from PostgreSQL so the two engines can be read against the same bar.
Rounds alternate engine and ceiling; medians are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from asgi_lifespan import LifespanManager
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import ceilings
from bench.edge import postgres_database
from questline import migrations
from questline.app import create_app
from questline.kit.db import unit_of_work
from questline.kit.logging import configure_logging
from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from questline.tenancy import service as tenancy

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def _scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
            "root_path": "", "headers": [(b"host", b"bench.test"), *headers],
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {}}


async def drive(app: ASGIApp, path: str, headers: list[tuple[bytes, bytes]], requests: int,
                concurrency: int) -> tuple[float, float]:
    """Wall seconds and CPU seconds for ``requests`` GETs, ``concurrency`` in flight."""
    remaining = requests
    request_message = {"type": "http.request", "body": b"", "more_body": False}

    async def receive() -> dict[str, Any]:
        return request_message

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            status: list[int] = []

            async def send(message: dict[str, Any], status: list[int] = status) -> None:
                if message["type"] == "http.response.start":
                    status.append(message["status"])

            await app(_scope(path, headers), receive, send)
            if status != [200]:
                raise SystemExit(f"{path} answered {status}")

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - wall, time.process_time() - cpu


async def engine_app(database_url: str, redis_url: str | None) -> tuple[Any, Runtime, str]:
    settings = Settings(
        env="test", database_url=database_url, redis_url=redis_url,
        redis_namespace=f"edgeasgi:{uuid.uuid4().hex[:8]}",
        secret_key="bench-secret-key-that-is-long-enough-0123456789",  # type: ignore[arg-type]
        rate_limit_per_key="1000000/second", rate_limit_per_player="1000000/second",
        run_worker=False, run_scheduler=False, log_level="WARNING",
    )
    runtime = Runtime.build(settings)
    app = create_app(runtime=runtime, background=False)
    async with unit_of_work(runtime.sessions) as session:
        org = await tenancy.create_org(session, runtime.clock, "Bench Org")
        _, server_key, _ = await tenancy.create_app(session, runtime.clock, org.id, "Bench")
    return app, runtime, server_key


async def measure(args: argparse.Namespace, database_url: str, ceiling_dsn: str | None) -> None:
    app, runtime, key = await engine_app(database_url, args.redis)
    auth = [(b"authorization", f"Bearer {key}".encode())]
    engine_cpu: list[float] = []
    ceiling_cpu: list[float] = []
    async with LifespanManager(app):
        import httpx

        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench.test") as client:
            put = await client.put("/v1/players/p1/account", headers={"Authorization": f"Bearer {key}"},
                                   json={"display_name": "Bench"})
            assert put.status_code == 200, put.text
        ceiling = ceilings.create_app(ceiling_dsn) if ceiling_dsn else None
        async with LifespanManager(ceiling) if ceiling else _nothing():
            await drive(app, "/v1/players/p1/account", auth, args.requests // 5, args.concurrency)  # warm
            if ceiling:
                await drive(ceiling, "/select/players/p1", [], args.requests // 5, args.concurrency)
            for _ in range(args.rounds):
                _, cpu = await drive(app, "/v1/players/p1/account", auth, args.requests, args.concurrency)
                engine_cpu.append(cpu / args.requests * 1e6)
                if ceiling:
                    _, cpu = await drive(ceiling, "/select/players/p1", [], args.requests, args.concurrency)
                    ceiling_cpu.append(cpu / args.requests * 1e6)
    await runtime.close()
    label = args.database + (" + redis" if args.redis else "")
    line = f"account GET, {label}: CPU us/request median {statistics.median(engine_cpu):.0f} " \
           f"(rounds {', '.join(f'{c:.0f}' for c in engine_cpu)})"
    if ceiling_cpu:
        line += f"; bare PK SELECT {statistics.median(ceiling_cpu):.0f} " \
                f"(rounds {', '.join(f'{c:.0f}' for c in ceiling_cpu)}); CPU ratio " \
                f"{statistics.median(ceiling_cpu) / statistics.median(engine_cpu):.3f}"
    print(line)


class _nothing:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--postgres", default=os.environ.get("QUESTLINE_TEST_DATABASE_URL",
                                                             "postgresql+asyncpg://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--redis", default=None, help="a Redis URL (the scaled tier's rate limits and caches)")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-ceiling", action="store_true")
    args = parser.parse_args()
    configure_logging("WARNING", json=True)
    print(f"load average {os.getloadavg()[0]:.2f}", file=sys.stderr)
    async with postgres_database(args.postgres) as pg_url:
        dsn = None
        if not args.no_ceiling:
            dsn = make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
            await ceilings.prepare(dsn, 1000)
        if args.database == "postgres":
            await measure(args, pg_url, dsn)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
                await asyncio.to_thread(migrations.upgrade, url)
                await measure(args, url, dsn)
    print(f"load average {os.getloadavg()[0]:.2f}", file=sys.stderr)


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
