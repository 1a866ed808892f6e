"""The worker alone: how fast a backlog of events is processed, and what it costs the database.

Writes a backlog of events straight into the log of a fresh database (no HTTP: this measures the
worker, not ingest), then drains it with the real worker in this process and reports events/s,
CPU seconds per 1,000 events and SQL statements per event as the driver sends them (an
``executemany`` of N rows counts N, as the database executes it N times).

    python bench/worker.py --help
    python bench/worker.py --events 20000
    python bench/worker.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test --demo-content
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import event as sa_event
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pipeline import CONFIG, demo_event
from bench.pipeline import event as bench_event
from questline import migrations
from questline.demo import install_content
from questline.kit.db import unit_of_work
from questline.kit.loopwatch import settle_gc
from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from questline.ledger import service as ledger
from questline.mechanics import install
from questline.pipeline import repository as event_log
from questline.pipeline import worker
from questline.pipeline.models import LIVE
from questline.rules import service as definitions
from questline.rules.schemas import Bundle
from questline.tenancy import service as tenancy

console = Console(stderr=True)


class StatementCounter:
    """Counts statements per kind (first word) as the driver sends them; with ``trace``, also the
    wall time from each statement's send to its answer, per statement (its first words)."""

    def __init__(self, trace: bool = False) -> None:
        self.by_kind: Counter[str] = Counter()
        self.on = False
        self.trace = trace
        self.seconds: Counter[str] = Counter()
        self.sent: Counter[str] = Counter()
        self._started = 0.0

    def attach(self, runtime: Runtime) -> None:
        @sa_event.listens_for(runtime.engine.sync_engine, "before_cursor_execute")
        def count(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
            if self.on:
                kind = statement.lstrip().split(None, 1)[0].upper()
                # An executemany runs once per parameter set; a multi-row VALUES page runs once.
                self.by_kind[kind] += len(parameters) if executemany and isinstance(parameters, list) else 1
                self._started = time.perf_counter()

        @sa_event.listens_for(runtime.engine.sync_engine, "after_cursor_execute")
        def timed(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
            if self.on and self.trace:
                label = " ".join(statement.split())[:70]
                self.seconds[label] += time.perf_counter() - self._started
                self.sent[label] += 1

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())


async def fresh_database(url: str | None) -> tuple[str, Any]:
    """A migrated database of its own: a temp SQLite file, or a new PostgreSQL database."""
    if url is None or url.startswith("sqlite"):
        path = Path(tempfile.mkdtemp()) / "bench.db"
        target = f"sqlite+aiosqlite:///{path}"
        await asyncio.to_thread(migrations.upgrade, target)
        return target, None
    import asyncpg

    base = make_url(url)
    name = f"questline_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(host=base.host, port=base.port, user=base.username, database=base.database)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    target = base.set(database=name).render_as_string(hide_password=False)
    await asyncio.to_thread(migrations.upgrade, target)

    async def drop() -> None:
        admin = await asyncpg.connect(host=base.host, port=base.port, user=base.username, database=base.database)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

    return target, drop


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) a local process has used, from /proc (0 if unreadable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def server_cpu(url: str) -> float | None:
    """CPU seconds used so far by the PostgreSQL backends connected to the bench's own database
    (a local server only: read from /proc), or None on SQLite."""
    if not url.startswith("postgresql"):
        return None
    import asyncpg

    base = make_url(url)
    conn = await asyncpg.connect(host=base.host, port=base.port, user=base.username, database=base.database)
    try:
        pids = [row[0] for row in await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", base.database)]
    finally:
        await conn.close()
    return sum(map(_cpu_of, pids))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    url, drop = await fresh_database(args.database_url)
    settings = Settings(env="test", database_url=url, worker_batch_size=args.batch, log_json=False,
                        secret_key="bench-secret-key-that-is-long-enough-0123456789")  # type: ignore[arg-type]
    runtime = Runtime.build(settings)
    install(runtime)
    counter = StatementCounter(args.trace)
    counter.attach(runtime)
    batches = 0
    process_batch = worker.process_batch

    async def counted(*a: Any, **kw: Any) -> int:
        nonlocal batches
        done = await process_batch(*a, **kw)
        batches += 1 if done else 0
        return done

    worker.process_batch = counted  # type: ignore[assignment]
    try:
        async with unit_of_work(runtime.sessions) as session:
            org = await tenancy.create_org(session, runtime.clock, "Bench")
            app, _, _ = await tenancy.create_app(session, runtime.clock, org.id, "Bench")
            await ledger.ensure_currency(session, runtime.clock, app.id, "points")
            if args.demo_content:
                await install_content(session, runtime.clock, app.id)
            else:
                await definitions.apply_bundle(session, runtime.clock, definitions.registry_of(runtime), app.id,
                                               Bundle.model_validate(CONFIG))
        make = demo_event if args.demo_content else bench_event
        run_id = uuid.uuid4().hex[:8]
        now = runtime.clock.now()
        for start in range(0, args.events, 1000):
            rows = []
            for i in range(start, min(start + 1000, args.events)):
                e = make(i, run_id, args.players)
                rows.append({"app_id": app.id, "event_id": e["id"], "player_id": e["player_id"], "type": e["type"],
                             "data": e["data"], "occurred_at": now, "received_at": now, "source": "server",
                             "pending": LIVE})
            async with unit_of_work(runtime.sessions) as session:
                await event_log.append(session, rows, partitions=settings.pipeline_partitions)
        if not args.unsettled_gc:
            settle_gc()  # as `questline worker` and `serve` do once started (kit/loopwatch.py)
        server0 = await server_cpu(url)
        counter.on = True
        cpu0, t0 = time.process_time(), time.perf_counter()
        with Progress(TextColumn("draining"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console) as bar:
            task = bar.add_task("events", total=args.events)
            done = await worker.drain(runtime, lambda n: bar.advance(task, n))
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        counter.on = False
        server1 = await server_cpu(url)
        result = {
            "database": "postgresql" if url.startswith("postgresql") else "sqlite",
            "content": "demo" if args.demo_content else "bench", "events": done, "players": args.players,
            "batch": args.batch, "gc_settled": not args.unsettled_gc,
            "seconds": round(wall, 3), "events_per_second": round(done / wall, 1),
            "cpu_seconds_per_1000": round(cpu / done * 1000, 3),
            "statements_per_event": round(counter.total / done, 3),
            "statements": dict(counter.by_kind.most_common()),
            "batches": batches,
            "events_per_batch": round(done / max(batches, 1), 1),
            "wall_ms_per_batch": round(wall / max(batches, 1) * 1000, 2),
            "cpu_ms_per_batch": round(cpu / max(batches, 1) * 1000, 2),
        }
        if server0 is not None and server1 is not None:  # the pool's backends (kept for the whole drain)
            result["server_cpu_ms_per_batch"] = round((server1 - server0) / max(batches, 1) * 1000, 2)
        if args.trace:  # wall ms per batch from send to answer, per statement
            result["statement_ms_per_batch"] = {
                label: [round(seconds / max(batches, 1) * 1000, 2), counter.sent[label]]
                for label, seconds in counter.seconds.most_common()}
            result["in_statements_ms_per_batch"] = round(sum(counter.seconds.values()) / max(batches, 1) * 1000, 2)
        return result
    finally:
        await runtime.close()
        if drop is not None:
            await drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="default: a temp SQLite file; a PostgreSQL URL makes a new database")
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--players", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=int(os.environ.get("QUESTLINE_WORKER_BATCH_SIZE", "500")),
                        help="the worker's batch size (its ceiling; it adapts below it)")
    parser.add_argument("--demo-content", action="store_true", help="the demo game's definitions and event types")
    parser.add_argument("--unsettled-gc", action="store_true",
                        help="leave the garbage collector as at start (the engine's processes settle it once started)")
    parser.add_argument("--trace", action="store_true",
                        help="also the wall time per batch of each statement, from its send to its answer")
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    console.print_json(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
