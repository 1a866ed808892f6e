"""Buying items with points: two phases over the ledger's holds, stock and limits, refusals."""

from __future__ import annotations

import asyncio

import httpx

from questline.kit.runtime import Runtime
from tests.conftest import Factory, problem
from tests.ledger.helpers import verify
from tests.shop.helpers import balance, buy, configure, grant, idem, inventory, snapshot


async def test_a_purchase_holds_then_spends_and_grants(client: httpx.AsyncClient, factory: Factory,
                                                       runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys)
    await grant(client, keys, "alice", 1000)
    token = await factory.player_token(keys, "alice")

    resp = await buy(client, token, "sword", 2, key="order-1")
    assert resp.status_code == 201, resp.text
    order = resp.json()
    assert order["status"] == "completed" and order["amount"] == 600 and order["balance"] == 400
    assert order["settled_at"] and not order["external"]
    assert await balance(client, keys) == 400 and await inventory(client, keys) == {"sword": 2}
    hold = (await client.get(f"/v1/ledger/holds/{order['hold_id']}", headers=keys.server)).json()
    assert hold["status"] == "committed" and hold["amount"] == 600
    # A retried request replays its reply and buys nothing more.
    again = await buy(client, token, "sword", 2, key="order-1")
    assert again.status_code == 201 and again.content == resp.content
    assert await balance(client, keys) == 400
    listed = (await client.get("/v1/players/alice/shop/orders", headers=token)).json()
    assert [o["id"] for o in listed["items"]] == [order["id"]]
    got = await client.get(f"/v1/shop/orders/{order['id']}", headers=keys.server)
    assert got.json()["status"] == "completed"
    history = (await client.get("/v1/players/alice/transactions", headers=token)).json()["items"]
    assert (history[0]["kind"], history[0]["amount"]) == ("hold", -600)  # its commit moves holds -> sink
    assert await verify(runtime, keys.app_id) == []


async def test_refused_purchases_change_nothing(client: httpx.AsyncClient, factory: Factory,
                                                runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys)
    await grant(client, keys, "alice", 299)
    token = await factory.player_token(keys, "alice")
    before = await snapshot(runtime, keys.app_id)

    body = problem(await buy(client, token, "sword"), 409, "insufficient_funds")
    assert body["shortfall"] == 1
    problem(await buy(client, token, "trophy"), 409, "not_for_sale")
    problem(await buy(client, token, "dragon"), 404, "item_not_found")
    problem(await buy(client, token, "potion", 3), 409, "purchase_limit_reached")
    problem(await buy(client, token, "sword", player="bob"), 404)
    problem(await buy(client, keys.client, "sword"), 403, "caller_not_allowed")
    resp = await client.post("/v1/players/alice/shop/orders", headers=token, json={"item": "sword"})
    problem(resp, 400, "idempotency_key_required")
    problem(await buy(client, token, "sword", 0), 422, "validation_failed")
    assert await snapshot(runtime, keys.app_id) == before


async def test_stock_and_per_player_limits_hold_under_racing_buyers(client: httpx.AsyncClient, factory: Factory,
                                                                    runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys)
    players = [f"p{i}" for i in range(6)]
    for player in players:
        await grant(client, keys, player, 1000)
    replies = await asyncio.gather(*(buy(client, keys.server, "potion", player=p) for p in players))
    ok = [r for r in replies if r.status_code == 201]
    assert len(ok) == 3, [r.text for r in replies]
    for reply in replies:
        if reply.status_code != 201:
            problem(reply, 409, "out_of_stock")
    catalog = {i["key"]: i for i in (await client.get("/v1/shop/items", headers=keys.client)).json()}
    assert catalog["potion"]["remaining"] == 0 and "trophy" not in catalog
    assert sum([await balance(client, keys, p) for p in players]) == 6000 - 150

    keys2 = await factory.app()
    await configure(client, keys2, items={"potion": {"name": "Potion", "price": {"currency": "points", "amount": 50},
                                                     "max_per_player": 2}})
    await grant(client, keys2, "alice", 1000)
    replies = await asyncio.gather(*(buy(client, keys2.server, "potion") for _ in range(5)))
    assert sorted(r.status_code for r in replies) == [201, 201, 409, 409, 409], [r.text for r in replies]
    assert await inventory(client, keys2) == {"potion": 2} and await balance(client, keys2) == 900
    assert await verify(runtime, keys.app_id) == [] and await verify(runtime, keys2.app_id) == []


async def test_a_purchase_racing_another_spend_ends_consistent(client: httpx.AsyncClient, factory: Factory,
                                                                runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys)
    outcomes = set()
    # Enough rounds that, without the purchase locking its three accounts up front, PostgreSQL
    # reliably finds a deadlock between the hold-then-commit and the spend.
    for round_ in range(12):
        player = f"racer{round_}"
        await grant(client, keys, player, 500)
        spend = client.post("/v1/ledger/spends", headers=idem(keys.server),
                            json={"player_id": player, "currency": "points", "amount": 300})
        purchase = buy(client, keys.server, "sword", player=player)
        spent, bought = await asyncio.gather(spend, purchase) if round_ % 2 else \
            reversed(await asyncio.gather(purchase, spend))
        assert sorted([spent.status_code, bought.status_code]) == [201, 409], (spent.text, bought.text)
        assert await balance(client, keys, player) == 200
        orders = (await client.get(f"/v1/players/{player}/shop/orders", headers=keys.server)).json()["items"]
        if bought.status_code == 201:
            outcomes.add("purchase")
            assert await inventory(client, keys, player) == {"sword": 1}
            assert [o["status"] for o in orders] == ["completed"]
        else:
            outcomes.add("spend")
            problem(bought, 409, "insufficient_funds")
            assert await inventory(client, keys, player) == {} and orders == []
    assert await verify(runtime, keys.app_id) == []
    state = await snapshot(runtime, keys.app_id)
    assert all(status != "active" for _, status, _ in state["holds"])


async def test_items_are_validated(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await configure(client, keys)
    resp = await client.put("/v1/definitions/item/gem", headers=keys.server,
                            json={"name": "Gem", "price": {"currency": "gems", "amount": 5}})
    assert "unknown currency 'gems'" in problem(resp, 422, "invalid_definition")["detail"]
    resp = await client.put("/v1/definitions/item/gem", headers=keys.server,
                            json={"name": "Gem", "price": {"currency": "points", "amount": 0}})
    problem(resp, 422, "invalid_definition")
    resp = await client.put("/v1/definitions/item/gem", headers=keys.server, json={"name": "Gem", "stock": 0})
    problem(resp, 422, "invalid_definition")


async def test_consuming_items(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await configure(client, keys)
    await grant(client, keys, "alice", 1000)
    assert (await buy(client, keys.server, "sword", 3)).status_code == 201
    url = "/v1/players/alice/inventory/sword/consume"
    resp = await client.post(url, headers=idem(keys.server, "use-1"), json={"quantity": 2, "reason": "forged"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["items"][0]["quantity"] == 1
    again = await client.post(url, headers=idem(keys.server, "use-1"), json={"quantity": 2, "reason": "forged"})
    assert again.content == resp.content
    body = problem(await client.post(url, headers=idem(keys.server), json={"quantity": 2}), 409, "insufficient_items")
    assert body["current"] == 1
    problem(await client.post("/v1/players/alice/inventory/dragon/consume", headers=idem(keys.server), json={}),
            404, "item_not_found")
    token = await factory.player_token(keys, "alice")
    problem(await client.post(url, headers=idem(token), json={}), 403, "caller_not_allowed")
    assert await inventory(client, keys) == {"sword": 1}
