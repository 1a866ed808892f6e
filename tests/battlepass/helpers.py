"""Helpers for battle pass tests: a season configured through the API, purchases and claims."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import AppKeys
from tests.factories import balance, grant, idem  # noqa: F401  (re-exported for the tests)

SEASON: dict[str, Any] = {
    "name": "Summer Shred", "season_number": 1, "featured": True,
    "starts_at": "2026-03-01T00:00:00Z", "ends_at": "2026-04-01T00:00:00Z",
    "tiers": 5, "xp_per_tier": 100,
    "free": {"1": {"points": [{"currency": "points", "amount": 100}], "badge": "season_participant"},
             "2": {"items": [{"item": "protein", "quantity": 2}]},
             "5": {"points": [{"currency": "points", "amount": 500}], "title": "Summer Warrior"}},
    "premium": {"1": {"points": [{"currency": "points", "amount": 1000}], "items": [{"item": "session"}]},
                "3": {"note": "Custom trophy", "badge": "season_champion"}},
    "premium_price": {"currency": "points", "amount": 3000},
    "tier_boost_price": {"currency": "points", "amount": 200},
}
ITEMS: dict[str, Any] = {
    "protein": {"name": "Protein sample"},
    "session": {"name": "Training session"},
}
# Tier badges are achievements (granted on claim): grant-only ones, defined in the same bundle.
ACHIEVEMENTS: dict[str, Any] = {
    "season_participant": {"name": "Season Participant", "category": "battle_pass"},
    "season_champion": {"name": "Season Champion", "category": "battle_pass", "rarity": "epic"},
}
RULES: dict[str, Any] = {
    "win": {"event_type": "match.won", "amount": 60, "daily_limit": 150},
    "big-win": {"event_type": "match.won", "amount": 40, "season": "s1",
                "filter": {"field": "data.score", "op": "gte", "value": 1000}},
}


async def configure(client: httpx.AsyncClient, keys: AppKeys, season: dict[str, Any] | None = None,
                    rules: dict[str, Any] | None = None) -> None:
    resp = await client.put("/v1/currencies/points", headers=keys.server, json={"name": "Points"})
    assert resp.status_code in (200, 201), resp.text
    bundle = {"item": ITEMS, "achievement": ACHIEVEMENTS, "battle_pass": {"s1": season or SEASON},
              "pass_xp_rule": rules or RULES}
    resp = await client.post("/v1/definitions:bulk", headers=keys.server, json={"definitions": bundle})
    assert resp.status_code == 200, resp.text


def won(i: int, player: str = "alice", score: int = 500, ts: str = "2026-03-10T12:00:00Z") -> dict[str, Any]:
    return {"id": f"w-{player}-{i}-{ts}", "player_id": player, "type": "match.won", "data": {"score": score},
            "timestamp": ts}


async def progress(client: httpx.AsyncClient, keys: AppKeys, player: str = "alice") -> dict[str, Any]:
    resp = await client.get(f"/v1/players/{player}/battle-pass", headers=keys.server)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def claim(client: httpx.AsyncClient, headers: dict[str, str], tier: int, track: str = "free",
                player: str = "alice", key: str | None = None) -> httpx.Response:
    return await client.post(f"/v1/players/{player}/battle-pass/s1/claim", headers=idem(headers, key),
                             json={"tier": tier, "track": track})


async def premium(client: httpx.AsyncClient, headers: dict[str, str], player: str = "alice",
                  key: str | None = None, **body: Any) -> httpx.Response:
    return await client.post(f"/v1/players/{player}/battle-pass/s1/premium", headers=idem(headers, key), json=body)


async def inventory(client: httpx.AsyncClient, keys: AppKeys, player: str = "alice") -> dict[str, int]:
    resp = await client.get(f"/v1/players/{player}/inventory", headers=keys.server)
    assert resp.status_code == 200, resp.text
    return {e["item"]: e["quantity"] for e in resp.json()["items"]}
