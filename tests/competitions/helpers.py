"""Helpers for competition tests: a funded app, a competition, joins, scored trades, scheduler ticks."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime
from typing import Any

import httpx

from questline.competitions import service as competitions
from questline.kit.clock import ManualClock
from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from tests.conftest import AppKeys
from tests.factories import balance, outbox  # noqa: F401  (re-exported for the tests)
from tests.pipeline.helpers import send, settle

_ids = itertools.count(1)


async def fund(client: httpx.AsyncClient, keys: AppKeys, players: dict[str, int], code: str = "points") -> None:
    resp = await client.put(f"/v1/currencies/{code}", headers=keys.server, json={"name": code.title()})
    assert resp.status_code in (200, 201), resp.text
    for player, amount in players.items():
        resp = await client.post("/v1/ledger/grants", headers={**keys.server, "Idempotency-Key": uuid.uuid4().hex},
                                 json={"player_id": player, "currency": code, "amount": amount})
        assert resp.status_code == 201, resp.text


def competition(starts: str, ends: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Spring trading cup", "starts_at": starts, "ends_at": ends,
        "scoring": {"event_type": "trade", "field": "data.volume", "operator": "sum"},
    }
    body.update(overrides)
    return body


async def create(client: httpx.AsyncClient, keys: AppKeys, body: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post("/v1/competitions", headers=keys.server, json=body)
    assert resp.status_code == 201, resp.text
    out: dict[str, Any] = resp.json()
    return out


async def join(client: httpx.AsyncClient, keys: AppKeys, cid: str, player: str,
               headers: dict[str, str] | None = None) -> httpx.Response:
    return await client.post(f"/v1/competitions/{cid}/participants/{player}", headers=headers or keys.server)


def trade(player: str, volume: int, ts: str) -> dict[str, Any]:
    return {"id": f"t-{next(_ids)}", "player_id": player, "type": "trade", "data": {"volume": volume},
            "timestamp": ts}


async def trades(client: httpx.AsyncClient, keys: AppKeys, runtime: Runtime, events: list[dict[str, Any]]) -> None:
    resp = await send(client, keys, events)
    assert resp.status_code == 202 and not resp.json()["rejected"], resp.text
    await settle(runtime)


async def tick(runtime: Runtime, clock: ManualClock, at: datetime) -> dict[str, int]:
    """Move the clock and run the lifecycle job's body (the job claims of ``job_runs`` are shared by
    every test on one PostgreSQL database, so tests call the body; the two-scheduler test runs the jobs)."""
    clock.set(at)
    async with unit_of_work(runtime.sessions) as session:
        return await competitions.advance(session, runtime, at)


# A maker for the foundation's route walk (tests/foundation/test_access.py): a real competition
# of app A, so the walk checks other tenants against an id that exists.

async def make_competition(world: Any, client: httpx.AsyncClient) -> str:
    body = competition("2026-03-10T13:00:00Z", "2026-03-10T15:00:00Z")
    return str((await create(client, world.a, body))["id"])
