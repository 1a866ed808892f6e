"""Small helpers for the ledger tests: set up currencies, post through the API, count rows."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import sqlalchemy as sa

from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from questline.ledger import service as ledger
from questline.ledger.schemas import Violation
from tests.conftest import AppKeys
from tests.factories import balance  # noqa: F401  (re-exported for the tests)


async def currency(client: httpx.AsyncClient, keys: AppKeys, code: str = "points", name: str = "Points") -> None:
    resp = await client.put(f"/v1/currencies/{code}", headers=keys.server, json={"name": name})
    assert resp.status_code in (200, 201), resp.text


def key_headers(keys: AppKeys, key: str | None = None) -> dict[str, str]:
    return {**keys.server, "Idempotency-Key": key or uuid.uuid4().hex}


async def grant(client: httpx.AsyncClient, keys: AppKeys, player: str, amount: int, *, code: str = "points",
                key: str | None = None, **extra: Any) -> httpx.Response:
    return await client.post("/v1/ledger/grants", headers=key_headers(keys, key),
                             json={"player_id": player, "currency": code, "amount": amount, **extra})


async def spend(client: httpx.AsyncClient, keys: AppKeys, player: str, amount: int, *, code: str = "points",
                key: str | None = None, **extra: Any) -> httpx.Response:
    return await client.post("/v1/ledger/spends", headers=key_headers(keys, key),
                             json={"player_id": player, "currency": code, "amount": amount, **extra})


async def count_rows(runtime: Runtime, app_id: str) -> dict[str, int]:
    """Rows the app has in each ledger table (and players), to prove refused input wrote nothing."""
    counts = {}
    async with unit_of_work(runtime.sessions) as session:
        for table in ("ledger_transactions", "ledger_accounts", "ledger_holds", "players"):
            counts[table] = int((await session.execute(
                sa.text(f"SELECT count(*) FROM {table} WHERE app_id = :app"), {"app": app_id}
            )).scalar_one())
        counts["ledger_postings"] = int((await session.execute(
            sa.text("SELECT count(*) FROM ledger_postings WHERE app_id = :app"), {"app": app_id}
        )).scalar_one())
    return counts


async def verify(runtime: Runtime, app_id: str | None = None) -> list[Violation]:
    async with unit_of_work(runtime.sessions) as session:
        return await ledger.verify(session, app_id)


# Makers for the foundation's route walk (tests/foundation/test_access.py): real ledger
# resources of app A, so the walk checks other tenants against ids that exist.

async def make_currency(world: Any, client: httpx.AsyncClient) -> str:
    await currency(client, world.a)
    return "points"


async def make_hold(world: Any, client: httpx.AsyncClient) -> str:
    await currency(client, world.a)
    assert (await grant(client, world.a, "alice", 100)).status_code == 201
    resp = await client.post("/v1/ledger/holds", headers=world.a.server,
                             json={"player_id": "alice", "currency": "points", "amount": 10, "ttl_seconds": 3600})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])
