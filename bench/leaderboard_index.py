"""Rank index benchmark: the cost of a rank read and a score write at 10k, 100k and 1M entries.

Measures the two rank indexes leaderboards use, directly (no HTTP, no database):

- ``memory``: the embedded tier's in-process sorted lists;
- ``redis``: the scaled-out tier's sorted sets (one round trip per operation, loopback Redis).

For each backend and board size it fills one board, then times, one operation after another:
``rank`` (a random player's rank and score), ``write`` (a random player's new score, the
worker's after-commit update) and ``top100`` (the first 100 entries). Prints ops/s and p50/p99
in microseconds; ``--json`` writes the numbers so runs can be compared (``--compare``).

    python bench/leaderboard_index.py --help
    python bench/leaderboard_index.py --sizes 10000 100000 1000000
    python bench/leaderboard_index.py --backend redis --redis-url redis://127.0.0.1:6379/15 --json out.json
    python bench/leaderboard_index.py --compare out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from questline.leaderboards.index import BoardRef, Entry, MemoryIndex, RankIndex, RedisIndex

console = Console()
T0 = 1_772_000_000_000_000  # microseconds since the epoch, early 2026


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--backend", nargs="+", choices=["memory", "redis"], default=["memory", "redis"])
    p.add_argument("--sizes", nargs="+", type=int, default=[10_000, 100_000, 1_000_000], help="entries per board")
    p.add_argument("--ops", type=int, default=20_000, help="timed operations of each kind per size")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/15", help="a Redis to use (keys are removed)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--compare", type=Path, help="a previous --json file: show the change")
    return p.parse_args()


def entry(i: int, version: int, rng: random.Random) -> Entry:
    # Scores on a coarse grid so that many players tie: the tie-break is part of the cost.
    return Entry(f"player-{i:07d}", "", rng.randrange(0, 50_000) * 10, T0 + rng.randrange(0, 3_600_000_000),
                 i + version * 10_000_000, version)


async def timed(n: int, op: Callable[[int], Awaitable[Any]]) -> dict[str, float]:
    latencies = []
    start = time.perf_counter()
    for i in range(n):
        t = time.perf_counter_ns()
        await op(i)
        latencies.append((time.perf_counter_ns() - t) / 1000)
    seconds = time.perf_counter() - start
    latencies.sort()
    return {"ops_per_second": n / seconds, "p50_us": statistics.median(latencies),
            "p99_us": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]}


async def run_size(index: RankIndex, name: str, size: int, ops: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    ref = BoardRef(f"bench{uuid.uuid4().hex[:8]}", "board", "all")
    await index.prepare(ref)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task(f"{name}: fill {size:,}", total=size)
        chunk = 20_000
        for start in range(0, size, chunk):
            batch = [entry(i, 1, rng) for i in range(start, min(size, start + chunk))]
            await index.merge(ref, batch, mark_ready=start + chunk >= size)
            progress.advance(task, len(batch))
    # Timed without a live display: its refresh thread would share the interpreter with the timings.
    versions = dict.fromkeys(range(size), 1)
    players = [rng.randrange(size) for _ in range(ops)]

    async def rank(i: int) -> None:
        found = await index.rank(ref, f"player-{players[i]:07d}")
        assert found is not None

    async def write(i: int) -> None:
        pid = players[i]
        versions[pid] += 1
        await index.merge(ref, [entry(pid, versions[pid], rng)])

    async def top(i: int) -> None:
        assert len(await index.window(ref, "", 0, 100)) == 100

    out: dict[str, Any] = {"backend": name, "size": size}
    for kind, op, n in (("rank", rank, ops), ("write", write, ops), ("top100", top, max(ops // 10, 100))):
        console.print(f"[dim]{name}: {n:,} × {kind} at {size:,} entries[/dim]")
        out[kind] = await timed(n, op)
    # The index still agrees with itself after the writes.
    found = await index.rank(ref, f"player-{players[0]:07d}")
    assert found is not None and found[1].version == versions[players[0]]
    await index.drop(ref.app_id)
    return out


def _has_hiredis() -> bool:
    try:
        import hiredis  # noqa: F401
    except ImportError:
        return False
    return True


async def main() -> None:
    args = parse()
    results: list[dict[str, Any]] = []
    for backend in args.backend:
        redis = None
        if backend == "redis":
            from redis.asyncio import Redis

            redis = Redis.from_url(args.redis_url)
            await redis.ping()
        for size in args.sizes:
            index: RankIndex = RedisIndex(redis, f"qlbench{uuid.uuid4().hex[:6]}") if redis else MemoryIndex()
            results.append(await run_size(index, backend, size, args.ops, args.seed))
        if redis is not None:
            await redis.aclose()
    previous = {}
    if args.compare:
        previous = {(r["backend"], r["size"]): r for r in json.loads(args.compare.read_text())["results"]}
    parser = "hiredis" if _has_hiredis() else "pure-Python parser"
    table = Table(title=f"rank index, one operation at a time ({platform.python_implementation()} "
                        f"{platform.python_version()}, {platform.machine()}; Redis client: {parser})")
    for col in ("backend", "entries", "op", "ops/s", "p50 µs", "p99 µs", "vs previous"):
        table.add_column(col, justify="right" if col not in ("backend", "op") else "left")
    for r in results:
        for kind in ("rank", "write", "top100"):
            m = r[kind]
            before = previous.get((r["backend"], r["size"]), {}).get(kind)
            change = f"{(m['ops_per_second'] / before['ops_per_second'] - 1) * 100:+.0f}%" if before else ""
            table.add_row(r["backend"], f"{r['size']:,}", kind, f"{m['ops_per_second']:,.0f}", f"{m['p50_us']:.1f}",
                          f"{m['p99_us']:.1f}", change)
    console.print(table)
    if args.json:
        args.json.write_text(json.dumps({"bench": "leaderboard_index", "python": platform.python_version(),
                                         "results": results}, indent=2))
        console.print(f"wrote {args.json}")


if __name__ == "__main__":
    asyncio.run(main())
