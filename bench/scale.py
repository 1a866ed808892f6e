"""Worker processes on PostgreSQL: events/s per worker process (and per CPU core), per partition,
and how it scales from 1 to N processes, each pinned to its own core.

A backlog is written first (straight into the JetStream streams or the database log: this
measures the workers, not ingest), then ``--workers`` real ``questline worker`` processes start,
pinned with ``taskset`` to cores 0, 1, … when ``--pin`` is given. Throughput is timed from the
first applied event to the last; CPU seconds are the worker processes' own (psutil).

    python bench/scale.py --help
    python bench/scale.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test \\
        --log jetstream --workers 1 --pin
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import sqlalchemy as sa
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pipeline import CONFIG
from bench.pipeline import event as bench_event
from bench.worker import fresh_database
from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from questline.ledger import service as ledger
from questline.mechanics import install
from questline.pipeline import repository as event_log
from questline.pipeline.models import LIVE, EventRecord, partition_of
from questline.pipeline.stream import StreamLog
from questline.rules import service as definitions
from questline.rules.schemas import Bundle
from questline.tenancy import service as tenancy

console = Console(stderr=True)
SECRET = "bench-secret-key-that-is-long-enough-0123456789"


async def backlog(settings: Settings, runtime: Runtime, app_id: str, events: int, players: int) -> None:
    run_id = uuid.uuid4().hex[:8]
    now = runtime.clock.now()
    log = StreamLog(settings) if settings.event_log else None
    try:
        for start in range(0, events, 1000):
            rows = []
            for i in range(start, min(start + 1000, events)):
                e = bench_event(i, run_id, players)
                rows.append({"app_id": app_id, "event_id": e["id"], "player_id": e["player_id"], "type": e["type"],
                             "data": e["data"], "occurred_at": now, "received_at": now, "source": "server",
                             "pending": LIVE,
                             "partition": partition_of(app_id, e["player_id"], settings.pipeline_partitions)})
            if log is not None:
                await log.publish(rows)
            else:
                async with unit_of_work(runtime.sessions) as session:
                    await event_log.append(session, rows, partitions=settings.pipeline_partitions)
    finally:
        if log is not None:
            await log.close()


async def applied(runtime: Runtime, app_id: str) -> int:
    async with runtime.read_sessions() as session:
        return int((await session.execute(sa.select(sa.func.count()).select_from(EventRecord).where(
            EventRecord.app_id == app_id, EventRecord.pending == 0))).scalar_one())


async def run(args: argparse.Namespace) -> dict[str, Any]:
    url, drop = await fresh_database(args.database_url)
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    settings = Settings(env="test", database_url=url, log_json=False, pipeline_partitions=args.partitions,
                        event_log=args.nats_url if args.log == "jetstream" else None,
                        event_log_namespace=namespace, secret_key=SECRET)  # type: ignore[arg-type]
    runtime = Runtime.build(settings)
    install(runtime)
    procs: list[asyncio.subprocess.Process] = []
    try:
        async with unit_of_work(runtime.sessions) as session:
            org = await tenancy.create_org(session, runtime.clock, "Bench")
            app, _, _ = await tenancy.create_app(session, runtime.clock, org.id, "Bench")
            await ledger.ensure_currency(session, runtime.clock, app.id, "points")
            await definitions.apply_bundle(session, runtime.clock, definitions.registry_of(runtime), app.id,
                                           Bundle.model_validate(CONFIG))
        console.print(f"writing a backlog of {args.events} events to the {args.log} log")
        await backlog(settings, runtime, app.id, args.events, args.players)
        env = {k: v for k, v in os.environ.items() if not k.startswith("QUESTLINE_")} | {
            "QUESTLINE_DATABASE_URL": url, "QUESTLINE_PIPELINE_PARTITIONS": str(args.partitions),
            "QUESTLINE_WORKER_BATCH_SIZE": str(args.batch), "QUESTLINE_LOG_LEVEL": "INFO" if args.logs else "WARNING",
            "QUESTLINE_EVENT_LOG_NAMESPACE": namespace, "QUESTLINE_DATABASE_POOL_SIZE": "4",
        } | ({"QUESTLINE_EVENT_LOG": args.nats_url} if args.log == "jetstream" else {})
        taskset = shutil.which("taskset")
        for index in range(args.workers):
            prefix = [taskset, "-c", str(index % (os.cpu_count() or 1))] if args.pin and taskset else []
            log_to = (open(args.logs / f"worker-{index}.log", "wb")  # noqa: SIM115, ASYNC230
                      if args.logs else asyncio.subprocess.DEVNULL)
            procs.append(await asyncio.create_subprocess_exec(
                *prefix, sys.executable, "-m", "questline", "worker", env=env,
                stdout=asyncio.subprocess.DEVNULL, stderr=log_to))
        watched = [psutil.Process(p.pid) for p in procs]
        first_at = first_done = None
        start_at = time.perf_counter()
        timeline: list[tuple[float, int]] = []
        deadline = time.perf_counter() + args.timeout
        while True:
            done = await applied(runtime, app.id)
            now = time.perf_counter()
            if done and first_at is None:
                first_at, first_done = now, done
                cpu0 = sum(_cpu(p) for p in watched)
            if args.logs and int(now * 2) != int((now - 0.05) * 2):
                timeline.append((round(now - start_at, 2), done))
            if done >= args.events or now > deadline:
                break
            await asyncio.sleep(0.05)
        cpu = sum(_cpu(p) for p in watched) - cpu0
        assert first_at is not None and first_done is not None
        seconds = time.perf_counter() - first_at
        measured = done - first_done
        return {
            "log": args.log, "workers": args.workers, "pinned": bool(args.pin and taskset),
            "partitions": args.partitions, "events": done, "batch": args.batch, "seconds": round(seconds, 2),
            "events_per_second": round(measured / seconds, 1) if seconds else None,
            "events_per_cpu_second": round(measured / cpu, 1) if cpu else None,
            "worker_cpu_seconds": round(cpu, 2), "load_average": os.getloadavg()[0],
            **({"timeline": timeline} if args.logs else {}),
        }
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()
        for proc in procs:
            await proc.wait()
        if args.log == "jetstream":
            log = StreamLog(settings)
            await log.delete_streams()
            await log.close()
        await runtime.close()
        if drop is not None:
            await drop()


def _cpu(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
        children = sum(c.cpu_times().user + c.cpu_times().system for c in process.children(recursive=True))
        return float(times.user + times.system + children)
    except psutil.Error:
        return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True, help="a PostgreSQL URL (a new database is made in it)")
    parser.add_argument("--log", choices=("jetstream", "db"), default="jetstream")
    parser.add_argument("--nats-url", default="nats://127.0.0.1:4222")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--pin", action="store_true", help="pin worker i to core i (taskset)")
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--players", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--json", type=Path, help="write the result here")
    parser.add_argument("--logs", type=Path,
                        help="a folder for the workers' logs (stderr, at INFO); also records a timeline of "
                             "applied events")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    console.print_json(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
