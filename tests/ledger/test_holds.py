"""Two-phase purchases: hold, then commit or release, exactly once; expired holds come back."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from questline.kit.clock import ManualClock
from questline.kit.runtime import Runtime
from questline.roles import build_scheduler
from tests.conftest import AppKeys, Factory, problem
from tests.ledger.helpers import balance, count_rows, currency, grant, verify


async def hold(client: httpx.AsyncClient, keys: AppKeys, player: str, amount: int, **extra: object) -> httpx.Response:
    return await client.post("/v1/ledger/holds", headers=keys.server,
                             json={"player_id": player, "currency": "points", "amount": amount, **extra})


async def funded(client: httpx.AsyncClient, factory: Factory, player: str, amount: int) -> AppKeys:
    keys = await factory.app()
    await currency(client, keys)
    assert (await grant(client, keys, player, amount)).status_code == 201
    return keys


async def test_hold_then_commit_spends_once(client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await funded(client, factory, "alice", 1000)
    created = await hold(client, keys, "alice", 300, reference={"order_id": "o-1"})
    assert created.status_code == 201, created.text
    h = created.json()
    assert h["id"].startswith("hold_") and h["status"] == "active" and h["player_balance"] == 700
    assert h["reference"] == {"order_id": "o-1"}
    assert h["expires_at"] == "2026-03-10T12:01:00Z"
    assert await balance(client, keys, "alice") == 700

    committed = await client.post(f"/v1/ledger/holds/{h['id']}/commit", headers=keys.server)
    assert committed.status_code == 200, committed.text
    assert committed.json()["status"] == "committed" and committed.json()["settle_transaction_id"]
    assert await balance(client, keys, "alice") == 700
    problem(await client.post(f"/v1/ledger/holds/{h['id']}/commit", headers=keys.server), 409, "hold_not_active")
    problem(await client.post(f"/v1/ledger/holds/{h['id']}/release", headers=keys.server), 409, "hold_not_active")

    balances = (await client.get("/v1/players/alice/balances", headers=keys.server)).json()["balances"][0]
    assert balances == {"currency": "points", "balance": 700, "lifetime_earned": 1000, "lifetime_spent": 300}
    assert await verify(runtime, keys.app_id) == []


async def test_release_gives_back_and_does_not_count_as_spent(client: httpx.AsyncClient, factory: Factory,
                                                              runtime: Runtime) -> None:
    keys = await funded(client, factory, "bob", 500)
    h = (await hold(client, keys, "bob", 200)).json()
    released = await client.post(f"/v1/ledger/holds/{h['id']}/release", headers=keys.server)
    assert released.status_code == 200 and released.json()["status"] == "released"
    assert released.json()["release_reason"] == "requested" and released.json()["player_balance"] == 500
    problem(await client.post(f"/v1/ledger/holds/{h['id']}/commit", headers=keys.server), 409, "hold_not_active")

    balances = (await client.get("/v1/players/bob/balances", headers=keys.server)).json()["balances"][0]
    assert balances == {"currency": "points", "balance": 500, "lifetime_earned": 500, "lifetime_spent": 0}
    assert await verify(runtime, keys.app_id) == []


async def test_concurrent_commit_and_release_settle_once(client: httpx.AsyncClient, factory: Factory,
                                                         runtime: Runtime) -> None:
    keys = await funded(client, factory, "carol", 1000)
    holds = [(await hold(client, keys, "carol", 100)).json()["id"] for _ in range(5)]
    replies = await asyncio.gather(*(
        client.post(f"/v1/ledger/holds/{hold_id}/{action}", headers=keys.server)
        for hold_id in holds for action in ("commit", "release", "commit", "release")
    ))
    committed = 0
    for i, hold_id in enumerate(holds):
        mine = replies[i * 4:(i + 1) * 4]
        winners = [r for r in mine if r.status_code == 200]
        assert len(winners) == 1, [r.text for r in mine]
        for loser in mine:
            if loser.status_code != 200:
                problem(loser, 409, "hold_not_active")
        committed += winners[0].json()["status"] == "committed"
        got = (await client.get(f"/v1/ledger/holds/{hold_id}", headers=keys.server)).json()
        assert got["status"] == winners[0].json()["status"]
    assert await balance(client, keys, "carol") == 1000 - 100 * committed
    rows = await count_rows(runtime, keys.app_id)
    assert rows["ledger_transactions"] == 1 + 5 + 5  # grant, holds, one settlement each
    assert await verify(runtime, keys.app_id) == []


async def test_an_expired_hold_is_released_by_the_scheduled_job(client: httpx.AsyncClient, factory: Factory,
                                                                runtime: Runtime, clock: ManualClock) -> None:
    keys = await funded(client, factory, "dave", 100)
    h = (await hold(client, keys, "dave", 80, ttl_seconds=60)).json()
    kept = (await hold(client, keys, "dave", 20, ttl_seconds=600)).json()
    scheduler = build_scheduler(runtime)
    assert "ledger.release_expired_holds" in scheduler.jobs

    clock.advance(seconds=59)
    assert "ledger.release_expired_holds" in await scheduler.tick()
    assert (await client.get(f"/v1/ledger/holds/{h['id']}", headers=keys.server)).json()["status"] == "active"

    clock.advance(seconds=1)
    problem(await client.post(f"/v1/ledger/holds/{h['id']}/commit", headers=keys.server), 409, "hold_expired")
    assert "ledger.release_expired_holds" in await scheduler.tick()
    got = (await client.get(f"/v1/ledger/holds/{h['id']}", headers=keys.server)).json()
    assert got["status"] == "released" and got["release_reason"] == "expired"
    assert got["settled_at"] == "2026-03-10T12:01:00Z"
    assert (await client.get(f"/v1/ledger/holds/{kept['id']}", headers=keys.server)).json()["status"] == "active"
    assert await balance(client, keys, "dave") == 80
    # The same period does not run the job twice; the next one finds nothing left to release.
    assert "ledger.release_expired_holds" not in await scheduler.tick()
    assert await verify(runtime, keys.app_id) == []


async def test_hold_replays_its_idempotency_key(client: httpx.AsyncClient, factory: Factory,
                                                runtime: Runtime) -> None:
    keys = await funded(client, factory, "erin", 100)
    headers = {**keys.server, "Idempotency-Key": "order-7"}
    body = {"player_id": "erin", "currency": "points", "amount": 60}
    first = await client.post("/v1/ledger/holds", headers=headers, json=body)
    again = await client.post("/v1/ledger/holds", headers=headers, json=body)
    assert first.status_code == again.status_code == 201 and first.content == again.content
    assert await balance(client, keys, "erin") == 40
    problem(await client.post("/v1/ledger/holds", headers=headers, json={**body, "amount": 61}), 422,
            "idempotency_key_reused")


@pytest.mark.parametrize(("change", "status", "code"), [
    ({"amount": 0}, 422, "validation_failed"),
    ({"amount": 2.5}, 422, "validation_failed"),
    ({"ttl_seconds": 0}, 422, "validation_failed"),
    ({"ttl_seconds": 3601}, 422, "validation_failed"),
    ({"currency": "gems"}, 422, "unknown_currency"),
    ({"amount": 101}, 409, "insufficient_funds"),
])
async def test_bad_holds_are_refused_and_change_nothing(client: httpx.AsyncClient, factory: Factory,
                                                        runtime: Runtime, change: dict[str, object], status: int,
                                                        code: str) -> None:
    keys = await funded(client, factory, "fay", 100)
    before = await count_rows(runtime, keys.app_id)
    body = {"player_id": "fay", "currency": "points", "amount": 10, **change}
    problem(await client.post("/v1/ledger/holds", headers=keys.server, json=body), status, code)
    assert await count_rows(runtime, keys.app_id) == before


async def test_holds_are_scoped_to_their_app_and_the_server_key(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await funded(client, factory, "gus", 100)
    h = (await hold(client, keys, "gus", 10)).json()
    other = await factory.app()
    problem(await client.post(f"/v1/ledger/holds/{h['id']}/commit", headers=other.server), 404, "hold_not_found")
    problem(await client.get(f"/v1/ledger/holds/{h['id']}", headers=other.server), 404, "hold_not_found")
    player = await factory.player_token(keys, "gus")
    problem(await client.post(f"/v1/ledger/holds/{h['id']}/commit", headers=player), 403, "caller_not_allowed")
    problem(await client.post("/v1/ledger/holds/hold_nope/release", headers=keys.server), 404, "hold_not_found")
