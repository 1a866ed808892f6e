"""Helpers for streak and achievement tests: configure through the API, send events, read views."""

from __future__ import annotations

import itertools
from typing import Any

import httpx

from questline.app import build_scheduler
from questline.kit.runtime import Runtime
from tests.conftest import AppKeys
from tests.pipeline.helpers import settle

_ids = itertools.count(1)


def daily(**extra: Any) -> dict[str, Any]:
    """A daily streak of ``session.played`` with a paid 3-day milestone, buyable freezes and rest days."""
    return {"name": "Daily play", "event_types": ["session.played"], "cadence": "daily",
            "milestones": [{"at": 3, "reward": {"currency": "points", "amount": 100}}, 7],
            "freezes": {"max_held": 2, "cost": 50, "currency": "points"}, "rest_days_per_week": 2, **extra}


async def configure(client: httpx.AsyncClient, keys: AppKeys, **kinds: dict[str, dict[str, Any]]) -> None:
    resp = await client.put("/v1/currencies/points", headers=keys.server, json={"name": "Points"})
    assert resp.status_code in (200, 201), resp.text
    resp = await client.post("/v1/definitions:bulk", headers=keys.server, json={"definitions": kinds})
    assert resp.status_code == 200, resp.text


async def player(client: httpx.AsyncClient, keys: AppKeys, player_id: str, tz: str = "UTC") -> None:
    resp = await client.put(f"/v1/players/{player_id}/account", headers=keys.server, json={"timezone": tz})
    assert resp.status_code == 200, resp.text


def event(player_id: str, ts: str, type_: str = "session.played", **data: Any) -> dict[str, Any]:
    return {"id": f"e-{next(_ids)}", "player_id": player_id, "type": type_, "timestamp": ts, "data": data}


async def send(client: httpx.AsyncClient, keys: AppKeys, *events: dict[str, Any]) -> None:
    resp = await client.post("/v1/events", headers=keys.server, json={"events": list(events)})
    assert resp.status_code == 202, resp.text
    assert len(resp.json()["accepted"]) == len(events), resp.text


async def play(client: httpx.AsyncClient, keys: AppKeys, runtime: Runtime, *events: dict[str, Any]) -> None:
    await send(client, keys, *events)
    await settle(runtime)


async def streak(client: httpx.AsyncClient, keys: AppKeys, player_id: str, key: str = "daily") -> dict[str, Any]:
    resp = await client.get(f"/v1/players/{player_id}/streaks", headers=keys.server)
    assert resp.status_code == 200, resp.text
    found: dict[str, Any] = next(s for s in resp.json()["streaks"] if s["key"] == key)
    return found


async def outbox(client: httpx.AsyncClient, keys: AppKeys, type_: str | None = None) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        resp = await client.get("/v1/outbox", headers=keys.server, params=params)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if not cursor:
            break
    return [m for m in items if type_ is None or m["type"] == type_]


async def balance(client: httpx.AsyncClient, keys: AppKeys, player_id: str, currency: str = "points") -> int:
    resp = await client.get(f"/v1/players/{player_id}/balances", headers=keys.server)
    assert resp.status_code == 200, resp.text
    return int(next(b["balance"] for b in resp.json()["balances"] if b["currency"] == currency))


async def tick(runtime: Runtime) -> list[str]:
    """Run the scheduled jobs that are due now, then let the worker handle what they queued."""
    ran = await build_scheduler(runtime).tick()
    await settle(runtime)
    return ran
