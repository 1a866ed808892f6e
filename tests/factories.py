"""Shared test factories: small helpers that act through the real HTTP API, used by every test area.

Area helpers (``tests/<area>/helpers.py``) hold only what is particular to their area (its
definitions, its reads) and import the common moves from here.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import httpx

from tests.conftest import AppKeys

_ids = itertools.count(1)


def idem(headers: dict[str, str], key: str | None = None) -> dict[str, str]:
    """``headers`` with an ``Idempotency-Key`` (a fresh one unless given)."""
    return {**headers, "Idempotency-Key": key or uuid.uuid4().hex}


async def currency(client: httpx.AsyncClient, keys: AppKeys, code: str = "points", name: str | None = None) -> None:
    resp = await client.put(f"/v1/currencies/{code}", headers=keys.server, json={"name": name or code.title()})
    assert resp.status_code in (200, 201), resp.text


async def define(client: httpx.AsyncClient, keys: AppKeys, definitions: dict[str, dict[str, Any]]) -> None:
    """Save definitions in bulk: ``{kind: {key: body}}``."""
    resp = await client.post("/v1/definitions:bulk", headers=keys.server, json={"definitions": definitions})
    assert resp.status_code == 200, resp.text


async def set_player(client: httpx.AsyncClient, keys: AppKeys, player_id: str, **fields: Any) -> None:
    """Create or update a player's account (``timezone``, ``username``, …)."""
    resp = await client.put(f"/v1/players/{player_id}/account", headers=keys.server, json=fields)
    assert resp.status_code == 200, resp.text


def event(player_id: str, ts: str, type_: str, **data: Any) -> dict[str, Any]:
    """One event with an id unique in this test session."""
    return {"id": f"e-{next(_ids)}", "player_id": player_id, "type": type_, "timestamp": ts, "data": data}


async def send(client: httpx.AsyncClient, keys: AppKeys, *events: dict[str, Any]) -> None:
    """Send events with the server key; every one must be accepted."""
    resp = await client.post("/v1/events", headers=keys.server, json={"events": list(events)})
    assert resp.status_code == 202, resp.text
    assert len(resp.json()["accepted"]) == len(events), resp.text


async def grant(client: httpx.AsyncClient, keys: AppKeys, player: str, amount: int, code: str = "points") -> None:
    resp = await client.post("/v1/ledger/grants", headers=idem(keys.server),
                             json={"player_id": player, "currency": code, "amount": amount})
    assert resp.status_code == 201, resp.text


async def balance(client: httpx.AsyncClient, keys: AppKeys, player: str, code: str = "points") -> int:
    """The player's balance in one currency (0 for a player the engine has not seen)."""
    resp = await client.get(f"/v1/players/{player}/balances", headers=keys.server)
    if resp.status_code == 404:
        return 0
    assert resp.status_code == 200, resp.text
    return int(next((b["balance"] for b in resp.json()["balances"] if b["currency"] == code), 0))


async def outbox(client: httpx.AsyncClient, keys: AppKeys, prefix: str = "") -> list[dict[str, Any]]:
    """Every outbox message of the app whose type starts with ``prefix``, oldest first."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        resp = await client.get("/v1/outbox", headers=keys.server, params=params)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        items += [m for m in body["items"] if m["type"].startswith(prefix)]
        cursor = body["next_cursor"]
        if not cursor:
            return items
