"""Single events end to end: ``POST /v1/events`` one event per request, beside the bare ceilings.

A focused slice of bench/run.py (the same servers, pinning, wrk script and figures) for working
on the single-event path: the bare ceilings of the same run (202 without a database, one INSERT
per request), then the engine (API + in-process worker + scheduler, one process pinned to one
core) on PostgreSQL with Redis and/or on SQLite. Besides acknowledged and processed rates, p50/p99
and server CPU per event, it samples the backlog (events acknowledged but not processed) once a
second while wrk runs: a worker that keeps up holds it flat. On PostgreSQL it also samples the
relay's backlog (outbox messages not yet taken by its slowest subscriber) and, once the worker
has drained, waits for the relay too: ``cpu_s_per_1k_with_relay`` is the CPU per event with the
relay's share, which a relay that falls behind would otherwise spend after the phase.

    python bench/single.py                                   # PostgreSQL + Redis and SQLite, 10 s phases
    python bench/single.py --database postgres --seconds 60  # the aim's "backlog flat for 60 s"
    python bench/single.py --count                           # also statements per event at PostgreSQL
    python bench/single.py --profile /tmp/prof               # py-spy samples of the engine during the phase

``--count`` runs the PostgreSQL phase once more through bench/edge.py's ``WireCounter`` proxy
(every statement PostgreSQL receives, BEGIN/COMMIT and polls included). ``--profile`` needs
``py-spy`` (PyPI) and prints the engine's CPU by stage (inclusive shares of the samples).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import make_url

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench import report  # noqa: E402
from bench.ceilings import prepare as prepare_ceilings  # noqa: E402
from bench.common import free_port  # noqa: E402
from bench.run import (  # noqa: E402
    CEIL_202,
    CEIL_INSERT,
    Box,
    Events,
    Plan,
    asyncpg_dsn,
    ceiling,
    cpu_seconds,
    engine_env,
    engine_setting,
    event_scenario,
    load_rules,
    new_app,
    pinned,
    process,
    scratch_postgres,
    serve_cmd,
)

# Where the engine's CPU goes: a sample counts for every stage one of its frames falls in
# (inclusive), matched on "function (file" as py-spy prints frames.
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("HTTP request (uvicorn, middleware, route, reply)", ("run_asgi (",)),
    ("  ingest: validate and build rows", ("ingest (",)),
    ("  ingest: group commit write", ("_write (",)),
    ("worker loop (all of it)", ("run_worker (",)),
    ("  worker: one batch (process_batch)", ("process_batch (",)),
    ("  worker: processors, ledger, effects", ("_process_app (",)),
    ("  worker: polls (pending partitions, replay epochs)", ("pending_by_partition (", "read_replay_epochs (")),
    ("scheduler", ("run_forever (",)),
    ("relay / webhooks / notifications / fulfilment", ("run_relay (", "run_sender (", "run_notifications (",
                                                        "run_fulfilment (")),
    ("SQLAlchemy (anywhere)", ("(sqlalchemy/",)),
    ("asyncpg (anywhere)", ("(asyncpg/",)),
    ("aiosqlite/sqlite3 (anywhere)", ("(aiosqlite/",)),
    ("structlog (anywhere)", ("(structlog/",)),
    ("pydantic (anywhere)", ("(pydantic/", "(pydantic_core/")),
]


def py_spy() -> str | None:
    """py-spy beside this Python (a virtualenv's bin) or on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def stage_shares(raw: Path) -> list[tuple[str, float]]:
    """Inclusive share of the samples per stage, from py-spy's ``--format raw`` (collapsed stacks)."""
    total = 0
    hits: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        for name, needles in STAGES:
            if any(needle in stack for needle in needles):
                hits[name] += n
    return [(name, hits[name] / total if total else 0.0) for name, _ in STAGES]


async def relay_backlog(events: Events) -> int:
    """Outbox messages the slowest relay subscriber has not taken yet (the phase's database is its
    own, so every outbox row is this run's; a cursor counts what it has handed over)."""
    async with events.engine.connect() as conn:
        return int((await conn.execute(sa.text(
            "SELECT (SELECT count(*) FROM outbox) - coalesce((SELECT min(d) FROM (SELECT sum(delivered) AS d "
            "FROM relay_cursors GROUP BY subscriber) s), 0)"))).scalar_one())


async def relay_drain(box: Box, proc: Any, events: Events, row: report.Row) -> None:
    """Once the worker has drained, wait (at most the drain limit) for the relay to hand every
    outbox message over: the engine's CPU per event with its relay's share (a relay that falls
    behind leaves that work after the phase, where ``cpu_s_per_1k`` does not see it)."""
    cpu, started = cpu_seconds(proc), time.perf_counter()
    left = await relay_backlog(events)
    row["relay_backlog_after_worker"] = left
    while left and time.perf_counter() - started < box.plan.drain_limit:
        await asyncio.sleep(0.2)
        left = await relay_backlog(events)
    row["relay_drain_s"] = round(time.perf_counter() - started, 1)
    row["relay_backlog_left"] = left
    if row.get("events"):
        row["cpu_s_per_1k_with_relay"] = round(row["cpu_s_per_1k"] + (cpu_seconds(proc) - cpu) / row["events"] * 1000,
                                               4)


async def backlog_samples(events: Events, app_id: str, stop: asyncio.Event,
                          relayed: list[int] | None = None) -> list[int]:
    """The app's pending events once a second until ``stop`` (and into ``relayed`` the relay's backlog)."""
    out: list[int] = []
    while not stop.is_set():
        out.append(await events.pending(app_id))
        if relayed is not None:
            relayed.append(await relay_backlog(events))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)
    return out


def slope(samples: list[int]) -> float | None:
    """Growth of the backlog in events per second over the second half of the phase (least squares)."""
    tail = samples[len(samples) // 2:]
    if len(tail) < 2:
        return None
    n = len(tail)
    mean_x, mean_y = (n - 1) / 2, sum(tail) / n
    num = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(tail))
    den = sum((x - mean_x) ** 2 for x in range(n))
    return round(num / den, 1)


async def engine_phase(box: Box, name: str, database_url: str, redis: str | None, *,
                       profile: Path | None = None, counted: bool = False) -> report.Row:
    """One engine, one app with the benchmark's rules, one wrk phase of single events."""
    counter = None
    url = database_url
    if counted:
        from bench.edge import WireCounter

        direct = make_url(database_url)
        counter = WireCounter(direct.host or "127.0.0.1", direct.port or 5432)
        await counter.start()
        url = direct.set(host="127.0.0.1", port=counter.port).render_as_string(hide_password=False)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = engine_env(url, redis, box.engine_settings)
    log = box.work / f"engine-{uuid.uuid4().hex[:6]}.log"
    try:
        async with process(serve_cmd(port, box), env, log, f"{base}/healthz") as (proc, _):
            app = await new_app(database_url, "single")
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                await load_rules(client, app[1])
            await asyncio.sleep(box.plan.settle)
            events = Events(database_url)
            spy = None
            try:
                if counter is not None:
                    before = counter.statements
                    await asyncio.sleep(2)
                    idle = (counter.statements - before) / 2
                if profile is not None:
                    raw = profile / f"{name.replace(' ', '-').replace(',', '')}.txt"
                    spy = await asyncio.create_subprocess_exec(
                        str(py_spy()), "record", "--pid", str(proc.pid), "--rate", "250", "--format", "raw",
                        "--duration", str(int(box.plan.seconds)), "--output", str(raw),
                        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
                stop = asyncio.Event()
                relayed: list[int] = []
                sampler = asyncio.create_task(backlog_samples(events, app[0], stop,
                                                              relayed if "postgresql" in database_url else None))
                row = await event_scenario(box, name, base, proc, events, app, 1, "rules", CEIL_INSERT,
                                           counter=counter, aim=">= 0.7 of the ceiling, p99 < 20 ms")
                stop.set()
                samples = await sampler
                if relayed:
                    await relay_drain(box, proc, events, row)
                row["backlog_samples"] = samples
                row["backlog_growth_per_s"] = slope(samples[:int(box.plan.seconds) + 1])  # while wrk sent
                if relayed:
                    row["relay_backlog_samples"] = relayed
                if counter is not None:
                    row["idle_statements_per_s"] = idle
                if spy is not None:
                    await spy.wait()
                    row["profile"] = {stage: round(share, 3) for stage, share in stage_shares(raw)}
                    row["profile_file"] = str(raw)
            finally:
                await events.close()
    finally:
        if counter is not None:
            await counter.close()
    return row


async def run(args: argparse.Namespace) -> list[report.Row]:
    plan = Plan(seconds=args.seconds, connections=args.connections, settle=1.0)
    work = Path(tempfile.mkdtemp(prefix="questline-single-"))
    box = Box(plan, args.server_cpus or None, args.load_cpus or None, args.postgres, args.redis, work,
              engine_settings=dict(args.set))
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    print(f"logs: {work}", file=sys.stderr)
    databases = args.database or ["postgres", "sqlite"]
    async with contextlib.AsyncExitStack() as stack:
        pg_url = await stack.enter_async_context(scratch_postgres(args.postgres)) \
            if "postgres" in databases or args.ceiling else None
        if args.ceiling and pg_url is not None:
            dsn = asyncpg_dsn(pg_url)
            await prepare_ceilings(dsn, plan.players)
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            cmd = pinned([sys.executable, str(HERE / "ceilings.py"), "--port", str(port), "--dsn", dsn],
                         box.server_cpus)
            async with process(cmd, dict(os.environ), work / "ceilings.log", f"{base}/select/players/p1") as (
                    proc, _):
                run_id = uuid.uuid4().hex[:8]
                await ceiling(box, CEIL_202, base, proc, path="/bare/events", batch=1, run=f"{run_id}a",
                              players=plan.players)
                await ceiling(box, CEIL_INSERT, base, proc, path="/insert/events", batch=1, run=f"{run_id}c",
                              players=plan.players)
        if "postgres" in databases and pg_url is not None:
            box.add(await engine_phase(box, "single event, PostgreSQL", pg_url, args.redis, profile=args.profile))
            if args.count:
                counted = await engine_phase(box, "single event, PostgreSQL, counted", pg_url, args.redis,
                                             counted=True)
                box.add(counted)
        if "sqlite" in databases:
            from questline import migrations

            sqlite_url = f"sqlite+aiosqlite:///{work / 'engine.db'}"
            await asyncio.to_thread(migrations.upgrade, sqlite_url)
            box.add(await engine_phase(box, "single event, SQLite", sqlite_url, None, profile=args.profile))
    return report.with_ratios(box.rows)


def main() -> None:
    p = argparse.ArgumentParser(prog="bench/single.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--database", action="append", choices=("postgres", "sqlite"), help="repeatable; default both")
    p.add_argument("--seconds", type=float, default=10, help="length of each wrk phase")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--no-ceiling", dest="ceiling", action="store_false", help="skip the bare ceilings")
    p.add_argument("--count", action="store_true", help="also count statements per event at PostgreSQL")
    p.add_argument("--profile", type=Path, help="py-spy the engine during each phase; raw stacks go here")
    p.add_argument("--postgres", default=os.environ.get("QUESTLINE_TEST_DATABASE_URL",
                                                        "postgresql+asyncpg://postgres@127.0.0.1:5432/test"))
    p.add_argument("--redis", default=os.environ.get("QUESTLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    p.add_argument("--server-cpus", default="0", help="taskset CPU list for the servers ('' = not pinned)")
    p.add_argument("--load-cpus", default="1", help="taskset CPU list for wrk ('' = not pinned)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", type=engine_setting,
                   help="an engine setting, e.g. worker_slice_ms=5 (repeatable)")
    p.add_argument("--json", type=Path, help="write the rows here")
    args = p.parse_args()
    if args.profile and py_spy() is None:
        p.error("--profile needs py-spy (pip install py-spy)")
    load_before = os.getloadavg()
    rows = asyncio.run(run(args))
    load_after = os.getloadavg()
    for row in rows:
        keep = {k: row.get(k) for k in ("name", "value", "ceiling_value", "ratio", "ratio_bare", "processed_per_s",
                                         "backlog", "backlog_growth_per_s", "left_pending", "p50_ms", "p99_ms",
                                         "cpu_s_per_1k", "statements_per_event", "idle_statements_per_s", "rss_mb",
                                         "load", "errors") if row.get(k) not in (None, {}, "")}
        print(json.dumps(keep))
        if row.get("backlog_samples"):
            print(f"  backlog each second: {row['backlog_samples']}")
        if row.get("relay_backlog_samples"):
            print(f"  relay backlog (outbox messages) each second: {row['relay_backlog_samples']}; "
                  f"{row['relay_backlog_after_worker']} when the worker had drained, {row['relay_backlog_left']} "
                  f"{row['relay_drain_s']} s later; CPU ms per event with the relay's share: "
                  f"{row.get('cpu_s_per_1k_with_relay')}")
        for phase in ("loop_sending", "loop_draining"):
            if row.get(phase):
                print(f"  {phase}: {json.dumps(row[phase])}")
        for stage, share in (row.get("profile") or {}).items():
            print(f"  {share:6.1%}  {stage}")
    print(f"load average before {[round(x, 2) for x in load_before]}, after {[round(x, 2) for x in load_after]}")
    if args.json:
        report.save(args.json, rows, {"command": " ".join(["python", *sys.argv]), "load_before": load_before,
                                      "engine_settings": dict(args.set),
                                      "load_after": load_after, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ")})


if __name__ == "__main__":
    main()
