"""Helpers for streak and achievement tests: configure through the API, send events, read views."""

from __future__ import annotations

from typing import Any

import httpx

from questline.kit.runtime import Runtime
from questline.roles import build_scheduler
from tests import factories
from tests.conftest import AppKeys
from tests.factories import balance, send  # noqa: F401  (re-exported for the tests)
from tests.pipeline.helpers import settle


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


async def play(client: httpx.AsyncClient, keys: AppKeys, runtime: Runtime, *events: dict[str, Any]) -> None:
    await send(client, keys, *events)
    await settle(runtime)


async def streak(client: httpx.AsyncClient, keys: AppKeys, player_id: str, key: str = "daily") -> dict[str, Any]:
    resp = await client.get(f"/v1/players/{player_id}/streaks", headers=keys.server)
    assert resp.status_code == 200, resp.text
    found: dict[str, Any] = next(s for s in resp.json()["streaks"] if s["key"] == key)
    return found


async def tick(runtime: Runtime) -> list[str]:
    """Run the scheduled jobs that are due now, then let the worker handle what they queued."""
    ran = await build_scheduler(runtime).tick()
    await settle(runtime)
    return ran


async def player(client: httpx.AsyncClient, keys: AppKeys, player_id: str, tz: str = "UTC") -> None:
    await factories.set_player(client, keys, player_id, timezone=tz)


def event(player_id: str, ts: str, type_: str = "session.played", **data: Any) -> dict[str, Any]:
    return factories.event(player_id, ts, type_, **data)


async def outbox(client: httpx.AsyncClient, keys: AppKeys, type_: str | None = None) -> list[dict[str, Any]]:
    return [m for m in await factories.outbox(client, keys) if type_ is None or m["type"] == type_]
