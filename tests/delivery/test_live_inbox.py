"""A player's inbox is live on their channel: a new entry and the unread count arrive on ``player:{id}``
over a real WebSocket, once even when the relay hands the message over twice, and the count again when
entries are read; a webhook endpoint subscribed to every type receives the domain event only."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import sqlalchemy as sa
from fastapi import FastAPI

from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from questline.notifications import service as notifications
from questline.pipeline.models import OutboxMessage
from questline.relay import service as relay
from questline.webhooks import tasks
from tests.conftest import Factory
from tests.delivery.receiver import receiving
from tests.delivery.test_realtime import _announce, _subscribe, _token, served
from tests.notifications.helpers import outbox_messages
from tests.pipeline.helpers import configure, send, settle

Frame = dict[str, Any]


async def _frames(ws: Any, wait: float) -> list[Frame]:
    """Every non-ping frame that arrives within ``wait`` seconds of the last one."""
    got: list[Frame] = []
    while True:
        try:
            raw = await asyncio.wait_for(ws.recv(), timeout=wait)
        except TimeoutError:
            return got
        frame: Frame = orjson.loads(raw)
        if frame["type"] != "ping":
            got.append(frame)


async def test_inbox_entries_and_the_count_are_live_on_the_players_channel_and_never_webhooks(
        runtime: Runtime, engine: FastAPI, client: httpx.AsyncClient, factory: Factory) -> None:
    import websockets

    keys = await factory.app()
    token = await _token(client, factory, keys, "alice")
    await relay.prepare(runtime, from_head=True)
    async with receiving() as receiver, served(engine) as host:
        made = await client.post("/v1/webhooks", headers=keys.server, json={"url": receiver.url})
        assert made.status_code == 201 and made.json()["event_types"] == []  # every type
        async with websockets.connect(f"ws://{host}/v1/realtime?token={token}") as ws:
            assert (await _subscribe(ws, "player:alice"))["type"] == "subscribed"
            await _announce(runtime, keys.app_id, "alice", 1, type_="level.up", track="xp", to=2)
            await relay.drain(runtime)
            frames = await _frames(ws, 2)
            by_type = {f["data"]["type"]: f for f in frames}
            assert sorted(by_type) == ["level.up", "notification.created"] and len(frames) == 2
            live = by_type["notification.created"]["data"]
            assert live["data"]["unread"] == 1
            entry = live["data"]["notification"]
            assert (entry["type"], entry["title"], entry["status"]) == ("level_up", "Level 2!", "unread")
            inbox = (await client.get("/v1/players/alice/notifications", headers=keys.server)).json()["items"]
            assert [n["id"] for n in inbox] == [entry["id"]] == [live["id"]]

            # The relay hands the message over again: no second entry, nothing new on the channel.
            async with unit_of_work(runtime.sessions) as session:
                await notifications.NotificationsSubscriber(runtime).handle(
                    session, await outbox_messages(runtime, keys.app_id))
            assert await _frames(ws, 0.5) == []

            # Reading it changes the count, live too.
            read = await client.post(f"/v1/players/alice/notifications/{entry['id']}/read", headers=keys.server)
            assert read.status_code == 200
            counted = await _frames(ws, 2)
            [count] = counted
            assert (count["data"]["type"], count["data"]["data"]) == ("notification.unread", {"unread": 0})
            again = await client.post(f"/v1/players/alice/notifications/{entry['id']}/read", headers=keys.server)
            assert again.status_code == 200
            assert await _frames(ws, 0.5) == []  # nothing changed: nothing sent

        # Webhooks: the level-up only; the engine's own inbox bookkeeping never reaches them.
        assert await tasks.send_due(runtime) == 1
        assert [orjson.loads(r.body)["type"] for r in receiver.requests] == ["level.up"]
        async with unit_of_work(runtime.sessions) as session:
            types = (await session.execute(sa.select(OutboxMessage.type)
                                           .where(OutboxMessage.app_id == keys.app_id))).scalars().all()
        assert not [t for t in types if t.startswith("notification")]


async def test_another_player_never_sees_the_entry(
        runtime: Runtime, engine: FastAPI, client: httpx.AsyncClient, factory: Factory) -> None:
    import websockets

    keys = await factory.app()
    player = "bob"
    token = await _token(client, factory, keys, player)
    await relay.prepare(runtime, from_head=True)
    async with served(engine) as host, websockets.connect(f"ws://{host}/v1/realtime?token={token}") as ws:
        assert (await _subscribe(ws, f"player:{player}"))["type"] == "subscribed"
        await _announce(runtime, keys.app_id, "alice", 1, type_="level.up", track="xp", to=2)
        await relay.drain(runtime)
        assert await _frames(ws, 1) == []


async def _latest_rank(ws: Any, want: dict[str, Any], wait: float = 10) -> Frame:
    """Read frames until a ``rank`` frame shows ``want`` (earlier reads may be coalesced or stale)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        frame: Frame = orjson.loads(await asyncio.wait_for(ws.recv(), timeout=max(deadline - loop.time(), 0.01)))
        if frame["type"] == "rank" and all(frame["data"].get(k) == v for k, v in want.items()):
            return frame


async def test_the_leaderboard_channel_carries_each_subscribers_own_rank(
        runtime: Runtime, engine: FastAPI, client: httpx.AsyncClient, factory: Factory) -> None:
    import websockets

    keys = await factory.app()
    await configure(client, keys, {"leaderboard": {"wins": {"event_type": "match.won", "field": "data.score"}}})
    alice, bob = await _token(client, factory, keys, "alice"), await _token(client, factory, keys, "bob")
    await relay.prepare(runtime, from_head=True)

    async def score(event_id: str, player: str, points: int) -> None:
        resp = await send(client, keys, [{"id": event_id, "type": "match.won", "player_id": player,
                                          "data": {"score": points}}])
        assert resp.status_code in (200, 202), resp.text
        await settle(runtime)
        await relay.drain(runtime)

    async with served(engine) as host, \
            websockets.connect(f"ws://{host}/v1/realtime?token={alice}") as a, \
            websockets.connect(f"ws://{host}/v1/realtime?token={bob}") as b, \
            websockets.connect(f"ws://{host}/v1/realtime?token={keys.client_key}") as anyone:
        for ws in (a, b, anyone):
            assert (await _subscribe(ws, "leaderboard:wins"))["type"] == "subscribed"
        # At once: neither is on the board yet.
        for ws, who in ((a, "alice"), (b, "bob")):
            first = await _latest_rank(ws, {"player_id": who})
            assert first["channel"] == "leaderboard:wins" and first["data"]["rank"] is None
        await score("w1", "alice", 5)
        assert (await _latest_rank(a, {"rank": 1}))["data"]["score"] == 5
        assert (await _latest_rank(b, {"ranked": 1}))["data"]["rank"] is None
        await score("w2", "bob", 9)  # bob overtakes alice: each sees their own place
        assert (await _latest_rank(b, {"rank": 1}))["data"] == {
            "board": "wins", "period_key": "all", "partition": None, "player_id": "bob", "rank": 1, "score": 9,
            "ranked": 2}
        assert (await _latest_rank(a, {"rank": 2}))["data"]["score"] == 5
        # The client key's subscriber gets the moves, never a rank (it is no one's).
        frames = await _frames(anyone, 1)
        assert frames and {f["type"] for f in frames} == {"message"}
        assert "alice" not in orjson.dumps(frames).decode()


async def test_brand_and_streamer_inboxes_are_live_on_their_own_channels_only(
        runtime: Runtime, engine: FastAPI, client: httpx.AsyncClient, factory: Factory) -> None:
    """A brand's new inbox entries and unread count arrive on ``brand:{id}`` over a real WebSocket; only
    the brand itself (and the server key) may follow it, and a streamer's channel likewise."""
    import websockets

    from tests.market.helpers import Market

    keys = await factory.app()
    await relay.prepare(runtime, from_head=True)
    market = Market(client, keys)
    brand, rival = await market.brand(), await market.brand()
    streamer = await market.streamer()
    player = await _token(client, factory, keys, "alice")

    def token_of(account: Any) -> str:
        return str(account.headers["Authorization"]).removeprefix("Bearer ")

    async with served(engine) as host:
        # Who may follow which account's channel.
        for token, channel, allowed in (
                (token_of(rival), f"brand:{brand.id}", False), (token_of(streamer), f"brand:{brand.id}", False),
                (player, f"brand:{brand.id}", False), (keys.client_key, f"brand:{brand.id}", False),
                (token_of(brand), f"streamer:{streamer.id}", False),
                (token_of(streamer), f"streamer:{streamer.id}", True),
                (keys.server_key, f"brand:{brand.id}", True)):
            async with websockets.connect(f"ws://{host}/v1/realtime?token={token}") as ws:
                answer = await _subscribe(ws, channel)
                assert answer["type"] == ("subscribed" if allowed else "error"), (channel, answer)
                if not allowed:
                    assert answer["code"] == "channel_forbidden"

        async with websockets.connect(f"ws://{host}/v1/realtime?token={token_of(brand)}") as ws:
            assert (await _subscribe(ws, f"brand:{brand.id}"))["type"] == "subscribed"
            campaign = await market.campaign(brand, title="Summer of Fizz")
            assert (await market.join(campaign["id"], streamer)).status_code == 201
            await relay.drain(runtime)
            frames = await _frames(ws, 2)
            assert [(f["channel"], f["data"]["type"]) for f in frames] == [
                (f"brand:{brand.id}", "notification.created")] * 2
            entries = [(f["data"]["data"]["notification"]["type"], f["data"]["data"]["unread"]) for f in frames]
            assert [kind for kind, _ in entries] == ["campaign_approved", "campaign_joined"]
            assert entries[-1][1] == 2  # the count once the relay's batch committed
            inbox = (await market.ok("GET", f"/v1/brands/{brand.id}/notifications", headers=brand.headers))["items"]
            assert sorted(n["id"] for n in inbox) == sorted(f["data"]["id"] for f in frames)

            # Read one over HTTP: the count, live.
            first = frames[0]["data"]["id"]
            await market.ok("POST", f"/v1/brands/{brand.id}/notifications/{first}/read", headers=brand.headers)
            [count] = await _frames(ws, 2)
            assert (count["data"]["type"], count["data"]["data"]) == ("notification.unread", {"unread": 1})
            # Handed over again by the relay: nothing new on the channel.
            async with unit_of_work(runtime.sessions) as session:
                await notifications.NotificationsSubscriber(runtime).handle(
                    session, await outbox_messages(runtime, keys.app_id))
            assert await _frames(ws, 0.5) == []
