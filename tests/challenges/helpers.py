"""Helpers for challenge tests: configure through the API, send events, read the player's view."""

from __future__ import annotations

from typing import Any

import httpx

from tests import factories
from tests.conftest import AppKeys
from tests.factories import balance, idem, send  # noqa: F401  (re-exported for the tests)

TRACKS: dict[str, dict[str, Any]] = {
    "xp": {"name": "Experience", "curve": {"type": "quadratic", "base": 100}},
}


def workouts(target: int = 3, **extra: Any) -> dict[str, Any]:
    """A daily challenge: ``target`` workouts, paying 50 XP and 20 points."""
    return {"name": f"{target} workouts", "category": "workout", "recurrence": "daily",
            "rewards": {"xp": {"track": "xp", "amount": 50}, "points": {"currency": "points", "amount": 20}},
            "objectives": [{"type": "count", "event_type": "workout.completed", "target": target}], **extra}


async def configure(client: httpx.AsyncClient, keys: AppKeys, challenges: dict[str, dict[str, Any]],
                    **kinds: dict[str, dict[str, Any]]) -> None:
    resp = await client.put("/v1/currencies/points", headers=keys.server, json={"name": "Points"})
    assert resp.status_code in (200, 201), resp.text
    definitions = {"xp_track": TRACKS, **kinds, "challenge": challenges}
    resp = await client.post("/v1/definitions:bulk", headers=keys.server, json={"definitions": definitions})
    assert resp.status_code == 200, resp.text


async def challenges(client: httpx.AsyncClient, keys: AppKeys, player_id: str,
                     **params: Any) -> dict[str, dict[str, Any]]:
    """The player's challenges by key (every group flattened), each with its ``group``."""
    resp = await client.get(f"/v1/players/{player_id}/challenges", headers=keys.server, params=params)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    out = {}
    for group in ("daily", "weekly", "monthly", "special"):
        for item in body[group]:
            out[item["key"]] = {**item, "group": group}
    return out


async def history(client: httpx.AsyncClient, keys: AppKeys, player_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        resp = await client.get(f"/v1/players/{player_id}/challenges/history", headers=keys.server, params=params)
        assert resp.status_code == 200, resp.text
        items += resp.json()["items"]
        cursor = resp.json()["next_cursor"]
        if not cursor:
            return items


async def total_xp(client: httpx.AsyncClient, keys: AppKeys, player_id: str) -> int:
    resp = await client.get(f"/v1/players/{player_id}", headers=keys.server)
    assert resp.status_code == 200, resp.text
    return int(resp.json()["levels"]["xp"]["total_xp"])


async def outbox_types(client: httpx.AsyncClient, keys: AppKeys) -> list[str]:
    resp = await client.get("/v1/outbox", headers=keys.server, params={"limit": 200})
    assert resp.status_code == 200, resp.text
    return [m["type"] for m in resp.json()["items"]]


async def player(client: httpx.AsyncClient, keys: AppKeys, player_id: str, tz: str = "UTC") -> None:
    await factories.set_player(client, keys, player_id, timezone=tz)


def event(player_id: str, ts: str, type_: str = "workout.completed", **data: Any) -> dict[str, Any]:
    return factories.event(player_id, ts, type_, **data)
