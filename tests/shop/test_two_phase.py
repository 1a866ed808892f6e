"""The two phases and their failures: external orders confirmed, cancelled or expired, and a
failure injected between every pair of phases leaving everything as it was."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from questline.kit.clock import ManualClock
from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from questline.ledger import service as ledger
from questline.rules.service import ruleset_cache
from questline.shop import service as shop
from questline.shop.schemas import OrderIn
from tests.conftest import Factory, problem
from tests.ledger.helpers import verify
from tests.shop.helpers import balance, buy, configure, grant, idem, inventory, snapshot


class Injected(Exception):
    """The failure a test makes one phase raise."""


def fail_after(phase: str) -> Any:
    def hook(name: str) -> None:
        if name == phase:
            raise Injected(name)
    return hook


@pytest.mark.parametrize("phase", ["reserved", "held", "ordered", "paid", "granted", "completed"])
async def test_a_failure_after_any_phase_of_a_purchase_changes_nothing(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, phase: str) -> None:
    keys = await factory.app()
    await configure(client, keys)
    await grant(client, keys, "alice", 1000)
    assert (await buy(client, keys.server, "potion")).status_code == 201  # counters and inventory exist already
    before = await snapshot(runtime, keys.app_id)

    with pytest.raises(Injected):
        async with unit_of_work(runtime.sessions) as session:
            ruleset = await ruleset_cache(runtime).get(session, keys.app_id)
            await shop.purchase(session, runtime, ruleset, keys.app_id, "alice", OrderIn(item="potion"),
                                on_phase=fail_after(phase))
    assert await snapshot(runtime, keys.app_id) == before
    # And the same purchase, undisturbed, goes through.
    resp = await buy(client, keys.server, "potion")
    assert resp.status_code == 201, resp.text
    assert await balance(client, keys) == 900 and await inventory(client, keys) == {"potion": 2}
    assert await verify(runtime, keys.app_id) == []


async def test_external_order_waits_for_the_shop_to_confirm(client: httpx.AsyncClient, factory: Factory,
                                                            runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys)
    await grant(client, keys, "alice", 1000)
    resp = await buy(client, await factory.player_token(keys, "alice"), "session")
    assert resp.status_code == 201, resp.text
    order = resp.json()
    assert order["status"] == "pending" and order["external"] and order["balance"] == 600
    assert await inventory(client, keys) == {}
    hold = (await client.get(f"/v1/ledger/holds/{order['hold_id']}", headers=keys.server)).json()
    assert hold["status"] == "active"

    token = await factory.player_token(keys, "alice")
    problem(await client.post(f"/v1/shop/orders/{order['id']}/confirm", headers=idem(token)), 403,
            "caller_not_allowed")
    problem(await client.post(f"/v1/shop/orders/{order['id']}/confirm", headers=keys.server), 400,
            "idempotency_key_required")
    resp = await client.post(f"/v1/shop/orders/{order['id']}/confirm", headers=idem(keys.server, "confirm-1"))
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "completed" and resp.json()["balance"] == 600
    assert await inventory(client, keys) == {"session": 1}
    again = await client.post(f"/v1/shop/orders/{order['id']}/confirm", headers=idem(keys.server, "confirm-1"))
    assert again.content == resp.content
    body = problem(await client.post(f"/v1/shop/orders/{order['id']}/confirm", headers=idem(keys.server)), 409,
                   "order_not_pending")
    assert body["order_status"] == "completed"
    problem(await client.post(f"/v1/shop/orders/{order['id']}/cancel", headers=idem(keys.server)), 409,
            "order_not_pending")
    problem(await client.post("/v1/shop/orders/ord_01M7XNXZARKZE4ZF4FW507NWSS/confirm", headers=idem(keys.server)),
            404, "order_not_found")
    assert await verify(runtime, keys.app_id) == []


async def test_external_order_cancelled_gives_the_points_back(client: httpx.AsyncClient, factory: Factory,
                                                              runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys, items={"session": {"name": "Session", "external": True, "stock": 1,
                                                     "price": {"currency": "points", "amount": 400}}})
    await grant(client, keys, "alice", 1000)
    order = (await buy(client, keys.server, "session")).json()
    problem(await buy(client, keys.server, "session", player="bob"), 409, "out_of_stock")
    resp = await client.post(f"/v1/shop/orders/{order['id']}/cancel", headers=idem(keys.server),
                             json={"reason": "out of slots"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "cancelled" and resp.json()["reason"] == "out of slots"
    assert await balance(client, keys) == 1000 and await inventory(client, keys) == {}
    # The stock reserved by the cancelled order is free again.
    await grant(client, keys, "bob", 400)
    assert (await buy(client, keys.server, "session", player="bob")).json()["status"] == "pending"
    assert await verify(runtime, keys.app_id) == []


@pytest.mark.parametrize("phase", ["paid", "granted", "completed"])
async def test_a_failed_confirmation_leaves_the_order_pending(client: httpx.AsyncClient, factory: Factory,
                                                              runtime: Runtime, phase: str) -> None:
    keys = await factory.app()
    await configure(client, keys)
    await grant(client, keys, "alice", 1000)
    order = (await buy(client, keys.server, "session")).json()
    before = await snapshot(runtime, keys.app_id)
    with pytest.raises(Injected):
        async with unit_of_work(runtime.sessions) as session:
            await shop.confirm_order(session, runtime.clock, keys.app_id, order["id"], on_phase=fail_after(phase))
    assert await snapshot(runtime, keys.app_id) == before
    resp = await client.post(f"/v1/shop/orders/{order['id']}/confirm", headers=idem(keys.server))
    assert resp.json()["status"] == "completed" and await inventory(client, keys) == {"session": 1}


@pytest.mark.parametrize("phase", ["released", "unreserved", "cancelled"])
async def test_a_failed_cancellation_leaves_the_order_pending(client: httpx.AsyncClient, factory: Factory,
                                                              runtime: Runtime, phase: str) -> None:
    keys = await factory.app()
    await configure(client, keys)
    await grant(client, keys, "alice", 1000)
    order = (await buy(client, keys.server, "session")).json()
    before = await snapshot(runtime, keys.app_id)
    with pytest.raises(Injected):
        async with unit_of_work(runtime.sessions) as session:
            await shop.cancel_order(session, runtime.clock, keys.app_id, order["id"], "no", on_phase=fail_after(phase))
    assert await snapshot(runtime, keys.app_id) == before
    assert await balance(client, keys) == 600


@pytest.mark.parametrize("ledger_first", [False, True])
async def test_an_expired_hold_expires_the_order(client: httpx.AsyncClient, factory: Factory, runtime: Runtime,
                                                 clock: ManualClock, ledger_first: bool) -> None:
    keys = await factory.app()
    await configure(client, keys)
    await grant(client, keys, "alice", 1000)
    order = (await buy(client, keys.server, "session")).json()
    clock.advance(seconds=121)
    # Past its hold: the shop can no longer confirm it, even before the jobs ran.
    problem(await client.post(f"/v1/shop/orders/{order['id']}/confirm", headers=idem(keys.server)), 409,
            "order_expired")
    # The jobs run over every app (other tests' orders share the PostgreSQL database): count at least ours.
    async with unit_of_work(runtime.sessions) as session:
        if ledger_first:  # the ledger's own job may release the hold before the shop's job runs
            assert await ledger.release_expired_holds(session, runtime.clock) >= 1
        assert await shop.expire_orders(session, runtime.clock) >= 1
    async with unit_of_work(runtime.sessions) as session:
        await shop.expire_orders(session, runtime.clock)  # a second run finds ours settled
    got = (await client.get(f"/v1/shop/orders/{order['id']}", headers=keys.server)).json()
    assert got["status"] == "expired" and got["balance"] == 1000
    hold = (await client.get(f"/v1/ledger/holds/{order['hold_id']}", headers=keys.server)).json()
    assert hold["status"] == "released"
    problem(await client.post(f"/v1/shop/orders/{order['id']}/confirm", headers=idem(keys.server)), 409,
            "order_not_pending")
    assert await inventory(client, keys) == {} and await verify(runtime, keys.app_id) == []
