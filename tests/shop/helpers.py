"""Helpers for shop tests: a catalog configured through the API, purchases, and a state snapshot."""

from __future__ import annotations

from typing import Any

import httpx
import sqlalchemy as sa

from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from tests import factories
from tests.conftest import AppKeys
from tests.factories import grant, idem  # noqa: F401  (re-exported for the tests)

ITEMS: dict[str, Any] = {
    "sword": {"name": "Sword", "price": {"currency": "points", "amount": 300}, "category": "gear"},
    "potion": {"name": "Potion", "price": {"currency": "points", "amount": 50}, "stock": 3, "max_per_player": 2},
    "session": {"name": "Training session", "price": {"currency": "points", "amount": 400}, "external": True,
                "hold_seconds": 120},
    "trophy": {"name": "Trophy"},
}


async def configure(client: httpx.AsyncClient, keys: AppKeys, items: dict[str, Any] | None = None) -> None:
    resp = await client.put("/v1/currencies/points", headers=keys.server, json={"name": "Points"})
    assert resp.status_code in (200, 201), resp.text
    resp = await client.post("/v1/definitions:bulk", headers=keys.server,
                             json={"definitions": {"item": items or ITEMS}})
    assert resp.status_code == 200, resp.text


async def buy(client: httpx.AsyncClient, headers: dict[str, str], item: str, quantity: int = 1,
              player: str = "alice", key: str | None = None) -> httpx.Response:
    return await client.post(f"/v1/players/{player}/shop/orders", headers=idem(headers, key),
                             json={"item": item, "quantity": quantity})


async def inventory(client: httpx.AsyncClient, keys: AppKeys, player: str = "alice") -> dict[str, int]:
    resp = await client.get(f"/v1/players/{player}/inventory", headers=keys.server)
    assert resp.status_code == 200, resp.text
    return {e["item"]: e["quantity"] for e in resp.json()["items"]}


async def snapshot(runtime: Runtime, app_id: str) -> dict[str, Any]:
    """Everything a purchase touches, read straight from the tables: balances, holds, orders,
    counters, inventories and inventory grants."""
    queries = {
        "balances": "SELECT owner_kind, owner_id, currency, balance FROM ledger_accounts WHERE app_id = :app",
        "holds": "SELECT id, status, amount FROM ledger_holds WHERE app_id = :app",
        "transactions": "SELECT id FROM ledger_transactions WHERE app_id = :app",
        "orders": "SELECT id, status, hold_id FROM shop_orders WHERE app_id = :app",
        "counters": "SELECT item, player_id, count FROM shop_counters WHERE app_id = :app",
        "inventory": "SELECT player_id, item, quantity FROM inventory_items WHERE app_id = :app",
        "grants": "SELECT key FROM inventory_grants WHERE app_id = :app",
    }
    out: dict[str, Any] = {}
    async with unit_of_work(runtime.sessions) as session:
        for name, sql in queries.items():
            rows = (await session.execute(sa.text(sql), {"app": app_id})).all()
            out[name] = sorted(tuple(r) for r in rows)
    return out


async def balance(client: httpx.AsyncClient, keys: AppKeys, player: str = "alice") -> int:
    return await factories.balance(client, keys, player)
