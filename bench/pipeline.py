"""Event pipeline benchmark: many concurrent HTTP clients, single events and batches.

Starts a real ``questline serve`` (API + in-process worker) on a loopback port against the
given database, configures stats, XP rules and level thresholds, then sends events from
concurrent clients. Throughput counts only once every effect is committed (the worker has
drained the log). Prints events/s, p50/p99 request latency and the server's memory.

    python bench/pipeline.py --help
    python bench/pipeline.py --database-url sqlite+aiosqlite:////tmp/bench.db
    python bench/pipeline.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/bench --json out.json
    python bench/pipeline.py --compare bench/results/previous.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
import sqlalchemy as sa
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.ext.asyncio import create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import Result, bench_env, compare, free_port, questline, save, server

console = Console()
CONFIG = {
    "definitions": {
        "stat": {
            "wins": {"event_type": "match.won"},
            "score": {"event_type": "match.won", "aggregation": "sum", "field": "data.score"},
            "best": {"event_type": "match.won", "aggregation": "max", "field": "data.score"},
            "kills": {"event_type": "enemy.killed", "filter": {"field": "data.boss", "op": "eq", "value": False}},
        },
        "xp_track": {"xp": {"curve": {"type": "quadratic", "base": 100}, "max_level": 100,
                            "level_up_reward": {"currency": "points", "amount": 200}},
                     "rp": {"curve": {"type": "geometric", "base": 50, "factor": 1.3}}},
        "xp_rule": {
            "win": {"track": "xp", "event_type": "match.won", "amount": 40},
            "kill": {"track": "xp", "event_type": "enemy.killed", "amount": 5, "daily_cap": 500},
            "big": {"track": "rp", "event_type": "match.won", "amount": 3,
                    "filter": {"field": "data.score", "op": "gte", "value": 500}},
        },
    }
}


def event(i: int, run: str, players: int) -> dict[str, Any]:
    kind = "match.won" if i % 3 == 0 else "enemy.killed"
    data: dict[str, Any] = {"score": (i * 37) % 1000} if kind == "match.won" else {"boss": i % 10 == 0}
    return {"id": f"{run}-{i}", "player_id": f"p{i % players}", "type": kind, "data": data}


WORKOUT_KINDS = ("run", "strength", "yoga", "cycling")


def demo_event(i: int, run: str, players: int) -> dict[str, Any]:
    """Events of the demo game (workouts, meals, sessions), so its challenges and achievements react."""
    player = f"p{i % players}"
    if i % 5 == 3:
        return {"id": f"{run}-{i}", "player_id": player, "type": "meal.logged", "data": {"healthy": i % 2 == 0}}
    if i % 5 == 4:
        return {"id": f"{run}-{i}", "player_id": player, "type": "session.started", "data": {"minutes": 30}}
    return {"id": f"{run}-{i}", "player_id": player, "type": "workout.completed",
            "data": {"kind": WORKOUT_KINDS[i % 4], "minutes": 20 + i % 40, "calories": 150 + i % 300,
                     "distance_km": 5}}


async def pending(database_url: str) -> int:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(sa.text("SELECT count(*) FROM events WHERE pending > 0"))).scalar_one())
    finally:
        await engine.dispose()


async def run_load(name: str, base_url: str, key: str, database_url: str, proc: psutil.Process, *, events: int,
                   batch: int, clients: int, players: int, demo: bool = False) -> Result:
    run = uuid.uuid4().hex[:8]
    make = demo_event if demo else event
    requests = [[make(i, run, players) for i in range(start, min(start + batch, events))]
                for start in range(0, events, batch)]
    queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
    for item in requests:
        queue.put_nowait(item)
    latencies: list[float] = []
    retries: dict[int, int] = {}
    peak_rss = proc.memory_info().rss
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {key}"}
    with Progress(TextColumn(name), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task(name, total=len(requests))
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60, headers=headers) as client:

            async def worker() -> None:
                while True:
                    try:
                        items = queue.get_nowait()
                    except asyncio.QueueEmpty:
                        return
                    body: Any = items[0] if batch == 1 else {"events": items}
                    t0 = time.perf_counter()
                    while True:  # a well-behaved client: 503/429 are retried after Retry-After
                        resp = await client.post("/v1/events", json=body)
                        if resp.status_code not in (429, 503):
                            break
                        retries[resp.status_code] = retries.get(resp.status_code, 0) + 1
                        await asyncio.sleep(float(resp.headers.get("retry-after", "1")))
                    latencies.append((time.perf_counter() - t0) * 1000)
                    if resp.status_code != 202:
                        raise SystemExit(f"unexpected {resp.status_code}: {resp.text[:300]}")
                    bar.advance(task)

            started = time.perf_counter()
            await asyncio.gather(*[worker() for _ in range(clients)])
            sent = time.perf_counter() - started
        peak_rss = max(peak_rss, proc.memory_info().rss)
        while await pending(database_url):
            peak_rss = max(peak_rss, proc.memory_info().rss)
            await asyncio.sleep(0.05)
        committed = time.perf_counter() - started
    return Result(name, events, len(requests), sent, committed, latencies, peak_rss / 2**20,
                  {"batch": batch, "clients": clients, "players": players,
                   "retried_503": retries.get(503, 0), "retried_429": retries.get(429, 0)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="default: a fresh SQLite file in a temp directory")
    parser.add_argument("--single-events", type=int, default=5000, help="events sent one per request")
    parser.add_argument("--batch-events", type=int, default=100_000, help="events sent in batches")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--clients", type=int, default=64, help="concurrent HTTP clients")
    parser.add_argument("--players", type=int, default=2000)
    parser.add_argument("--demo-content", action="store_true",
                        help="configure the demo game (its stats, tracks, 20 challenges, 30 achievements, streaks) "
                             "and send its events, instead of the small built-in configuration")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--compare", type=Path, help="a previous --json file to compare with")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="questline-bench-")
    database_url = args.database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
    env = bench_env(database_url)
    questline(["migrate"], env)
    created = json.loads(questline(["apps", "create", f"bench-{uuid.uuid4().hex[:6]}", "--json"], env))
    app_id, key = created["app_id"], created["server_key"]
    config_path = Path(tmp) / "config.yaml"
    config_path.write_text(yaml.safe_dump(CONFIG))
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    results = []
    log = Path(tmp) / "server.log"
    console.print(f"server log: {log}")
    with server(env, port, log) as proc:
        httpx.put(f"{base_url}/v1/currencies/points", headers={"Authorization": f"Bearer {key}"}, json={"name": "P"})
        if args.demo_content:
            questline(["demo", "load", "--app", app_id], env)
        else:
            questline(["config", "load", str(config_path), "--app", app_id], env)
        if args.single_events:
            results.append(asyncio.run(run_load("single events", base_url, key, database_url, proc,
                                                events=args.single_events, batch=1, clients=args.clients,
                                                players=args.players, demo=args.demo_content)))
        if args.batch_events:
            results.append(asyncio.run(run_load(f"batches of {args.batch_size}", base_url, key, database_url, proc,
                                                events=args.batch_events, batch=args.batch_size,
                                                clients=min(args.clients, 16), players=args.players,
                                                demo=args.demo_content)))
    content = "demo game" if args.demo_content else "built-in"
    summaries = [r.summary() | {"database": database_url.split("://")[0], "content": content} for r in results]
    table = Table("run", "events", "committed ev/s", "ingest ev/s", "p50 ms", "p99 ms", "server RSS MB")
    for s in summaries:
        table.add_row(s["name"], str(s["events"]), f"{s['committed_events_per_s']:,}", f"{s['ingest_events_per_s']:,}",
                      str(s["p50_ms"]), str(s["p99_ms"]), str(s["server_rss_mb"]))
    console.print(table)
    save(summaries, args.json)
    if args.compare:
        for line in compare(summaries, args.compare):
            console.print(line)


if __name__ == "__main__":
    main()
