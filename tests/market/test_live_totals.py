"""A campaign's impressions live on ``campaign:{id}`` over a real WebSocket: an impression batch brings a
``campaign.totals`` frame with the new totals once it has committed; changes told in a burst make one
frame, and concurrent batches end on a frame with the final totals; only the campaign's brand (its
participants, the server key and admins) may follow it: another brand is refused."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import websockets
from fastapi import FastAPI

from questline.campaigns import live
from questline.kit.runtime import Runtime
from questline.realtime.service import CampaignTotalsPublisher
from tests.conftest import Factory
from tests.delivery.test_realtime import _subscribe, served
from tests.market.helpers import Market

Frame = dict[str, Any]


def _token(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


async def _totals(ws: Any, wait: float) -> list[Frame]:
    """The ``campaign.totals`` payloads that arrive until the socket is quiet for ``wait`` seconds."""
    got: list[Frame] = []
    while True:
        try:
            frame: Frame = orjson.loads(await asyncio.wait_for(ws.recv(), timeout=wait))
        except TimeoutError:
            return got
        if frame["type"] == "message" and frame["data"]["type"] == "campaign.totals":
            got.append(frame["data"]["data"])


async def _until(ws: Any, impressions: int, wait: float = 20) -> list[Frame]:
    """Every totals payload up to the first that shows ``impressions``."""
    loop = asyncio.get_running_loop()
    deadline, got = loop.time() + wait, []
    while True:
        frame: Frame = orjson.loads(await asyncio.wait_for(ws.recv(), timeout=max(deadline - loop.time(), 0.01)))
        if frame["type"] == "message" and frame["data"]["type"] == "campaign.totals":
            got.append(frame["data"]["data"])
            if frame["data"]["data"]["impressions"] == impressions:
                return got


async def test_impressions_reach_the_campaign_channel_with_the_new_totals(
        runtime: Runtime, engine: FastAPI, client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    brand, other = await market.brand(), await market.brand()
    campaign = await market.campaign(brand, budget=100_000, rate=1_000, impression_target=10**9)
    streamer = await market.streamer()
    assert (await market.join(campaign["id"], streamer)).status_code == 201
    channel = f"campaign:{campaign['id']}"
    async with served(engine) as host:
        # Another brand may not follow the campaign; its own brand may.
        async with websockets.connect(f"ws://{host}/v1/realtime?token={_token(other.headers)}") as stranger:
            refused = await _subscribe(stranger, channel)
            assert (refused["type"], refused["code"]) == ("error", "channel_forbidden")
        async with websockets.connect(f"ws://{host}/v1/realtime?token={_token(brand.headers)}") as ws:
            assert (await _subscribe(ws, channel))["type"] == "subscribed"

            await market.impressions(campaign["id"], [("a-1", streamer.id, 40)])
            [frame] = await _until(ws, 40)
            assert frame == {"campaign_id": campaign["id"], "status": "active", "currency": "USD",
                             "impressions": 40, "impression_target": 10**9, "spent": 40, "budget": 100_000,
                             "remaining": 99_960, "commission": frame["commission"]}

            # Concurrent batches: the frames never go back, and the last one carries the final totals.
            await asyncio.gather(*(market.impressions(campaign["id"], [(f"b-{i}", streamer.id, 10 + i)])
                                   for i in range(6)))
            final = 40 + sum(10 + i for i in range(6))
            seen = await _until(ws, final)
            assert [f["impressions"] for f in seen] == sorted(f["impressions"] for f in seen)
            state = await market.campaign_state(campaign["id"])
            last = (seen[-1]["impressions"], seen[-1]["spent"])
            assert last == (state["impressions"], state["spent"]) == (final, final)
            assert await _totals(ws, 1.5) == []  # nothing after the final totals

            # A stranger's campaign id is refused before anything is sent.
            assert (await _subscribe(ws, "campaign:cmp_nope"))["code"] == "campaign_not_found"


class HeldPublisher(CampaignTotalsPublisher):
    """The engine's publisher whose quiet time after each frame lasts until the test lets it end."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.go_on = asyncio.Event()

    async def pause(self) -> None:
        await self.go_on.wait()
        self.go_on.clear()


async def test_a_burst_of_batches_makes_one_frame_with_the_last_totals(
        runtime: Runtime, engine: FastAPI, client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    market = Market(client, keys)
    brand = await market.brand()
    campaign = await market.campaign(brand, budget=100_000, rate=1_000, impression_target=10**9)
    streamer = await market.streamer()
    assert (await market.join(campaign["id"], streamer)).status_code == 201
    held = HeldPublisher(runtime)
    installed = runtime.extensions[live.LISTENERS]["realtime"]
    live.listen_totals(runtime, "realtime", held)
    try:
        async with served(engine) as host, \
                websockets.connect(f"ws://{host}/v1/realtime?token={_token(keys.server)}") as ws:
            assert (await _subscribe(ws, f"campaign:{campaign['id']}"))["type"] == "subscribed"
            await market.impressions(campaign["id"], [("a-1", streamer.id, 7)])
            assert [f["impressions"] for f in await _until(ws, 7)] == [7]  # the first change: at once
            for i in range(5):  # five batches during the quiet time: no frame yet
                await market.impressions(campaign["id"], [(f"b-{i}", streamer.id, 3)])
            assert await _totals(ws, 1) == []
            held.go_on.set()  # the quiet time ends: one frame, with the totals of the last batch
            [last] = await _until(ws, 22)
            assert (last["impressions"], last["spent"], last["remaining"]) == (22, 22, 100_000 - 22)
            held.go_on.set()  # nothing changed meanwhile: the publisher is done
            assert await _totals(ws, 1) == []
            assert not held.pending
    finally:
        live.listen_totals(runtime, "realtime", installed)
        await held.stop()
