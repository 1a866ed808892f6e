"""The benchmark harness: the engine beside its bare ceilings, in one run, with one load generator.

    python bench/run.py            # the full run (about 10 minutes)
    python bench/run.py --quick    # about two minutes: 2 s phases, smaller seeds
    python bench/run.py --json out.json --compare previous.json

What it does, in order (every server is pinned to ``--server-cpus``, wrk to ``--load-cpus``):

1. First start: a fresh ``questline serve`` (SQLite, demo data) in an empty directory, timed
   until ``/healthz`` answers, then its idle RSS.
2. The ceilings (bench/ceilings.py): bare FastAPI/uvicorn validating the same body -> 202; the
   same plus one ``INSERT … ON CONFLICT DO NOTHING`` through asyncpg; one primary-key SELECT.
3. The engine on PostgreSQL with Redis: single events, leaderboard score writes, top-100 and
   around-me reads, an authenticated one-query GET, then batches of 100 (the benchmark's rules and
   the demo game's content; last, because the backlogs they leave would run beside every later
   phase). Acknowledged and processed rates (processing is counted until the worker has drained
   the backlog), p50/p99, server CPU seconds per 1,000 events, RSS.
4. Statements per event, counted at the database: the same scenarios once more, shorter, with
   the engine connected to PostgreSQL through a proxy that counts every statement the server
   receives (simple ``Query`` and extended ``Execute`` messages: BEGIN, COMMIT and pings too).
5. The engine on SQLite: single events, batches of 100, the authenticated GET.

``--only edge`` (not part of the full run) measures the request edge alone and quickly: the bare
primary-key SELECT ceiling, then the authenticated one-query GET on PostgreSQL + Redis and on
SQLite, each on a fresh engine with nothing else in the database. ``--only boards`` does the same
for board reads: the ceiling, then top-100 and around-me reads on a freshly seeded board.

Every figure is printed beside its ceiling as a ratio, with the load average of the machine;
``--json`` keeps the rows and ``--compare`` diffs them against an earlier file. wrk (Debian's
``wrk`` package) must be installed; PostgreSQL (a server where ``--postgres`` may create a
scratch database) and Redis must answer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psutil
import sqlalchemy as sa
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench import loadgen, loophealth, report  # noqa: E402
from bench.ceilings import prepare as prepare_ceilings  # noqa: E402
from bench.common import free_port  # noqa: E402
from bench.pipeline import CONFIG  # noqa: E402

if TYPE_CHECKING:
    from bench.edge import WireCounter

console = Console(width=None if sys.stdout.isatty() else 220)
BOARD = {"event_type": "score", "field": "data.points", "operator": "sum", "name": "Bench board"}
SINGLE, BATCH = "single event", "batch of 100"


@dataclass
class Plan:
    """How long and how hard each phase runs (``--quick`` shrinks it)."""

    seconds: float = 10
    count_seconds: float = 4  # the counted (proxied) pass of a scenario
    drain_limit: float = 90  # longest wait for the worker to drain a scenario's backlog
    connections: int = 64
    batch_connections: int = 16
    players: int = 2000
    board_seed: int = 10_000
    token_players: int = 500
    settle: float = 3.0

    @classmethod
    def quick(cls) -> Plan:
        return cls(seconds=2, count_seconds=1, drain_limit=10, connections=32, batch_connections=8, players=500,
                   board_seed=1000, token_players=50, settle=0.5)


@dataclass
class Box:
    """Where things run and what they talk to."""

    plan: Plan
    server_cpus: str | None
    load_cpus: str | None
    postgres: str  # a SQLAlchemy URL; a scratch database is made beside it
    redis: str
    work: Path
    rows: list[report.Row] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)
    idle_statements_per_s: float | None = None  # what an idle engine sends PostgreSQL (worker and scheduler polls)
    engine_settings: dict[str, str] = field(default_factory=dict)  # --set NAME=VALUE: the engine's QUESTLINE_NAME

    def add(self, row: report.Row) -> None:
        load = os.getloadavg()[0]
        self.loads.append(load)
        self.rows.append({"load": round(load, 2), **row})


# Servers ----------------------------------------------------------------------------------------------


def engine_env(database_url: str, redis_url: str | None = None,
               settings: dict[str, str] | None = None) -> dict[str, str]:
    """The engine's environment; ``settings`` (``--set NAME=VALUE``) become ``QUESTLINE_NAME=VALUE``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUESTLINE_")}
    env |= {"QUESTLINE_DATABASE_URL": database_url, "QUESTLINE_LOG_LEVEL": "WARNING", "QUESTLINE_LOG_JSON": "true",
            # limits out of the way (per second: a window's cost grows with the hits it remembers)
            "QUESTLINE_RATE_LIMIT_PER_KEY": "1000000/second", "QUESTLINE_RATE_LIMIT_PER_PLAYER": "1000000/second"}
    if redis_url:
        env |= {"QUESTLINE_REDIS_URL": redis_url, "QUESTLINE_REDIS_NAMESPACE": f"qlbench{uuid.uuid4().hex[:8]}"}
    return env | {f"QUESTLINE_{name.upper()}": value for name, value in (settings or {}).items()}


def pinned(cmd: list[str], cpus: str | None) -> list[str]:
    return ["taskset", "-c", cpus, *cmd] if cpus else cmd


async def wait_healthy(url: str, proc: subprocess.Popen[bytes], limit: float, log: Path) -> float:
    """Seconds until ``url`` answers 200 (the process must stay up)."""
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=1) as client:
        while time.perf_counter() - started < limit:
            if proc.poll() is not None:
                raise SystemExit(f"the server exited ({proc.returncode}); see {log}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return time.perf_counter() - started
            await asyncio.sleep(0.05)
    raise SystemExit(f"the server did not answer {url} within {limit:.0f} s; see {log}")


def spawn(cmd: list[str], env: dict[str, str], log: Path, cwd: Path | None) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(cmd, env=env, stdout=sink, stderr=sink, cwd=cwd)


@contextlib.asynccontextmanager
async def process(cmd: list[str], env: dict[str, str], log: Path, health: str, cwd: Path | None = None,
                  limit: float = 180) -> AsyncIterator[tuple[psutil.Process, float]]:
    """Run a server until the block ends; yields it and the seconds it took to answer ``health``.

    ``limit`` only bounds a start that never ends: an engine's start is about 3 s of CPU, which on a
    box whose other work leaves it a twentieth of a core (the suite in parallel beside other runs)
    took more than a minute. The seconds are reported either way (the first start's row).
    """
    proc = spawn(cmd, env, log, cwd)
    try:
        seconds = await wait_healthy(health, proc, limit, log)
        yield psutil.Process(proc.pid), seconds
    finally:
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, 20)
        except subprocess.TimeoutExpired:
            proc.kill()


def serve_cmd(port: int, box: Box, demo: bool = False) -> list[str]:
    cmd = [sys.executable, "-m", "questline", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if not demo:
        cmd += ["--no-demo", "--no-migrate"]
    return pinned(cmd, box.server_cpus)


def cli(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-m", "questline", *args], env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise SystemExit(f"questline {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def rss_mb(proc: psutil.Process) -> float:
    return round(proc.memory_info().rss / 2**20, 1)


# Databases -------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def scratch_postgres(url: str) -> AsyncIterator[str]:
    """A fresh PostgreSQL database beside ``url``, migrated, dropped at the end."""
    import asyncpg

    from questline import migrations

    base = make_url(url)
    name = f"questline_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = dict(host=base.host, port=base.port, user=base.username, password=base.password, database=base.database)
    conn = await asyncpg.connect(**admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    made = base.set(database=name).render_as_string(hide_password=False)
    try:
        await asyncio.to_thread(migrations.upgrade, made)
        yield made
    finally:
        conn = await asyncpg.connect(**admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Events:
    """Counts of an app's events in the log: all of them, and those the worker has not processed yet.

    One pooled connection: while a backlog drains, ``drain`` asks every 0.1 s, and a new
    connection per question is a new PostgreSQL backend each time."""

    def __init__(self, database_url: str) -> None:
        self.engine: AsyncEngine = create_async_engine(database_url, pool_size=1, max_overflow=1)

    async def counts(self, app_id: str) -> tuple[int, int]:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.text(
                "SELECT count(*), coalesce(sum(CASE WHEN pending > 0 THEN 1 ELSE 0 END), 0) FROM events "
                "WHERE app_id = :app"), {"app": app_id})).one()
        return int(row[0]), int(row[1])

    async def pending(self, app_id: str) -> int:
        """Only the app's pending events: read through the partial index of pending rows, so it
        stays cheap however long the app's log is (``counts`` reads every event of the app: polled
        while a 90,000-event backlog drained, it kept PostgreSQL busy a third of the time)."""
        async with self.engine.connect() as conn:
            return int((await conn.execute(sa.text(
                "SELECT count(*) FROM events WHERE pending > 0 AND app_id = :app"), {"app": app_id})).scalar_one())

    async def drain(self, app_id: str, limit: float) -> tuple[int, int, float]:
        """Wait (at most ``limit`` s) until the app has nothing pending: (total, still pending, time.perf_counter())."""
        deadline = time.perf_counter() + limit
        while True:
            pending = await self.pending(app_id)
            now = time.perf_counter()
            if pending == 0 or now > deadline:
                total, pending = await self.counts(app_id)
                return total, pending, now
            await asyncio.sleep(0.1)

    async def close(self) -> None:
        await self.engine.dispose()


# Apps and their content ---------------------------------------------------------------------------------


async def new_app(database_url: str, name: str) -> tuple[str, str]:
    """A new organization and app, straight through the engine's services: (app id, server key)."""
    from questline.kit.db import unit_of_work
    from questline.kit.runtime import Runtime
    from questline.kit.settings import Settings
    from questline.tenancy import service as tenancy

    runtime = Runtime.build(Settings(database_url=database_url, run_worker=False, run_scheduler=False))
    try:
        async with unit_of_work(runtime.sessions) as session:
            org = await tenancy.create_org(session, runtime.clock, f"Bench {name} {uuid.uuid4().hex[:6]}")
            app, server_key, _ = await tenancy.create_app(session, runtime.clock, org.id, name)
        return app.id, server_key
    finally:
        await runtime.close()


async def api(client: httpx.AsyncClient, method: str, path: str, key: str, body: Any = None) -> Any:
    resp = await client.request(method, path, json=body, headers={"Authorization": f"Bearer {key}"})
    if resp.status_code >= 300:
        raise SystemExit(f"{method} {path} -> {resp.status_code}: {resp.text[:300]}")
    return resp.json() if resp.content else None


async def load_rules(client: httpx.AsyncClient, key: str) -> None:
    """The benchmark's rules (bench/pipeline.py's CONFIG: four stats, two XP tracks, three XP rules)."""
    await api(client, "PUT", "/v1/currencies/points", key, {"name": "Points"})
    for kind in ("stat", "xp_track", "xp_rule"):
        for name, definition in CONFIG["definitions"][kind].items():
            await api(client, "PUT", f"/v1/definitions/{kind}/{name}", key, definition)


@dataclass
class Apps:
    """One app per scenario, so each scenario's events are counted apart."""

    single: tuple[str, str]
    batch: tuple[str, str]
    demo: tuple[str, str] | None
    board: tuple[str, str] | None
    read: tuple[str, str]


async def make_apps(database_url: str, base: str, env: dict[str, str], with_demo: bool, with_board: bool) -> Apps:
    single = await new_app(database_url, "single")
    batch = await new_app(database_url, "batch")
    read = await new_app(database_url, "read")
    demo = await new_app(database_url, "demo") if with_demo else None
    board = await new_app(database_url, "board") if with_board else None
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        for _, key in (single, batch):
            await load_rules(client, key)
        await api(client, "PUT", "/v1/players/p1/account", read[1], {"display_name": "Bench"})
        if board is not None:
            await api(client, "PUT", "/v1/definitions/leaderboard/bench", board[1], BOARD)
    if demo is not None:
        await asyncio.to_thread(cli, ["demo", "load", "--app", demo[0]], env)
    return Apps(single, batch, demo, board, read)


# Scenarios ---------------------------------------------------------------------------------------------


def write_targets(path: Path, lines: list[tuple[str, str]]) -> str:
    path.write_text("".join(f"{p}\t{a}\n" for p, a in lines))
    return str(path)


async def wrk(box: Box, base: str, seconds: float, connections: int, **lua: str | int) -> loadgen.Load:
    """One measured phase. A phase in which no request was answered is run again, twice as long (at most
    three times more, with new event ids): on a starved box a short phase can end before the first batch
    is answered, and a figure of zero says nothing. Each row still carries the load average."""
    load = await loadgen.run(base, seconds=seconds, connections=connections, cpus=box.load_cpus, **lua)
    for _ in range(3):
        if load.requests:
            break
        seconds *= 2
        if "run" in lua:
            lua = {**lua, "run": uuid.uuid4().hex[:10]}
        load = await loadgen.run(base, seconds=seconds, connections=connections, cpus=box.load_cpus, **lua)
    return load


def errors(load: loadgen.Load) -> dict[str, int]:
    out = {k: v for k, v in load.statuses.items() if not k.startswith("2")}
    if load.socket_errors:
        out["socket"] = load.socket_errors
    return out


async def ceiling(box: Box, name: str, base: str, server: psutil.Process, **lua: str | int) -> None:
    """A ceiling's figure: events/s for event routes (``batch`` events per request), req/s for reads."""
    per_request = int(lua.get("batch", 1))
    events = lua.get("mode", "events") == "events"
    cpu = cpu_seconds(server)
    conns = box.plan.batch_connections if per_request > 1 else box.plan.connections
    load = await wrk(box, base, box.plan.seconds, conns, **lua)
    used = cpu_seconds(server) - cpu
    units = load.ok * per_request
    box.add({"name": name, "kind": "ceiling", "unit": "events/s" if events else "req/s",
             "value": round(units / load.seconds, 1), "requests_per_s": round(load.per_second, 1),
             "p50_ms": load.p50_ms, "p99_ms": load.p99_ms,
             "cpu_s_per_1k": round(used / units * 1000, 4) if units else None, "rss_mb": rss_mb(server),
             "errors": errors(load)})


async def event_scenario(box: Box, name: str, base: str, server: psutil.Process, events: Events,
                         app: tuple[str, str], batch: int, kind: str, ceiling_name: str,
                         seconds: float | None = None, counter: WireCounter | None = None,
                         aim: str = "") -> report.Row:
    """wrk sends events for ``seconds``; then the worker drains. Acknowledged rate, processed rate and costs."""
    app_id, key = app
    before, _ = await events.counts(app_id)
    conns = box.plan.batch_connections if batch > 1 else box.plan.connections
    cpu, stmts = cpu_seconds(server), counter.statements if counter else 0
    loop_start = await loophealth.scrape(base)
    started = time.perf_counter()
    load = await wrk(box, base, seconds or box.plan.seconds, conns, batch=batch, kind=kind, auth=f"Bearer {key}",
                     players=box.plan.players, run=uuid.uuid4().hex[:10])
    sent_rss = rss_mb(server)
    loop_sent = await loophealth.scrape(base)
    _, backlog = await events.counts(app_id)
    total, pending, finished = await events.drain(app_id, box.plan.drain_limit)
    used = cpu_seconds(server) - cpu
    loop_drained = await loophealth.scrape(base)
    new = total - before
    processed = new - pending
    row = {"name": name, "kind": "engine", "unit": "events/s", "ceiling": ceiling_name,
           "bare_ceiling": CEIL_202 if batch == 1 else CEIL_202_BATCH,
           "value": round(load.ok * batch / load.seconds, 1), "events": new,
           "processed_per_s": round(processed / (finished - started), 1), "backlog": backlog,
           "left_pending": pending, "p50_ms": load.p50_ms, "p99_ms": load.p99_ms,
           "cpu_s_per_1k": round(used / new * 1000, 4) if new else None, "rss_mb": max(sent_rss, rss_mb(server)),
           "errors": errors(load), "aim": aim, "loop_sending": loophealth.between(loop_start, loop_sent),
           "loop_draining": loophealth.between(loop_sent, loop_drained)}
    if counter is not None:
        row["statements_per_event"] = round((counter.statements - stmts) / new, 4) if new else None
    return row


async def read_scenario(box: Box, name: str, base: str, server: psutil.Process, targets: str, ceiling_name: str,
                        seconds: float | None = None, counter: WireCounter | None = None,
                        aim: str = "") -> report.Row:
    cpu, stmts = cpu_seconds(server), counter.statements if counter else 0
    loop_start = await loophealth.scrape(base)
    load = await wrk(box, base, seconds or box.plan.seconds, box.plan.connections, mode="get", targets=targets)
    used = cpu_seconds(server) - cpu
    row = {"name": name, "kind": "engine", "unit": "req/s", "ceiling": ceiling_name,
           "value": round(load.per_second, 1), "p50_ms": load.p50_ms, "p99_ms": load.p99_ms,
           "cpu_s_per_1k": round(used / load.ok * 1000, 4) if load.ok else None, "rss_mb": rss_mb(server),
           "errors": errors(load), "aim": aim,
           "loop_sending": loophealth.between(loop_start, await loophealth.scrape(base))}
    if counter is not None:
        row["statements_per_event"] = round((counter.statements - stmts) / load.ok, 4) if load.ok else None
    return row


CEIL_202 = "bare 202, single"
CEIL_202_BATCH = "bare 202, batch of 100"
CEIL_INSERT = "bare INSERT, single"
CEIL_INSERT_BATCH = "bare INSERT, batch of 100"
CEIL_SELECT = "bare PK SELECT"


async def first_start(box: Box) -> None:
    """A newcomer's first start: empty directory, default SQLite file, demo data; then idle memory."""
    home = box.work / "first-start"
    home.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUESTLINE_")} | {"QUESTLINE_LOG_LEVEL": "WARNING"}
    cmd = pinned([sys.executable, "-m", "questline", "serve", "--host", "127.0.0.1", "--port", str(port)],
                 box.server_cpus)
    async with process(cmd, env, box.work / "first-start.log", f"http://127.0.0.1:{port}/healthz", cwd=home) as (
            proc, seconds):
        box.add({"name": "first start to /healthz (SQLite, demo)", "kind": "single", "unit": "s",
                 "value": round(seconds, 2), "aim": "< 20 s"})
        await asyncio.sleep(box.plan.settle)
        box.add({"name": "idle RSS, SQLite (demo data)", "kind": "single", "unit": "MB", "value": rss_mb(proc),
                 "aim": "<= 150 MB"})


@contextlib.asynccontextmanager
async def ceiling_server(box: Box, database_url: str) -> AsyncIterator[tuple[str, psutil.Process]]:
    """The bare ceilings' server (bench/ceilings.py) on its seeded tables: yields its base URL and process."""
    dsn = asyncpg_dsn(database_url)
    await prepare_ceilings(dsn, box.plan.players)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = pinned([sys.executable, str(HERE / "ceilings.py"), "--port", str(port), "--dsn", dsn], box.server_cpus)
    async with process(cmd, dict(os.environ), box.work / "ceilings.log", f"{base}/select/players/p1") as (proc, _):
        yield base, proc


async def measure_select_ceiling(box: Box, base: str, proc: psutil.Process) -> None:
    targets = write_targets(box.work / "ceiling-select.txt", [("/select/players/p1", "")])
    await ceiling(box, CEIL_SELECT, base, proc, mode="get", targets=targets)


async def ceilings(box: Box, database_url: str) -> None:
    async with ceiling_server(box, database_url) as (base, proc):
        run = uuid.uuid4().hex[:8]
        await ceiling(box, CEIL_202, base, proc, path="/bare/events", batch=1, run=f"{run}a",
                      players=box.plan.players)
        await ceiling(box, CEIL_202_BATCH, base, proc, path="/bare/events", batch=100, run=f"{run}b",
                      players=box.plan.players)
        await ceiling(box, CEIL_INSERT, base, proc, path="/insert/events", batch=1, run=f"{run}c",
                      players=box.plan.players)
        await ceiling(box, CEIL_INSERT_BATCH, base, proc, path="/insert/events", batch=100, run=f"{run}d",
                      players=box.plan.players)
        await measure_select_ceiling(box, base, proc)


async def prepare_board(base: str, app: tuple[str, str], box: Box, events: Events) -> tuple[str, str]:
    """Seed the board and mint tokens: the targets files for top-100 and around-me reads."""
    app_id, key = app
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        for start in range(0, box.plan.board_seed, 1000):
            items = [{"id": f"seed-{i}", "player_id": f"seed{i}", "type": "score",
                      "data": {"points": (i * 7919) % 100_000}}
                     for i in range(start, min(box.plan.board_seed, start + 1000))]
            await api(client, "POST", "/v1/events", key, {"events": items})
        await events.drain(app_id, box.plan.drain_limit * 2)
        tokens = [(await api(client, "POST", f"/v1/players/p{i}/tokens", key, {}))["token"]
                  for i in range(box.plan.token_players)]
        # the token players need a score to have a rank
        items = [{"id": f"tok-{i}", "player_id": f"p{i}", "type": "score", "data": {"points": 1 + i}}
                 for i in range(box.plan.token_players)]
        await api(client, "POST", "/v1/events", key, {"events": items})
        await events.drain(app_id, box.plan.drain_limit)
    top = write_targets(box.work / f"top-{app_id}.txt",
                        [("/v1/leaderboards/bench?limit=100", f"Bearer {t}") for t in tokens])
    around = write_targets(box.work / f"around-{app_id}.txt",
                           [(f"/v1/leaderboards/bench/players/p{i}?around=5", f"Bearer {t}")
                            for i, t in enumerate(tokens)])
    return top, around


async def seeded_board(base: str, database_url: str, box: Box) -> tuple[tuple[str, str], str, str]:
    """A new app with the bench board on the engine at ``base``, seeded (``prepare_board``): the app
    and the targets files for top-100 and around-me reads."""
    app = await new_app(database_url, "board")
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        await api(client, "PUT", "/v1/definitions/leaderboard/bench", app[1], BOARD)
    events = Events(database_url)
    try:
        top, around = await prepare_board(base, app, box, events)
    finally:
        await events.close()
    return app, top, around


async def postgres_engine(box: Box, database_url: str) -> Apps:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = engine_env(database_url, box.redis, box.engine_settings)
    async with process(serve_cmd(port, box), env, box.work / "engine-pg.log", f"{base}/healthz") as (proc, _):
        await asyncio.sleep(box.plan.settle)
        box.add({"name": "idle RSS, PostgreSQL + Redis", "kind": "single", "unit": "MB", "value": rss_mb(proc),
                 "aim": "<= 150 MB"})
        apps = await make_apps(database_url, base, env, with_demo=True, with_board=True)
        assert apps.demo is not None and apps.board is not None
        events = Events(database_url)
        try:
            # The batch phases go last: they leave backlogs the worker drains for minutes, which would
            # otherwise run beside (and be counted against) every later phase.
            box.add(await event_scenario(box, f"{SINGLE}, PostgreSQL", base, proc, events, apps.single, 1, "rules",
                                         CEIL_INSERT, aim=">= 0.7 of the ceiling, p99 < 20 ms"))
            top, around = await prepare_board(base, apps.board, box, events)
            box.add(await event_scenario(box, "leaderboard score writes, PostgreSQL + Redis", base, proc, events,
                                         apps.board, 1, "score", CEIL_INSERT, aim=">= 5,000/s, p99 < 10 ms")
)
            box.add(await read_scenario(box, "leaderboard top-100 reads, PostgreSQL + Redis", base, proc, top,
                                        CEIL_SELECT, aim=">= 4,000/s, p99 < 10 ms"))
            box.add(await read_scenario(box, "leaderboard around-me reads, PostgreSQL + Redis", base, proc, around,
                                        CEIL_SELECT, aim=">= 4,000/s, p99 < 10 ms"))
            reads = write_targets(box.work / "read-pg.txt", [("/v1/players/p1/account", f"Bearer {apps.read[1]}")])
            box.add(await read_scenario(box, "authenticated one-query GET, PostgreSQL", base, proc, reads,
                                        CEIL_SELECT, aim=">= 0.6 of the ceiling"))
            box.add(await event_scenario(box, f"{BATCH}, PostgreSQL, bench rules", base, proc, events, apps.batch,
                                         100, "rules", CEIL_INSERT_BATCH,
                                         aim=">= 50,000 ingested/s, >= 10,000 processed/s"))
            await events.drain(apps.batch[0], box.plan.drain_limit * 2)  # its backlog is not the demo's
            box.add(await event_scenario(box, f"{BATCH}, PostgreSQL, demo content", base, proc, events, apps.demo,
                                         100, "demo", CEIL_INSERT_BATCH, aim=">= 5,000 processed/s"))
        finally:
            await events.close()
    return apps


IDLE_STATEMENTS_PER_S = 100  # an idle engine's polling (worker, relays, scheduler) is about 40 a second


async def settled(counter: WireCounter, limit: float) -> float:
    """Waits (up to ``limit`` seconds) until the engine is idle at the database: what the timed pass
    left behind besides pending events (the relays delivering its outbox) is not counted against
    the first counted scenario. Returns the idle rate, statements a second over the last 2 s."""
    deadline = time.monotonic() + limit
    while True:
        before = counter.statements
        await asyncio.sleep(2)
        rate = round((counter.statements - before) / 2, 1)
        if rate < IDLE_STATEMENTS_PER_S or time.monotonic() > deadline:
            return rate


async def counted_pass(box: Box, database_url: str, apps: Apps) -> None:
    """The same scenarios, shorter, through a statement-counting proxy: statements per event at PostgreSQL."""
    from bench.edge import WireCounter

    direct = make_url(database_url)
    counter = WireCounter(direct.host or "127.0.0.1", direct.port or 5432)
    await counter.start()
    proxied = direct.set(host="127.0.0.1", port=counter.port).render_as_string(hide_password=False)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = engine_env(proxied, box.redis, box.engine_settings)
    seconds = box.plan.count_seconds
    counted: dict[str, float | None] = {}
    try:
        async with process(serve_cmd(port, box), env, box.work / "engine-pg-counted.log", f"{base}/healthz") as (
                proc, _):
            await asyncio.sleep(box.plan.settle)
            events = Events(database_url)  # the harness's own queries go direct: not counted
            try:
                # what the timed runs left pending is processed first, so it is not counted against a phase
                for app in (apps.single, apps.batch, apps.demo, apps.board):
                    if app is not None:
                        await events.drain(app[0], box.plan.drain_limit * 4)
                box.idle_statements_per_s = await settled(counter, box.plan.drain_limit * 2)
                runs: list[tuple[str, Callable[[], Any]]] = [
                    (f"{SINGLE}, PostgreSQL", lambda: event_scenario(
                        box, "", base, proc, events, apps.single, 1, "rules", "", seconds, counter)),
                ]
                if apps.board is not None:
                    board = apps.board
                    runs.append(("leaderboard score writes, PostgreSQL + Redis", lambda: event_scenario(
                        box, "", base, proc, events, board, 1, "score", "", seconds, counter)))
                reads = write_targets(box.work / "read-pg-counted.txt",
                                      [("/v1/players/p1/account", f"Bearer {apps.read[1]}")])
                runs.append(("authenticated one-query GET, PostgreSQL", lambda: read_scenario(
                    box, "", base, proc, reads, "", seconds, counter)))
                # batches last, as in the timed pass: their backlogs would be counted against what follows
                runs.append((f"{BATCH}, PostgreSQL, bench rules", lambda: event_scenario(
                    box, "", base, proc, events, apps.batch, 100, "rules", "", seconds, counter)))
                if apps.demo is not None:
                    demo = apps.demo
                    runs.append((f"{BATCH}, PostgreSQL, demo content", lambda: event_scenario(
                        box, "", base, proc, events, demo, 100, "demo", "", seconds, counter)))
                for name, measure in runs:
                    counted[name] = (await measure()).get("statements_per_event")
                    await settled(counter, box.plan.drain_limit)  # the next scenario starts from an idle engine
            finally:
                await events.close()
    finally:
        await counter.close()
    for row in box.rows:
        if row["name"] in counted:
            row["statements_per_event"] = counted[row["name"]]


async def sqlite_engine(box: Box) -> None:
    from questline import migrations

    database_url = f"sqlite+aiosqlite:///{box.work / 'engine.db'}"
    await asyncio.to_thread(migrations.upgrade, database_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = engine_env(database_url, settings=box.engine_settings)
    async with process(serve_cmd(port, box), env, box.work / "engine-sqlite.log", f"{base}/healthz") as (proc, _):
        await asyncio.sleep(box.plan.settle)
        box.add({"name": "idle RSS, SQLite", "kind": "single", "unit": "MB", "value": rss_mb(proc),
                 "aim": "<= 150 MB"})
        apps = await make_apps(database_url, base, env, with_demo=False, with_board=False)
        events = Events(database_url)
        try:
            box.add(await event_scenario(box, f"{SINGLE}, SQLite", base, proc, events, apps.single, 1, "rules",
                                         CEIL_INSERT, aim=">= half of PostgreSQL's"))
            box.add(await event_scenario(box, f"{BATCH}, SQLite, bench rules", base, proc, events, apps.batch, 100,
                                         "rules", CEIL_INSERT_BATCH, aim=">= half of PostgreSQL's"))
            reads = write_targets(box.work / "read-sqlite.txt", [("/v1/players/p1/account", f"Bearer {apps.read[1]}")])
            box.add(await read_scenario(box, "authenticated one-query GET, SQLite", base, proc, reads, CEIL_SELECT,
                                        aim=">= half of PostgreSQL's"))
        finally:
            await events.close()


async def select_ceiling(box: Box, database_url: str) -> None:
    """The bare primary-key SELECT ceiling alone, on ``database_url`` (for the read-only steps)."""
    async with ceiling_server(box, database_url) as (base, proc):
        await measure_select_ceiling(box, base, proc)


async def edge_reads(box: Box) -> None:
    """The request edge alone (``--only edge``): the bare PK SELECT, then the authenticated GET on
    PostgreSQL + Redis and on SQLite, back to back, with nothing else in between."""
    from questline import migrations

    async with scratch_postgres(box.postgres) as database_url:
        await select_ceiling(box, database_url)
        await edge_read(box, database_url, box.redis, "PostgreSQL")
    sqlite_url = f"sqlite+aiosqlite:///{box.work / 'edge.db'}"
    await asyncio.to_thread(migrations.upgrade, sqlite_url)
    await edge_read(box, sqlite_url, None, "SQLite")


async def edge_read(box: Box, database_url: str, redis_url: str | None, label: str) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = engine_env(database_url, redis_url, box.engine_settings)
    async with process(serve_cmd(port, box), env, box.work / f"engine-edge-{label}.log", f"{base}/healthz") as (
            proc, _):
        read = await new_app(database_url, "read")
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            await api(client, "PUT", "/v1/players/p1/account", read[1], {"display_name": "Bench"})
        await asyncio.sleep(box.plan.settle)
        reads = write_targets(box.work / f"read-edge-{label}.txt", [("/v1/players/p1/account", f"Bearer {read[1]}")])
        aim = ">= 0.6 of the ceiling" if label == "PostgreSQL" else ">= half of PostgreSQL's"
        box.add(await read_scenario(box, f"authenticated one-query GET, {label}", base, proc, reads, CEIL_SELECT,
                                    aim=aim))


async def board_reads(box: Box) -> None:
    """Board reads alone (``--only boards``): the bare PK SELECT, then top-100 and around-me reads
    on PostgreSQL + Redis, on a fresh engine whose only app is the seeded board."""
    async with scratch_postgres(box.postgres) as database_url:
        await select_ceiling(box, database_url)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = engine_env(database_url, box.redis)
        async with process(serve_cmd(port, box), env, box.work / "engine-boards.log", f"{base}/healthz") as (
                proc, _):
            _, top, around = await seeded_board(base, database_url, box)
            await asyncio.sleep(box.plan.settle)
            box.add(await read_scenario(box, "leaderboard top-100 reads, PostgreSQL + Redis", base, proc, top,
                                        CEIL_SELECT, aim=">= 4,000/s, p99 < 10 ms"))
            box.add(await read_scenario(box, "leaderboard around-me reads, PostgreSQL + Redis", base, proc, around,
                                        CEIL_SELECT, aim=">= 4,000/s, p99 < 10 ms"))


def sqlite_vs_postgres(rows: list[report.Row]) -> None:
    """SQLite rows get ``vs_postgres``: their figure over the same scenario's on PostgreSQL."""
    by_name = {r["name"]: r for r in rows}
    for row in rows:
        if "SQLite" in row["name"] and row["kind"] == "engine":
            twin = by_name.get(row["name"].replace("SQLite", "PostgreSQL"))
            if twin and twin.get("value"):
                row["vs_postgres"] = round(row["value"] / twin["value"], 3)
                if twin.get("processed_per_s") and row.get("processed_per_s") is not None:
                    row["processed_vs_postgres"] = round(row["processed_per_s"] / twin["processed_per_s"], 3)


# The command -----------------------------------------------------------------------------------------------

STEPS = ("first-start", "ceilings", "postgres", "statements", "sqlite", "edge", "boards")
# The full run: "edge" and "boards" repeat, alone and short, what the others measure in full.
DEFAULT_STEPS = STEPS[:-2]


def engine_setting(text: str) -> tuple[str, str]:
    """``--set NAME=VALUE`` (a Settings field, as ``QUESTLINE_NAME`` sets it)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--quick", action="store_true", help="about a minute or two: short phases, small seeds")
    p.add_argument("--seconds", type=float, help="length of each measured phase (default 10, quick 2)")
    p.add_argument("--postgres", default=os.environ.get("QUESTLINE_TEST_DATABASE_URL",
                                                        "postgresql+asyncpg://postgres@127.0.0.1:5432/test"),
                   help="a PostgreSQL URL whose server lets this user create a scratch database")
    p.add_argument("--redis", default=os.environ.get("QUESTLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    p.add_argument("--server-cpus", default="0", help="taskset CPU list for every server ('' = not pinned)")
    p.add_argument("--load-cpus", default="1", help="taskset CPU list for wrk ('' = not pinned)")
    p.add_argument("--only", action="append", choices=STEPS, help="run only these steps (repeatable)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", type=engine_setting,
                   help="an engine setting for every engine of the run, e.g. worker_slice_ms=5 (repeatable)")
    p.add_argument("--json", type=Path, help="write the rows and the run's facts here")
    p.add_argument("--compare", type=Path, help="an earlier --json file: print what changed")
    p.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    return p.parse_args(argv)


async def run(args: argparse.Namespace) -> tuple[list[report.Row], dict[str, Any]]:
    plan = Plan.quick() if args.quick else Plan()
    if args.seconds:
        plan.seconds = args.seconds
    steps = set(args.only or DEFAULT_STEPS)
    loadgen.wrk_binary()
    work = Path(tempfile.mkdtemp(prefix="questline-bench-"))
    box = Box(plan, args.server_cpus or None, args.load_cpus or None, args.postgres, args.redis, work,
              engine_settings=dict(args.set))
    load_before = os.getloadavg()
    started = time.time()
    console.print(f"logs and scratch files: {work}")
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("benchmark", total=len(steps))

        def step(name: str) -> None:
            progress.update(task, description=f"{name} (load {os.getloadavg()[0]:.2f})")

        if "first-start" in steps:
            step("first start")
            await first_start(box)
            progress.advance(task)
        needs_pg = steps & {"ceilings", "postgres", "statements"}
        if needs_pg:
            async with scratch_postgres(args.postgres) as database_url:
                if "ceilings" in steps:
                    step("ceilings")
                    await ceilings(box, database_url)
                    progress.advance(task)
                apps: Apps | None = None
                if "postgres" in steps:
                    step("engine on PostgreSQL + Redis")
                    apps = await postgres_engine(box, database_url)
                    progress.advance(task)
                if "statements" in steps:
                    step("statements counted at PostgreSQL")
                    if apps is None:
                        apps = await make_apps_via_server(box, database_url)
                    await counted_pass(box, database_url, apps)
                    progress.advance(task)
        if "sqlite" in steps:
            step("engine on SQLite")
            await sqlite_engine(box)
            progress.advance(task)
        if "edge" in steps:
            step("the request edge: the PK SELECT ceiling, the authenticated GET on PostgreSQL + Redis, SQLite")
            await edge_reads(box)
            progress.advance(task)
        if "boards" in steps:
            step("board reads: the PK SELECT ceiling, top-100 and around-me on PostgreSQL + Redis")
            await board_reads(box)
            progress.advance(task)
    sqlite_vs_postgres(box.rows)
    rows = report.with_ratios(box.rows)
    load_after = os.getloadavg()
    meta = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "seconds": round(time.time() - started, 1), "command": " ".join(["python", "bench/run.py", *sys.argv[1:]]),
            "quick": args.quick, "plan": plan.__dict__, "engine_settings": box.engine_settings,
            "server_cpus": box.server_cpus, "load_cpus": box.load_cpus,
            "cpus": psutil.cpu_count(), "python": platform.python_version(),
            "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in load_after],
            "idle_statements_per_s": box.idle_statements_per_s,
            "load_during_max": round(max(box.loads, default=load_after[0]), 2),
            "load_during_mean": round(sum(box.loads) / len(box.loads), 2) if box.loads else None}
    return rows, meta


async def make_apps_via_server(box: Box, database_url: str) -> Apps:
    """Apps for a counted pass run on its own (``--only statements``): a short-lived engine loads their content."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = engine_env(database_url, box.redis, box.engine_settings)
    async with process(serve_cmd(port, box), env, box.work / "engine-pg-setup.log", f"{base}/healthz"):
        return await make_apps(database_url, base, env, with_demo=True, with_board=True)


@contextlib.contextmanager
def _quiet_sqlalchemy() -> Iterator[None]:
    import logging

    level = logging.getLogger("sqlalchemy").level
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
    try:
        yield
    finally:
        logging.getLogger("sqlalchemy").setLevel(level)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # so the servers are stopped and the scratch database dropped, as on Ctrl-C


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    with _quiet_sqlalchemy():
        rows, meta = asyncio.run(run(args))
    console.print(report.ceilings_table(rows))
    console.print(report.table(rows, f"the engine beside its ceilings ({meta['cpus']} CPUs; servers on "
                                     f"{meta['server_cpus']}, wrk on {meta['load_cpus']})"))
    console.print(f"load average before {meta['load_before']}, after {meta['load_after']}, "
                  f"during max {meta['load_during_max']} (other work on this machine counts against every figure)")
    for line in report.sqlite_lines(rows):
        console.print(line)
    if meta["idle_statements_per_s"] is not None:
        console.print(f"an idle engine sends PostgreSQL {meta['idle_statements_per_s']} statements/s (worker and "
                      "scheduler polls); they are in every stmts/ev figure")
    if args.markdown:
        console.print(report.markdown(rows), markup=False, highlight=False)
    if args.json:
        report.save(args.json, rows, meta)
        console.print(f"wrote {args.json}")
    if args.compare:
        previous, _ = report.load(args.compare)
        console.print(report.compare_table(report.compare(rows, previous)))


if __name__ == "__main__":
    main()
