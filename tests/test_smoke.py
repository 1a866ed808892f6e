from __future__ import annotations

import httpx

from tests.conftest import Factory, problem


async def test_player_token_reaches_only_its_player(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    alice = await factory.player_token(keys, "alice")
    await factory.player_token(keys, "bob")

    own = await client.get("/v1/players/alice/account", headers=alice)
    assert own.status_code == 200 and own.json()["player_id"] == "alice"
    problem(await client.get("/v1/players/bob/account", headers=alice), 404)
    problem(await client.get("/v1/players", headers=alice), 403, "caller_not_allowed")


async def test_idempotent_put_replays_and_rejects_reuse(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    headers = {**keys.server, "Idempotency-Key": "k1"}
    first = await client.post("/v1/players/carol/tokens", headers=headers, json={"ttl_seconds": 600})
    again = await client.post("/v1/players/carol/tokens", headers=headers, json={"ttl_seconds": 600})
    assert first.status_code == again.status_code == 201
    assert first.content == again.content
    assert again.headers.get("idempotent-replayed") == "true"
    problem(await client.post("/v1/players/carol/tokens", headers=headers, json={"ttl_seconds": 700}), 422,
            "idempotency_key_reused")
