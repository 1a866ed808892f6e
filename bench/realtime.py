"""Delivery benchmark: POST /v1/events to the WebSocket message and to a webhook receiver.

Starts a real ``questline serve`` (API, worker, relay and webhook sender in one process) on a
loopback port, connects ``--sockets`` WebSocket clients (each on its own ``player:{id}`` channel and
all on one ``leaderboard:hits`` channel), then measures:

- end-to-end latency from sending an event to its ``xp.earned`` message on the player's socket
  (p50/p99), and to the webhook receiver;
- fan-out: leaderboard messages delivered to every socket per second, beside a bare ``websockets``
  broadcast server's ceiling in the same run (same sockets, same payload size). With
  ``--redis-url`` it is measured fairly: publications go into the engine's hub (Redis) at full
  speed, as the relay would publish them, and the engine fans each out to every socket; without
  Redis only the rate over the whole event run is known (events are the bottleneck there);
- webhook deliveries per second to a local receiver.

    python bench/realtime.py --sockets 1000 --events 300
    python bench/realtime.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/bench \
        --redis-url redis://127.0.0.1:6379/0 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import websockets
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import bench_env, free_port, percentile, questline, save

CONFIG = {"definitions": {
    "xp_track": {"xp": {"curve": {"type": "quadratic", "base": 1000000}}},
    "xp_rule": {"hit": {"track": "xp", "event_type": "bench.hit", "amount": 1}},
    "leaderboard": {"hits": {"event_type": "bench.hit", "field": "data.n"}},
}}


@contextlib.contextmanager
def server(env: dict[str, str], port: int, log: Path, wait: float = 180) -> Iterator[None]:
    """``questline serve`` on a loopback port (a loaded machine may take a while to start it)."""
    with log.open("w") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "questline", "serve", "--no-demo", "--host", "127.0.0.1",
                                 "--port", str(port)], env=env, stdout=sink, stderr=sink)
    try:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        else:
            raise SystemExit(f"the server did not start:\n{log.read_text()[-2000:]}")
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


class Receiver:
    """A local webhook receiver: records when each message id first arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.port = free_port()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception, asyncio.CancelledError):  # the run ends mid-read
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:] if ": " in line)
                lower = {k.lower(): v for k, v in headers.items()}
                body = await reader.readexactly(int(lower.get("content-length", "0")))
                data = orjson.loads(body)
                self.arrived.setdefault(str(data["data"].get("player_id")), time.perf_counter())
                writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        writer.close()


def _count(tally: list[float]) -> None:
    """One more delivery: [how many, when the first arrived, when the last did]."""
    now = time.perf_counter()
    if not tally[0]:
        tally[1] = now
    tally[0] += 1
    tally[2] = now


def _rate(tally: list[float]) -> float:
    """Deliveries per second between the first and the last arrival (start-up excluded alike)."""
    return (tally[0] - 1) / (tally[2] - tally[1]) if tally[0] > 1 and tally[2] > tally[1] else 0.0


async def _recv_loop(ws: Any, sent: dict[str, float], latencies: list[float], fanout: list[float]) -> None:
    with contextlib.suppress(websockets.ConnectionClosed):
        async for raw in ws:
            frame = orjson.loads(raw)
            if frame.get("type") == "ping":  # the engine closes a socket that stops answering
                await ws.send('{"type": "pong"}')
                continue
            if frame.get("type") != "message":
                continue
            if frame["channel"].startswith("leaderboard:"):
                _count(fanout)
                continue
            started = sent.pop(frame["channel"], None)  # one event per player: its first message
            if started is not None:
                latencies.append((time.perf_counter() - started) * 1000)


# The bare ceiling's server, in its own process as the engine is (clients of both ask for no
# compression, so neither compresses): it broadcasts ``n`` messages to
# every other client when a client connects to ``/go?n=…&c=…`` (once ``c`` clients are in).
CEILING_SERVER = """
import asyncio, json, sys
from urllib.parse import parse_qs, urlsplit
from websockets.asyncio.server import broadcast, serve

async def main(port, size):
    clients = set()

    async def handler(ws):
        url = urlsplit(ws.request.path)
        if url.path == "/go":
            query = parse_qs(url.query)
            n, c = int(query["n"][0]), int(query["c"][0])
            while len(clients) < c:
                await asyncio.sleep(0.01)
            payload = json.dumps({"type": "message", "data": "x" * size})
            for _ in range(n):
                broadcast(clients, payload)
                await asyncio.sleep(0)
            await ws.send("sent")
            return
        clients.add(ws)
        try:
            await ws.wait_closed()
        finally:
            clients.discard(ws)

    async with serve(handler, "127.0.0.1", port, ping_interval=None, max_queue=None):
        print("ready", flush=True)
        await asyncio.Future()

asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
"""


async def ceiling(sockets: int, messages: int, size: int) -> float:
    """Deliveries/s of a bare websockets broadcast server (its own process, like the engine) to
    ``sockets`` clients in this process: the same clients, message count and payload size."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", CEILING_SERVER, str(port), str(size),
                                                stdout=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        await proc.stdout.readline()  # "ready"
        got = [0.0, 0.0, 0.0]

        async def reader(ws: Any) -> None:
            with contextlib.suppress(websockets.ConnectionClosed):
                async for _ in ws:
                    _count(got)

        conns = [await websockets.connect(f"ws://127.0.0.1:{port}/", ping_interval=None, compression=None)
                 for _ in range(sockets)]
        tasks = [asyncio.create_task(reader(c)) for c in conns]
        started = time.perf_counter()
        async with websockets.connect(f"ws://127.0.0.1:{port}/go?n={messages}&c={sockets}") as go:
            await go.recv()
        while got[0] < sockets * messages and time.perf_counter() - started < 60:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        for c in conns:
            await c.close()
        for t in tasks:
            t.cancel()
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        await proc.wait()
    return _rate(got)


PAYLOAD = 200  # bytes of filler in each fan-out message (the ceiling broadcasts the same)


async def hub_fanout(conns: list[Any], fanout: list[float], app_id: str, redis_url: str, namespace: str,
                     messages: int) -> dict[str, Any]:
    """Publish ``messages`` into the engine's Redis hub at full speed on ``leaderboard:hits``;
    deliveries/s until every socket has every one (the engine's fan-out, not its pipeline)."""
    from redis.asyncio import Redis

    from questline.kit.clock import SystemClock
    from questline.realtime.hub import RedisHub
    from questline.realtime.service import key_of

    redis = Redis.from_url(redis_url)
    hub = RedisHub(redis, SystemClock(), namespace=namespace, history_size=200, history_seconds=300)
    try:
        fanout[:] = [0, 0.0, 0.0]
        wanted = len(conns) * messages
        started = time.perf_counter()
        for i in range(messages):
            await hub.publish(key_of(app_id, "leaderboard:hits"), {"type": "bench", "i": i, "x": "x" * PAYLOAD})
        published = time.perf_counter() - started
        deadline = started + 120
        while fanout[0] < wanted and time.perf_counter() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        seconds = time.perf_counter() - started
    finally:
        await redis.aclose()
    return {"hub_messages": messages, "hub_publish_seconds": round(published, 3),
            "hub_deliveries": fanout[0], "hub_deliveries_expected": wanted,
            "hub_fanout_deliveries_per_s": round(_rate(fanout), 1), "hub_seconds": round(seconds, 3)}


async def run(base: str, key: str, sockets: int, events: int, clients: int, app_id: str = "",
              redis_url: str | None = None, namespace: str = "", hub_messages: int = 0) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {key}"}
    receiver = Receiver()
    hook_server = await asyncio.start_server(receiver.handle, "127.0.0.1", receiver.port)
    async with httpx.AsyncClient(base_url=base, headers=auth, timeout=30) as http:
        resp = await http.post("/v1/webhooks", json={"url": f"http://127.0.0.1:{receiver.port}/hook",
                                                     "event_types": ["xp.earned"]})
        resp.raise_for_status()
        host = base.removeprefix("http://")
        sent: dict[str, float] = {}
        latencies: list[float] = []
        fanout = [0.0, 0.0, 0.0]
        conns = []
        for i in range(sockets):
            ws = await websockets.connect(f"ws://{host}/v1/realtime?token={key}", ping_interval=None, compression=None,
                                          max_size=None)
            await ws.send(orjson.dumps({"type": "subscribe", "channel": f"player:p{i}"}).decode())
            await ws.send(orjson.dumps({"type": "subscribe", "channel": "leaderboard:hits"}).decode())
            conns.append(ws)
        readers = [asyncio.create_task(_recv_loop(ws, sent, latencies, fanout)) for ws in conns]
        await asyncio.sleep(1.0)
        gate = asyncio.Semaphore(clients)
        hook_sent: dict[str, float] = {}

        async def one(j: int) -> None:
            player = f"p{j}"
            event_id = f"e{j}-{uuid.uuid4().hex[:6]}"
            async with gate:
                now = time.perf_counter()
                sent[f"player:{player}"] = now
                hook_sent[player] = now
                r = await http.post("/v1/events", json={"id": event_id, "player_id": player, "type": "bench.hit",
                                                        "data": {"n": j}})
                r.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(one(j) for j in range(events)))
        deadline = time.perf_counter() + 120
        while (len(latencies) < events or len(receiver.arrived) < events) and time.perf_counter() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        seconds = time.perf_counter() - started
        fanout_frames = int(fanout[0])
        hub = await hub_fanout(conns, fanout, app_id, redis_url, namespace, hub_messages) \
            if redis_url and hub_messages else {}
        dropped = sum(1 for ws in conns if ws.close_code is not None)  # closed by the engine (slow consumer)
        for ws in conns:
            await ws.close()
        for t in readers:
            t.cancel()
    hook_server.close()
    lat = sorted(latencies)
    hook_lat = sorted((receiver.arrived[e] - t) * 1000 for e, t in hook_sent.items() if e in receiver.arrived)
    return {"sockets": sockets, "events": events, "seconds": round(seconds, 2),
            "ws_received": len(lat), "ws_p50_ms": round(percentile(lat, 50), 1),
            "ws_p99_ms": round(percentile(lat, 99), 1),
            "fanout_deliveries": fanout_frames, "fanout_deliveries_per_s": round(fanout_frames / seconds, 1),
            "webhooks_received": len(receiver.arrived), "webhook_deliveries_per_s": round(len(receiver.arrived)
                                                                                          / seconds, 1),
            "webhook_p50_ms": round(percentile(hook_lat, 50), 1), "webhook_p99_ms": round(percentile(hook_lat, 99), 1),
            "sockets_closed_by_engine": dropped, **hub}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary directory")
    parser.add_argument("--redis-url", help="fan-out through Redis (the scaled tier)")
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--clients", type=int, default=20, help="concurrent event senders")
    parser.add_argument("--hub-messages", type=int, default=50,
                        help="with --redis-url: messages published into the hub at full speed for the fan-out")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    if args.events > args.sockets:
        parser.error("--events must not exceed --sockets (each event goes to its own player's socket)")
    with tempfile.TemporaryDirectory() as tmp:
        database_url = args.database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
        env = bench_env(database_url) | {"QUESTLINE_WEBHOOKS_ALLOW_PRIVATE": "true",
                                         "QUESTLINE_REALTIME_QUEUE_SIZE": "100000"}
        namespace = f"bench-rt-{uuid.uuid4().hex[:8]}"
        if args.redis_url:
            env |= {"QUESTLINE_REDIS_URL": args.redis_url, "QUESTLINE_REDIS_NAMESPACE": namespace}
        questline(["migrate"], env)
        created = json.loads(questline(["apps", "create", f"bench-{uuid.uuid4().hex[:6]}", "--json"], env))
        config_path = Path(tmp) / "config.yaml"
        config_path.write_text(yaml.safe_dump(CONFIG))
        questline(["config", "load", str(config_path), "--app", created["app_id"]], env)
        port = free_port()
        with server(env, port, Path(tmp) / "serve.log"):
            result = asyncio.run(run(f"http://127.0.0.1:{port}", created["server_key"], args.sockets, args.events,
                                     args.clients, created["app_id"], args.redis_url, namespace, args.hub_messages))
    fair = "hub_fanout_deliveries_per_s" in result
    messages = args.hub_messages if fair else max(1, result["fanout_deliveries"] // max(1, args.sockets))
    result["ceiling_deliveries_per_s"] = round(asyncio.run(ceiling(args.sockets, messages, PAYLOAD)), 1)
    ours = result["hub_fanout_deliveries_per_s"] if fair else result["fanout_deliveries_per_s"]
    result["fanout_vs_ceiling"] = round(ours / result["ceiling_deliveries_per_s"], 3) \
        if result["ceiling_deliveries_per_s"] else None
    result["fanout_compared"] = "hub at full speed" if fair else "over the event run (not a fair comparison)"
    print(json.dumps(result, indent=2))
    save([result], args.json)


if __name__ == "__main__":
    main()
