"""Live channels over a real server: recovery by offset, authorization, heartbeats, slow consumers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
import websockets
from fastapi import FastAPI

from questline.kit.clock import ManualClock
from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from questline.mechanics import install
from questline.pipeline import repository as event_log
from questline.realtime import service
from questline.realtime.service import LiveSession
from questline.relay import repository as relay_repo
from questline.relay import service as relay
from questline.tenancy.auth import SERVER, Caller
from tests.conftest import REDIS_URL, Factory
from tests.pipeline.helpers import configure, send, settle
from tests.serving import free_port

Frame = dict[str, Any]


@contextlib.asynccontextmanager
async def served(engine: FastAPI) -> AsyncIterator[str]:
    """The engine (lifespan already running) behind a real uvicorn on a free port."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(engine, host="127.0.0.1", port=port, lifespan="off", log_level="warning",
                                           ws_ping_interval=None))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for "listening"
        await asyncio.sleep(0.01)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)


async def _token(client: httpx.AsyncClient, factory: Factory, keys: Any, player: str) -> str:
    return (await factory.player_token(keys, player))["Authorization"].removeprefix("Bearer ")


async def _announce(runtime: Runtime, app_id: str, player: str | None, n: int, type_: str = "test.step",
                    **payload: Any) -> None:
    async with unit_of_work(runtime.sessions) as session:
        await event_log.add_outbox(session, [event_log.outbox_row(app_id, type_, player, {"n": n, **payload},
                                                                  runtime.clock.now())])


async def _recv(ws: Any, wait: float = 10) -> Frame:
    while True:
        frame: Frame = orjson.loads(await asyncio.wait_for(ws.recv(), timeout=wait))
        if frame["type"] != "ping":
            return frame


async def _subscribe(ws: Any, channel: str, **extra: Any) -> Frame:
    await ws.send(orjson.dumps({"type": "subscribe", "channel": channel, **extra}).decode())
    return await _recv(ws)


async def test_a_client_away_30_seconds_recovers_every_missed_message_in_order(
        runtime: Runtime, engine: FastAPI, client: httpx.AsyncClient, factory: Factory, clock: ManualClock) -> None:
    keys = await factory.app()
    token = await _token(client, factory, keys, "alice")
    await relay.prepare(runtime, from_head=True)
    async with served(engine) as host:
        async with websockets.connect(f"ws://{host}/v1/realtime?token={token}") as ws:
            hello = await _subscribe(ws, "player:alice")
            assert hello["type"] == "subscribed" and hello["offset"] == 0
            for n in (1, 2):
                await _announce(runtime, keys.app_id, "alice", n)
            await relay.drain(runtime)
            got = [await _recv(ws), await _recv(ws)]
            assert [(f["offset"], f["data"]["data"]["n"]) for f in got] == [(1, 1), (2, 2)]
            last, epoch = got[-1]["offset"], got[-1]["epoch"]
        clock.advance(seconds=30)  # away for 30 s; meanwhile 5 messages, one relayed twice
        for n in range(3, 8):
            await _announce(runtime, keys.app_id, "alice", n)
            await _announce(runtime, keys.app_id, "bob", n)
        await relay.drain(runtime)
        async with unit_of_work(runtime.sessions) as session:
            rows, _ = await relay_repo.next_rows(session, 0, relay_repo.Cursor(), 100_000)
        messages = [relay.message_of(r) for r in rows]
        await service.publish(runtime, [m for m in messages if m.app_id == keys.app_id])  # a redelivery
        async with websockets.connect(f"ws://{host}/v1/realtime?token={token}") as ws:
            hello = await _subscribe(ws, "player:alice", offset=last, epoch=epoch)
            assert hello == {"type": "subscribed", "channel": "player:alice", "offset": 7, "epoch": epoch,
                             "recovered": True}
            missed = [await _recv(ws) for _ in range(5)]
            assert [f["offset"] for f in missed] == [3, 4, 5, 6, 7]
            assert [f["data"]["data"]["n"] for f in missed] == [3, 4, 5, 6, 7]
            await _announce(runtime, keys.app_id, "alice", 8)
            await relay.drain(runtime)
            live = await _recv(ws)
            assert (live["offset"], live["data"]["data"]["n"]) == (8, 8)
            # Too far back (beyond the history's age): told to resync, with the current offset.
            clock.advance(seconds=runtime.settings.realtime_history_seconds + 1)
            stale = await _subscribe(ws, "player:alice", offset=1, epoch=epoch)
            assert stale["type"] == "error" and stale["code"] == "already_subscribed"
            await ws.send(orjson.dumps({"type": "unsubscribe", "channel": "player:alice"}).decode())
            assert (await _recv(ws))["type"] == "unsubscribed"
            assert (await _subscribe(ws, "player:alice", offset=1, epoch=epoch))["recovered"] is False
            assert await _recv(ws) == {"type": "resync", "channel": "player:alice", "offset": 8, "epoch": epoch}


async def test_a_player_cannot_subscribe_to_another_players_channel(
        runtime: Runtime, engine: FastAPI, client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    bob = await _token(client, factory, keys, "bob")
    async with served(engine) as host:
        async with websockets.connect(f"ws://{host}/v1/realtime?token={bob}") as ws:
            refused = await _subscribe(ws, "player:alice")
            assert refused["type"] == "error" and refused["code"] == "channel_forbidden"
            assert (await _subscribe(ws, "admin:monitor"))["code"] == "channel_forbidden"
            assert (await _subscribe(ws, "leaderboard:nope"))["code"] == "leaderboard_not_found"
            assert (await _subscribe(ws, "nonsense"))["code"] == "unknown_channel"
            assert (await _subscribe(ws, "player:bob"))["type"] == "subscribed"
            await _announce(runtime, keys.app_id, "alice", 1)
            await _announce(runtime, keys.app_id, "bob", 2)
            await relay.drain(runtime)
            frame = await _recv(ws)
            assert frame["channel"] == "player:bob" and frame["data"]["data"]["n"] == 2
        async with websockets.connect(f"ws://{host}/v1/realtime?token={keys.client_key}") as ws:
            assert (await _subscribe(ws, "player:alice"))["code"] == "channel_forbidden"
        async with websockets.connect(f"ws://{host}/v1/realtime?token={keys.server_key}") as ws:
            assert (await _subscribe(ws, "player:alice"))["type"] == "subscribed"
        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(f"ws://{host}/v1/realtime?token=not-a-token"):
                pass


async def test_leaderboard_channel_is_public_and_shows_no_player_ids(
        runtime: Runtime, engine: FastAPI, client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await configure(client, keys, {"leaderboard": {"wins": {"event_type": "match.won", "field": "data.score"}}})
    await relay.prepare(runtime, from_head=True)
    async with served(engine) as host, websockets.connect(f"ws://{host}/v1/realtime?token={keys.client_key}") as ws:
        assert (await _subscribe(ws, "leaderboard:wins"))["type"] == "subscribed"
        resp = await send(client, keys, [{"id": "w1", "type": "match.won", "player_id": "alice",
                                          "data": {"score": 5}}])
        assert resp.status_code in (200, 202), resp.text
        await settle(runtime)
        await relay.drain(runtime)
        frame = await _recv(ws)
    assert frame["channel"] == "leaderboard:wins" and frame["data"]["type"] == "leaderboard.updated"
    assert frame["data"]["data"] == {"board": "wins", "players_changed": 1}
    assert "alice" not in orjson.dumps(frame).decode()


async def test_heartbeats_and_a_silent_client_is_dropped(runtime: Runtime, engine: FastAPI,
                                                          factory: Factory) -> None:
    keys = await factory.app()
    runtime.settings.realtime_heartbeat_seconds = 0.2
    async with served(engine) as host, websockets.connect(f"ws://{host}/v1/realtime?token={keys.server_key}") as ws:
        ping = orjson.loads(await asyncio.wait_for(ws.recv(), timeout=5))
        assert ping == {"type": "ping"}
        await ws.send('{"type": "pong"}')
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(ws.recv(), timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4000


async def _stalled_client(host: str, token: str, channel: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket client that subscribes and then never reads, with a small receive buffer (no
    kernel autotuning to absorb megabytes): the server's writes back up."""
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16_384)
    raw.setblocking(False)
    hostname, port = host.rsplit(":", 1)
    await asyncio.get_running_loop().sock_connect(raw, (hostname, int(port)))
    reader, writer = await asyncio.open_connection(sock=raw, limit=1 << 16)
    writer.write((f"GET /v1/realtime?token={token} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    assert b" 101 " in await reader.readuntil(b"\r\n\r\n")
    payload = orjson.dumps({"type": "subscribe", "channel": channel})
    mask = b"\x01\x02\x03\x04"
    writer.write(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    await writer.drain()
    return reader, writer


async def test_a_slow_consumer_is_dropped_and_never_stalls_the_others(
        runtime: Runtime, engine: FastAPI, factory: Factory) -> None:
    keys = await factory.app()
    runtime.settings.realtime_queue_size = 8
    blob = "x" * 65_536
    key = service.key_of(keys.app_id, "player:p")
    target = service.hub(runtime)
    async with served(engine) as host:
        _, stalled = await _stalled_client(host, keys.server_key, "player:p")
        fast = await websockets.connect(f"ws://{host}/v1/realtime?token={keys.server_key}", max_size=None)
        assert (await _subscribe(fast, "player:p"))["type"] == "subscribed"
        while len(target.fanout.listeners.get(key, ())) < 2:  # noqa: ASYNC110 - the stalled one subscribing
            await asyncio.sleep(0.01)
        received = 0

        async def read_fast() -> None:
            nonlocal received
            while received < 400:
                if (await _recv(fast))["type"] == "message":
                    received += 1

        reading = asyncio.create_task(read_fast())
        for n in range(400):
            await target.publish(key, {"n": n, "blob": blob})
            await asyncio.sleep(0.001)
        await asyncio.wait_for(reading, timeout=60)
        assert received == 400  # the fast client got everything, in time
        assert len(target.fanout.listeners.get(key, ())) == 1  # the stalled one was dropped
        await fast.close()
        stalled.close()


async def test_server_sent_events_resume_from_last_event_id(
        runtime: Runtime, engine: FastAPI, client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    token = await _token(client, factory, keys, "alice")
    await relay.prepare(runtime, from_head=True)
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    async with served(engine) as host, httpx.AsyncClient(base_url=f"http://{host}", timeout=10) as http:
        refused = await http.get("/v1/realtime/sse", params={"channel": "player:bob"}, headers=headers)
        assert refused.status_code == 403 and refused.json()["code"] == "channel_forbidden"
        plain = await http.get("/v1/realtime/sse", params={"channel": "player:alice"},
                               headers={"Authorization": f"Bearer {token}"})
        assert plain.status_code == 406 and plain.json()["code"] == "not_acceptable"

        async def events(extra: dict[str, str], count: int) -> list[tuple[str, Frame]]:
            out: list[tuple[str, Frame]] = []
            async with http.stream("GET", "/v1/realtime/sse", params={"channel": "player:alice"},
                                   headers={**headers, **extra}) as resp:
                assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
                event, ident = "", ""
                async for line in resp.aiter_lines():
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("id: "):
                        ident = line[4:]
                    elif line.startswith("data: "):
                        out.append((ident if event == "message" else event, orjson.loads(line[6:])))
                        if len(out) == count:
                            return out
                        if event == "subscribed" and not extra:
                            await _announce(runtime, keys.app_id, "alice", 1)
                            await _announce(runtime, keys.app_id, "alice", 2)
                            await relay.drain(runtime)
            return out

        first = await events({}, 3)
        assert first[0][0] == "subscribed"
        assert [f["data"]["data"]["n"] for _, f in first[1:]] == [1, 2]
        last_id = first[1][0]  # the client saw only the first message
        for n in (3, 4):
            await _announce(runtime, keys.app_id, "alice", n)
        await relay.drain(runtime)
        again = await events({"Last-Event-ID": last_id}, 4)
    assert again[0][1]["recovered"] is True
    assert [f["data"]["data"]["n"] for _, f in again[1:]] == [2, 3, 4]


@pytest.mark.skipif(not REDIS_URL, reason="needs Redis (QUESTLINE_TEST_REDIS_URL)")
async def test_fan_out_crosses_processes_through_redis(runtime: Runtime, factory: Factory, backend: str) -> None:
    if backend != "postgres":
        pytest.skip("the Redis tier runs with PostgreSQL")
    keys = await factory.app()
    other = Runtime.build(runtime.settings, runtime.clock)  # another process's engine: its own hub
    install(other)
    try:
        caller = Caller(kind=SERVER, app_id=keys.app_id)
        live = LiveSession(other, caller)
        await live.subscribe("player:alice")
        assert (await live.queue.get())["type"] == "subscribed"
        await relay.prepare(runtime, from_head=True)
        await _announce(runtime, keys.app_id, "alice", 1)
        await relay.drain(runtime)  # published by this runtime
        frame = await asyncio.wait_for(live.queue.get(), timeout=10)
        assert frame["type"] == "message" and frame["data"]["data"]["n"] == 1
        live.close()
    finally:
        await other.close()


async def test_a_publication_is_encoded_once_for_every_subscriber(runtime: Runtime, factory: Factory) -> None:
    """The fan-out to many sockets of one process encodes a message's JSON once, not once per socket."""
    keys = await factory.app()
    caller = Caller(kind=SERVER, app_id=keys.app_id, key_id="test")
    sessions = [LiveSession(runtime, caller) for _ in range(3)]
    for live in sessions:
        await live.subscribe("player:enc", None, None)
        assert (await asyncio.wait_for(live.queue.get(), 10))["type"] == "subscribed"
    try:
        await service.hub(runtime).publish(service.key_of(keys.app_id, "player:enc"), {"n": 1, "name": "<é>"})
        frames = [await asyncio.wait_for(live.queue.get(), 10) for live in sessions]
    finally:
        for live in sessions:
            live.close()
    texts = [service.frame_text(frame) for frame in frames]
    assert all(text is texts[0] for text in texts)  # one string, shared
    assert [orjson.loads(text) for text in texts] == [dict(frame) for frame in frames]
    assert orjson.loads(texts[0])["data"] == {"n": 1, "name": "<é>"}
    assert orjson.loads(service.frame_text({"type": "ping"})) == {"type": "ping"}  # other frames: encoded each time


async def test_a_batch_published_at_once_numbers_each_channel_in_order_and_once(runtime: Runtime,
                                                                                 factory: Factory) -> None:
    """``publish_many`` (the relay's batches; one script call per channel on Redis) as ``publish`` one by
    one: each channel's offsets in order, a message id published there before is not again, and the
    history gives back what was published."""
    keys = await factory.app()
    target = service.hub(runtime)
    ann, bob = service.key_of(keys.app_id, "player:ann"), service.key_of(keys.app_id, "player:bob")
    assert await target.publish(ann, {"n": 0}, "m0") == 1
    got = await target.publish_many([(ann, {"n": 1}, "m1"), (bob, {"n": 2}, "m2"), (ann, {"n": 0}, "m0"),
                                     (ann, {"n": 3}, "m3"), (bob, {"n": 2}, "m2"), (bob, {"n": 4}, "m4")])
    assert got == [2, 1, None, 3, None, 2]
    assert await target.publish_many([(ann, {"n": 3}, "m3")]) == [None]
    assert await target.publish(ann, {"n": 5}, "m5") == 4
    ann_back = await target.recover(ann, 0, None)
    bob_back = await target.recover(bob, 0, None)
    assert ann_back.missed is not None and bob_back.missed is not None
    assert [(p.offset, p.data["n"]) for p in ann_back.missed] == [(1, 0), (2, 1), (3, 3), (4, 5)]
    assert [(p.offset, p.data["n"]) for p in bob_back.missed] == [(1, 2), (2, 4)]
