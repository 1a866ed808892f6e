"""Marketplace benchmark: join latency and impressions per second against a real ``questline serve``.

Starts ``questline serve`` (API, worker and scheduler in one process) on a loopback port against a
fresh database (a SQLite file by default, or ``--database-url``), creates an app, a funded brand, a
campaign and ``--streamers`` verified streamers (setup, not timed), then runs two timed phases from
``--concurrency`` keep-alive connections:

- ``join``: every streamer joins the campaign (``POST /v1/campaigns/{id}/join`` by the server key
  acting for them): the whole join chain, an energy pack, a G-Key and the participation per request;
- ``impressions``: ``--batches`` impression batches of ``--batch-size`` records (one impression
  each, random joined streamers), each paying its streamers from the budget and checking completion.

Prints requests/s, impressions/s, p50/p99 latency per phase and the server's memory, and checks
the books afterwards (``ledger verify`` must be clean; spend never above the budget).

    python bench/marketplace.py --help
    python bench/marketplace.py --streamers 200 --batches 2000 --batch-size 20 --json out.json
    python bench/marketplace.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/bench
    python bench/marketplace.py --compare out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import Result, bench_env, compare, free_port, percentile, questline, save, server

console = Console()
PASSWORD = "correct horse battery staple"


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Join latency and impressions/s of the sponsorship marketplace.")
    parser.add_argument("--streamers", type=int, default=200, help="streamers who join (the join phase's requests)")
    parser.add_argument("--batches", type=int, default=2000, help="impression batches to send")
    parser.add_argument("--batch-size", type=int, default=20, help="records (one impression each) per batch")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    parser.add_argument("--database-url", help="default: a fresh SQLite file in a temporary directory")
    parser.add_argument("--json", type=Path, help="save the results here")
    parser.add_argument("--compare", type=Path, help="compare with a previous --json file")
    return parser.parse_args()


async def ok(client: httpx.AsyncClient, method: str, url: str, status: int = 200, **kwargs: Any) -> Any:
    resp = await client.request(method, url, **kwargs)
    if resp.status_code != status:
        raise SystemExit(f"{method} {url}: {resp.status_code} {resp.text[:500]}")
    return resp.json() if resp.content else None


async def setup(client: httpx.AsyncClient, server_key: str, client_key: str, streamers: int,
                budget: int) -> tuple[str, list[str]]:
    srv = {"Authorization": f"Bearer {server_key}"}
    pub = {"Authorization": f"Bearer {client_key}"}
    settings = await ok(client, "GET", "/v1/marketplace/settings", headers=srv)
    await ok(client, "PUT", "/v1/marketplace/settings", headers=srv,
             json={**settings, "impressions_per_minute": 100_000_000, "overlay_impressions_per_minute": 100_000})
    run = uuid.uuid4().hex[:6]
    brand = await ok(client, "POST", "/v1/brands", 201, headers=pub, json={
        "company_name": "Bench Brand", "industry": "bench",
        "owner": {"email": f"brand-{run}@bench.example", "password": PASSWORD}})
    await ok(client, "POST", f"/v1/brands/{brand['id']}/wallet/deposits", 201,
             headers={**srv, "Idempotency-Key": f"bench-{run}"}, json={"currency": "USD", "amount": budget})
    campaign = await ok(client, "POST", "/v1/campaigns", 201, headers=srv, json={
        "brand_id": brand["id"], "title": "Bench campaign", "categories": ["gaming"], "currency": "USD",
        "budget": budget, "rate_per_mille": 1_000, "impression_target": 10**12})
    await ok(client, "POST", f"/v1/campaigns/{campaign['id']}/submit", headers=srv)
    await ok(client, "POST", f"/v1/campaigns/{campaign['id']}/approve", headers=srv)
    ids: list[str] = []
    with Progress(TextColumn("setup: streamers"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("setup", total=streamers)
        for n in range(streamers):
            made = await ok(client, "POST", "/v1/streamers", 201, headers=srv, json={
                "email": f"s{n}-{run}@bench.example", "password": PASSWORD, "display_name": f"s{n}",
                "platforms": [{"name": "twitch", "username": f"s{n}{run}"}]})
            await ok(client, "POST", f"/v1/streamers/{made['id']}/platforms/twitch/verification", headers=srv,
                     json={"status": "verified"})
            ids.append(made["id"])
            progress.advance(task)
    return campaign["id"], ids


async def phase(name: str, base: str, concurrency: int, calls: list[tuple[str, str, Any]], headers: dict[str, str],
                per_call: int) -> Result:
    latencies: list[float] = []
    queue: asyncio.Queue[tuple[str, str, Any]] = asyncio.Queue()
    for call in calls:
        queue.put_nowait(call)
    failures: list[str] = []

    with Progress(TextColumn(name), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console) as prog:
        task = prog.add_task(name, total=len(calls))

        async def worker() -> None:
            async with httpx.AsyncClient(base_url=base, timeout=60) as client:
                while True:
                    try:
                        method, url, body = queue.get_nowait()
                    except asyncio.QueueEmpty:
                        return
                    started = time.perf_counter()
                    resp = await client.request(method, url, json=body,
                                                headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
                    latencies.append((time.perf_counter() - started) * 1000)
                    if resp.status_code >= 300:
                        failures.append(f"{resp.status_code} {resp.text[:200]}")
                    prog.advance(task)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{name}: {len(failures)} failed requests, e.g. {failures[0]}")
    return Result(name=name, events=len(calls) * per_call, requests=len(calls), seconds=elapsed,
                  committed_seconds=elapsed, latencies_ms=latencies, server_rss_mb=0.0)


async def verify(database_url: str) -> int:
    from questline.kit.db import unit_of_work
    from questline.kit.runtime import Runtime
    from questline.kit.settings import Settings
    from questline.ledger import service as ledger

    runtime = Runtime.build(Settings(database_url=database_url))
    try:
        async with unit_of_work(runtime.sessions) as session:
            return len(await ledger.verify(session))
    finally:
        await runtime.close()


async def main() -> None:
    args = parse()
    workdir = Path(tempfile.mkdtemp(prefix="questline-market-bench-"))
    database_url = args.database_url or f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    env = bench_env(database_url) | {"QUESTLINE_MEDIA_DIR": str(workdir / "media")}
    questline(["migrate"], env)
    keys = json.loads(questline(["apps", "create", "Marketplace bench", "--json"], env))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    budget = 10**10
    with server(env, port, workdir / "serve.log") as proc:
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            campaign, streamers = await setup(client, keys["server_key"], keys["client_key"], args.streamers,
                                              budget)
        srv = {"Authorization": f"Bearer {keys['server_key']}"}
        joins = [("POST", f"/v1/campaigns/{campaign}/join", {"streamer_id": s}) for s in streamers]
        join = await phase("join", base, args.concurrency, joins, srv, 1)
        rng = random.Random(1)
        batches = [("POST", f"/v1/campaigns/{campaign}/impressions", {"impressions": [
            {"id": f"i{b}-{r}", "streamer_id": rng.choice(streamers), "count": 1} for r in range(args.batch_size)]})
            for b in range(args.batches)]
        imps = await phase("impressions", base, args.concurrency, batches, srv, args.batch_size)
        rss = proc.memory_info().rss / 2**20
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            state = await ok(client, "GET", f"/v1/campaigns/{campaign}", headers=srv)
    join.server_rss_mb = imps.server_rss_mb = rss
    violations = await verify(database_url)

    rows = []
    table = Table(title=f"marketplace on {database_url.split(':')[0]} ({args.concurrency} in flight)")
    for column in ("phase", "requests", "requests/s", "impressions/s", "p50 ms", "p99 ms"):
        table.add_column(column, justify="right")
    for result in (join, imps):
        lat = sorted(result.latencies_ms)
        row = {"name": result.name, "requests": result.requests,
               "requests_per_s": round(result.requests / result.seconds, 1),
               "impressions_per_s": round(result.events / result.seconds, 1) if result.name == "impressions" else None,
               "p50_ms": round(percentile(lat, 50), 2), "p99_ms": round(percentile(lat, 99), 2),
               "server_rss_mb": round(rss, 1), "committed_events_per_s": round(result.events / result.seconds, 1)}
        rows.append(row)
        table.add_row(result.name, str(row["requests"]), str(row["requests_per_s"]),
                      str(row["impressions_per_s"] or "-"), str(row["p50_ms"]), str(row["p99_ms"]))
    console.print(table)
    console.print(f"campaign: {state['impressions']} impressions, {state['spent']} spent of {state['budget']}; "
                  f"ledger verify: {violations} violation(s); server RSS {rss:.0f} MiB")
    if violations or state["spent"] > state["budget"]:
        raise SystemExit("the books do not balance")
    save(rows, args.json)
    if args.compare:
        for line in compare(rows, args.compare):
            console.print(line)


if __name__ == "__main__":
    asyncio.run(main())
