"""Board reads and the account GET on a held engine (PostgreSQL + Redis): repeated wrk phases with
the event loop's lag and the server's CPU per request, for finding what stalls ``serve``'s loop.

Starts ``questline serve`` on a scratch PostgreSQL database (as ``bench/run.py --only boards``
does: one app, the ``bench`` board seeded, players' tokens minted), then runs ``--rounds`` rounds of
top-100, around-me and account-GET phases with wrk (``bench/loadgen.py``). With ``--hold`` it
keeps the server up afterwards (its pid and URL printed) for ``py-spy`` and friends; with
``--wrap bench/edge_loopcpu.py`` the server reports its event-loop callbacks' CPU time.

    python bench/edge_boards.py --help
    python bench/edge_boards.py --seconds 5 --rounds 2 --server-cpus 0 --load-cpus 1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import loadgen, loophealth
from bench.run import (
    Box,
    Events,
    Plan,
    cpu_seconds,
    engine_env,
    free_port,
    process,
    scratch_postgres,
    seeded_board,
    serve_cmd,
    write_targets,
)


async def phase(box: Box, base: str, proc: object, name: str, targets: str, seconds: float) -> dict[str, object]:
    cpu = cpu_seconds(proc)  # type: ignore[arg-type]
    before = await loophealth.scrape(base)
    load = await loadgen.run(base, seconds=seconds, connections=box.plan.connections, cpus=box.load_cpus,
                             mode="get", targets=targets)
    used = cpu_seconds(proc) - cpu  # type: ignore[arg-type]
    return {"phase": name, "per_s": round(load.per_second, 1), "p50_ms": load.p50_ms, "p99_ms": load.p99_ms,
            "cpu_ms_per_req": round(used / load.ok * 1000, 3) if load.ok else None,
            "errors": {k: v for k, v in load.statuses.items() if not k.startswith("2")},
            "load": round(os.getloadavg()[0], 2), "loop": loophealth.between(before, await loophealth.scrape(base))}


async def main(args: argparse.Namespace) -> None:
    plan = Plan(seconds=args.seconds, connections=args.connections, board_seed=args.seed,
                token_players=args.token_players)
    work = Path(tempfile.mkdtemp(prefix="edge-boards-"))
    box = Box(plan, args.server_cpus or None, args.load_cpus or None, args.postgres, args.redis, work)
    async with scratch_postgres(args.postgres) as database_url:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = engine_env(database_url, args.redis, dict(s.split("=", 1) for s in args.set))
        cmd = serve_cmd(port, box)
        if args.wrap:  # e.g. a script that instruments the loop, then runs ``questline`` as ``-m`` would
            at = cmd.index("-m")
            cmd[at:at + 2] = [args.wrap]
        async with process(cmd, env, work / "engine.log", f"{base}/healthz") as (proc, _):
            app, top, around = await seeded_board(base, database_url, box)
            if args.writes:  # score events first, as bench/run.py's full pass does before its board reads
                load = await loadgen.run(base, seconds=args.writes, connections=plan.connections, cpus=box.load_cpus,
                                         batch=1, kind="score", auth=f"Bearer {app[1]}", players=plan.players,
                                         run=uuid.uuid4().hex[:10])
                print(json.dumps({"phase": "writes", "per_s": round(load.per_second, 1), "p99_ms": load.p99_ms}),
                      flush=True)
                if args.drain:
                    events = Events(database_url)
                    try:
                        await events.drain(app[0], 120)
                    finally:
                        await events.close()
            account = write_targets(work / "account.txt", [("/v1/players/p1/account", f"Bearer {app[1]}")])
            await asyncio.sleep(plan.settle)
            for _ in range(args.rounds):
                for name, targets in (("top100", top), ("around", around), ("account", account)):
                    if name in args.phases:
                        print(json.dumps(await phase(box, base, proc, name, targets, plan.seconds)), flush=True)
            if args.hold:
                print(json.dumps({"pid": proc.pid, "base": base, "top": top, "around": around, "account": account}),
                      flush=True)
                await asyncio.sleep(args.hold)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--postgres", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--seed", type=int, default=10_000, help="players seeded on the board")
    p.add_argument("--token-players", type=int, default=500)
    p.add_argument("--phases", default="top100,around,account")
    p.add_argument("--server-cpus", default="0")
    p.add_argument("--load-cpus", default="1")
    p.add_argument("--set", action="append", default=[], help="NAME=VALUE: the engine's QUESTLINE_NAME")
    p.add_argument("--writes", type=float, default=0, help="seconds of score events (one a request) before the reads")
    p.add_argument("--drain", action="store_true", help="wait for the worker to process the writes before the reads")
    p.add_argument("--wrap", default="", help="a Python script run instead of `-m questline` (same arguments)")
    p.add_argument("--hold", type=float, default=0, help="seconds to keep the server up after the rounds")
    return p.parse_args()


async def stoppable(args: argparse.Namespace) -> None:
    """``main``, cancelled on SIGTERM as on Ctrl-C: the server is stopped and the scratch database dropped."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    await main(args)


if __name__ == "__main__":
    with contextlib.suppress(asyncio.CancelledError):
        asyncio.run(stoppable(parse_args()))
