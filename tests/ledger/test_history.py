from __future__ import annotations

import httpx

from tests.conftest import Factory, problem
from tests.ledger.helpers import currency, grant, spend


async def test_history_pages_newest_first_with_a_summary(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await currency(client, keys)
    await currency(client, keys, "gems", "Gems")
    for i in range(1, 6):
        reply = await grant(client, keys, "alice", 100 * i, source="level_up", description=f"level {i}")
        assert reply.status_code == 201
    assert (await spend(client, keys, "alice", 250, source="purchase")).status_code == 201
    assert (await grant(client, keys, "alice", 3, code="gems")).status_code == 201
    assert (await grant(client, keys, "bob", 1)).status_code == 201  # someone else's, never listed

    seen, cursor = [], None
    while True:
        params: dict[str, str | int] = {"limit": 3, "currency": "points"}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/players/alice/transactions", headers=keys.server, params=params)).json()
        assert page["total"] == 6
        assert page["summary"] == {"points": {"total_earned": 1500, "total_spent": 250, "net": 1250}}
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [e["amount"] for e in seen] == [-250, 500, 400, 300, 200, 100]
    assert seen[0]["balance_before"] == 1500 and seen[0]["balance_after"] == 1250 and seen[0]["kind"] == "debit"
    assert seen[1]["description"] == "level 5" and seen[1]["source"] == "level_up"
    assert all(e["balance_after"] == e["balance_before"] + e["amount"] for e in seen)

    everything = (await client.get("/v1/players/alice/transactions", headers=keys.server)).json()
    assert everything["total"] == 7 and everything["items"][0]["currency"] == "gems"
    assert set(everything["summary"]) == {"gems", "points"}

    player = await factory.player_token(keys, "alice")
    own = await client.get("/v1/players/alice/transactions", headers=player, params={"limit": 1})
    assert own.status_code == 200 and len(own.json()["items"]) == 1 and own.json()["next_cursor"]


async def test_history_refuses_bad_queries(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await currency(client, keys)
    await grant(client, keys, "carol", 5)
    url = "/v1/players/carol/transactions"
    problem(await client.get(url, headers=keys.server, params={"currency": "gems"}), 422, "unknown_currency")
    problem(await client.get(url, headers=keys.server, params={"currency": "Bad!"}), 422, "validation_failed")
    problem(await client.get(url, headers=keys.server, params={"limit": 0}), 422, "validation_failed")
    problem(await client.get(url, headers=keys.server, params={"limit": 1000}), 422, "validation_failed")
    bad = await client.get(url, headers=keys.server, params={"cursor": "not-a-cursor"})
    assert bad.status_code in (400, 422) and bad.json()["code"] == "invalid_cursor"
    problem(await client.get("/v1/players/nobody/transactions", headers=keys.server), 404, "player_not_found")
