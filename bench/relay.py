"""Outbox relay throughput: one subscriber's messages handed over by 1 and by 2 relay processes.

For each relay count it makes a PostgreSQL database of its own, migrates it, writes ``--messages``
outbox rows for ``--players`` players (``--partitions`` relay partitions, through ``add_outbox`` as
the engine writes them) and starts that many relay processes. Each relays the outbox with one
subscriber that records every message id as a row (``INSERT ... ON CONFLICT DO NOTHING``, in the
relay's transaction, as webhooks record deliveries) and then waits ``--handle-ms`` (a subscriber's
own round trip), ``--batch`` messages at a time, until nothing is left. It reports messages per
second (from the start signal to the last relay done), the CPU seconds of the relay processes and
of their PostgreSQL backends per 1,000 messages, and checks that every message was recorded once
and the cursors account for each. It also prints the plan of the relay's scan.

    python bench/relay.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test \\
        --messages 40000 --partitions 8 --relays 1 2 --handle-ms 20 --json bench-relay.json

With ``--engine`` the relays run the engine's own subscribers instead (webhooks, live channels
through ``--redis``, notifications) over the outbox a single-event load leaves: per event two
``stat.changed`` and one ``xp.earned``, and a ``level.up`` every seventh (the notifications
subscriber's inbox entry, its player's preferences, time zone and template). That is the relay's
share of ``questline serve``'s CPU per event; ``recorded_once`` then checks one inbox entry per
``level.up``.

    python bench/relay.py --engine --messages 20000 --partitions 1 --relays 1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

ROOT = Path(__file__).resolve().parents[1]
SUBSCRIBER = "bench-sink"
SECRET = "bench-secret-key-that-is-long-enough-0123456789"


def _runtime(url: str, partitions: int, redis: str | None = None) -> Any:
    from questline.kit.runtime import Runtime
    from questline.kit.settings import Settings

    return Runtime.build(Settings(env="test", database_url=url, relay_partitions=partitions, redis_url=redis,
                                  secret_key=SECRET, log_json=False))  # type: ignore[arg-type]


ENGINE_APP = "app_relaybench"
LEVEL_EVERY = 7  # one event in seven levels a player up


def _engine_rows(start: int, stop: int, players: int, now: Any) -> list[dict[str, Any]]:
    """The outbox a stretch of single events leaves (message n belongs to event n // 3)."""
    from questline.pipeline import repository as event_log

    rows = []
    for n in range(start, stop):
        event, part, player = n // 3, n % 3, f"player-{(n // 3) % players}"
        if part < 2:
            rows.append(event_log.outbox_row(ENGINE_APP, "stat.changed", player,
                                             {"stat": ("wins", "score")[part], "value": event}, now))
        else:
            rows.append(event_log.outbox_row(ENGINE_APP, "xp.earned", player,
                                             {"track": "xp", "amount": 40, "total": event}, now))
            if event % LEVEL_EVERY == 0:
                rows.append(event_log.outbox_row(ENGINE_APP, "level.up", player,
                                                 {"track": "xp", "from": 1, "to": 2 + event}, now))
    return rows


class Sink:
    """Records each message id as a row, in the relay's transaction; then waits ``wait`` seconds
    (a subscriber's own round trip, say a Redis publish)."""

    name = SUBSCRIBER

    def __init__(self, wait: float) -> None:
        self.wait = wait

    async def handle(self, session: AsyncSession, messages: Sequence[Any]) -> None:
        await session.execute(sa.text("INSERT INTO bench_relay_sink (id) VALUES (:id) ON CONFLICT DO NOTHING"),
                              [{"id": m.id} for m in messages])
        if self.wait:
            await asyncio.sleep(self.wait)


async def child(url: str, partitions: int, batch: int, wait: float, engine: bool, redis: str | None) -> None:
    from questline.relay import service as relay

    runtime = _runtime(url, partitions, redis)
    if engine:
        from questline import mechanics

        mechanics.install(runtime)  # the engine's subscribers, and the live inboxes' publisher
        await runtime.caches.start()  # as serve does: the in-process caches are on
    else:
        relay.install(runtime, [Sink(wait)])
    try:
        await relay.prepare(runtime)
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        before = resource.getrusage(resource.RUSAGE_SELF)
        moved = await relay.drain(runtime, limit=batch)
        after = resource.getrusage(resource.RUSAGE_SELF)  # the relaying alone, not the start-up
    finally:
        await runtime.close()
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    print(json.dumps({"moved": moved, "cpu": cpu}), flush=True)


async def _admin(base: Any, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(host=base.host, port=base.port, user=base.username, database=base.database)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _fill(url: str, messages: int, players: int, partitions: int, engine: bool) -> int:
    """Write the outbox; returns the rows written."""
    from questline.kit.db import unit_of_work
    from questline.pipeline import repository as event_log

    runtime = _runtime(url, partitions)
    written = 0
    try:
        now = runtime.clock.now()
        async with unit_of_work(runtime.sessions) as session:
            await session.execute(sa.text("CREATE TABLE bench_relay_sink (id text PRIMARY KEY)"))
        for start in range(0, messages, 1000):
            stop = min(messages, start + 1000)
            rows = (_engine_rows(start, stop, players, now) if engine else
                    [event_log.outbox_row("bench", "xp.earned", f"player-{n % players}", {"n": n, "amount": 10}, now)
                     for n in range(start, stop)])
            async with unit_of_work(runtime.sessions) as session:
                await event_log.add_outbox(session, rows)
            written += len(rows)
    finally:
        await runtime.close()
    return written


async def _plan(url: str) -> str:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text("ANALYZE outbox"))
            rows = await conn.execute(sa.text(
                "EXPLAIN SELECT o.seq FROM outbox o, (SELECT pg_current_snapshot() AS snap) s "
                "WHERE o.partition = 3 AND o.txid >= 0 AND pg_visible_in_snapshot(o.txid::text::xid8, s.snap) "
                "AND NOT (o.txid = ANY(CAST('{}' AS bigint[]))) ORDER BY o.txid, o.seq LIMIT 500"))
            return "\n".join(r[0] for r in rows)
    finally:
        await engine.dispose()


async def _check(url: str, engine_mode: bool) -> tuple[int, int, int]:
    """(rows recorded, of them expected, messages the cursors say they delivered per subscriber)."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            if engine_mode:
                recorded = (await conn.execute(sa.text("SELECT count(*) FROM notifications"))).scalar_one()
                expected = (await conn.execute(sa.text(
                    "SELECT count(*) FROM outbox WHERE type = 'level.up'"))).scalar_one()
                delivered = (await conn.execute(sa.text(
                    "SELECT min(d) FROM (SELECT sum(delivered) AS d FROM relay_cursors GROUP BY subscriber) s")
                )).scalar_one()
            else:
                recorded = (await conn.execute(sa.text("SELECT count(*) FROM bench_relay_sink"))).scalar_one()
                expected = (await conn.execute(sa.text("SELECT count(*) FROM outbox"))).scalar_one()
                delivered = (await conn.execute(sa.text(
                    "SELECT sum(delivered) FROM relay_cursors WHERE subscriber = :s"), {"s": SUBSCRIBER})).scalar_one()
            return int(recorded), int(expected), int(delivered or 0)
    finally:
        await engine.dispose()


def _backend_pids(base: Any, name: str) -> set[int]:
    import asyncpg

    async def read() -> set[int]:
        conn = await asyncpg.connect(host=base.host, port=base.port, user=base.username, database=base.database)
        try:
            rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", name)
            return {int(r["pid"]) for r in rows}
        finally:
            await conn.close()

    return asyncio.run(read())


def run_one(base_url: str, relays: int, messages: int, players: int, partitions: int, batch: int,
            handle_ms: float, engine: bool = False, redis: str | None = None,
            src: Path = ROOT / "src") -> dict[str, Any]:
    from questline import migrations

    base = make_url(base_url)
    name = f"questline_relaybench_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(base, f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        migrations.upgrade(url)
        messages = asyncio.run(_fill(url, messages, players, partitions, engine))
        plan = asyncio.run(_plan(url))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), str(ROOT)])}
        procs = [subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--child", url, "--partitions",
                                   str(partitions), "--batch", str(batch), "--handle-ms", str(handle_ms),
                                   *(["--engine", "--redis", redis or ""] if engine else [])],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
                 for _ in range(relays)]
        for proc in procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise SystemExit("a relay did not start")
        backends = {pid: psutil.Process(pid) for pid in _backend_pids(base, name)}
        cpu_before = {pid: sum(p.cpu_times()[:2]) for pid, p in backends.items()}
        started = time.perf_counter()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        backend_cpu: dict[int, float] = {}
        while any(proc.poll() is None for proc in procs):
            for pid in _backend_pids(base, name) - set(backends):
                try:
                    backends[pid] = psutil.Process(pid)
                except psutil.NoSuchProcess:
                    continue
            for pid, process in backends.items():
                with contextlib.suppress(psutil.NoSuchProcess):
                    backend_cpu[pid] = sum(process.cpu_times()[:2]) - cpu_before.get(pid, 0.0)
            time.sleep(0.1)
        elapsed = time.perf_counter() - started
        outs = [json.loads(proc.stdout.read().strip().splitlines()[-1]) for proc in procs if proc.stdout]
        recorded, expected, delivered = asyncio.run(_check(url, engine))
        relay_cpu = sum(o["cpu"] for o in outs)
        return {"relays": relays, "partitions": partitions, "messages": messages, "batch": batch, "engine": engine,
                "handle_ms": handle_ms,
                "seconds": round(elapsed, 2), "messages_per_second": round(messages / elapsed),
                "moved_by_each": [o["moved"] for o in outs],
                "relay_cpu_seconds_per_1000": round(1000 * relay_cpu / messages, 3),
                "postgres_cpu_seconds_per_1000": round(1000 * sum(backend_cpu.values()) / messages, 3),
                "recorded_once": recorded == expected, "cursors_delivered": delivered,
                "load_average": [round(x, 2) for x in os.getloadavg()], "plan": plan}
    finally:
        asyncio.run(_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--messages", type=int, default=40_000)
    parser.add_argument("--players", type=int, default=2_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--relays", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--handle-ms", type=float, default=0.0, help="the subscriber's wait per batch")
    parser.add_argument("--engine", action="store_true", help="the engine's subscribers, over a single-event outbox")
    parser.add_argument("--redis", default=os.environ.get("QUESTLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
                        help="live channels' hub (with --engine; '' for the in-process hub)")
    parser.add_argument("--src", type=Path, default=ROOT / "src",
                        help="the engine's source tree the relays import (A/B against another checkout)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(child(args.child, args.partitions, args.batch, args.handle_ms / 1000, args.engine,
                          args.redis or None))
        return
    results = []
    for relays in args.relays:
        result = run_one(args.database_url, relays, args.messages, args.players, args.partitions, args.batch,
                         args.handle_ms, args.engine, args.redis or None, args.src.resolve())
        plan = result.pop("plan")
        print(json.dumps(result), flush=True)
        results.append(result)
    print(plan)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
