from __future__ import annotations

import httpx

from tests.conftest import Factory, problem


async def test_currencies_are_created_renamed_and_listed_per_app(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    created = await client.put("/v1/currencies/points", headers=keys.server, json={"name": "Points"})
    assert created.status_code == 201 and created.json()["code"] == "points"
    renamed = await client.put("/v1/currencies/points", headers=keys.server, json={"name": "XP Points"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "XP Points"
    assert (await client.put("/v1/currencies/gems", headers=keys.server, json={"name": "Gems"})).status_code == 201

    listed = (await client.get("/v1/currencies", headers=keys.client)).json()
    assert [(c["code"], c["name"]) for c in listed] == [("gems", "Gems"), ("points", "XP Points")]
    other = await factory.app()
    assert (await client.get("/v1/currencies", headers=other.server)).json() == []

    problem(await client.put("/v1/currencies/Points", headers=keys.server, json={"name": "x"}), 422,
            "validation_failed")
    problem(await client.put("/v1/currencies/1abc", headers=keys.server, json={"name": "x"}), 422,
            "validation_failed")
    problem(await client.put("/v1/currencies/" + "a" * 33, headers=keys.server, json={"name": "x"}), 422,
            "validation_failed")
    problem(await client.put("/v1/currencies/coins", headers=keys.server, json={"name": ""}), 422,
            "validation_failed")
    problem(await client.put("/v1/currencies/coins", headers=keys.client, json={"name": "Coins"}), 403,
            "caller_not_allowed")
    player = await factory.player_token(keys, "pat")
    problem(await client.put("/v1/currencies/coins", headers=player, json={"name": "Coins"}), 403,
            "caller_not_allowed")
