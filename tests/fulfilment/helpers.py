"""Helpers for fulfilment tests: a completed competition whose winners hold the given prize tiers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from questline.fulfilment import service as fulfilment
from questline.kit.clock import ManualClock
from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from tests.competitions.helpers import competition, create, fund, join, tick, trade, trades
from tests.conftest import AppKeys


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 3, 10, hour, minute, second, tzinfo=UTC)


def iso(hour: int, minute: int = 0) -> str:
    return at(hour, minute).isoformat().replace("+00:00", "Z")


async def won(client: httpx.AsyncClient, keys: AppKeys, runtime: Runtime, clock: ManualClock,
              tiers: list[dict[str, Any]], players: tuple[str, ...] = ("ann", "ben", "cy")) -> str:
    """A competition that ``players`` entered and finished in that order, its prizes distributed."""
    await fund(client, keys, dict.fromkeys(players, 1))
    cid = str((await create(client, keys, competition(iso(13), iso(15), prizes={"tiers": tiers})))["id"])
    for player in players:
        assert (await join(client, keys, cid, player)).status_code == 201
    await tick(runtime, clock, at(13, 0, 5))
    await trades(client, keys, runtime, [trade(p, 100 * (len(players) - i), iso(13, 10 + i))
                                         for i, p in enumerate(players)])
    await tick(runtime, clock, at(15, 0, 5))
    return cid


async def records(client: httpx.AsyncClient, keys: AppKeys, **params: str) -> list[dict[str, Any]]:
    resp = await client.get("/v1/fulfilments", headers=keys.server, params=params)
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


async def target(client: httpx.AsyncClient, keys: AppKeys, kind: str, url: str) -> str:
    resp = await client.put(f"/v1/fulfilment-targets/{kind}", headers=keys.server, json={"url": url})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["secret"])


# A maker for the foundation's route walk (tests/foundation/test_access.py): a real record of app A.

async def make_fulfilment(world: Any, client: httpx.AsyncClient) -> str:
    runtime: Runtime = client._transport.app.state.runtime  # type: ignore[attr-defined]
    async with unit_of_work(runtime.sessions) as session:
        record = await fulfilment.create(session, runtime, app_id=world.a.app_id, player_id="alice", kind="external",
                                         source="walk", source_ref="walk-1", spec={"sku": "mug"})
    return record.id


async def make_target_kind(world: Any, client: httpx.AsyncClient) -> str:
    return "webhook"
