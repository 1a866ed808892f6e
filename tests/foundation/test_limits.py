"""Rate limits per key, per player and per login: 429 rate_limited with Retry-After."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from questline.kit.settings import Settings
from tests.conftest import Factory, problem
from tests.foundation.helpers import from_address


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={
        "rate_limit_per_key": "6/minute", "rate_limit_per_player": "2/minute", "rate_limit_login": "2/minute",
    })


async def test_each_key_has_its_own_budget(client: httpx.AsyncClient, factory: Factory, settings: Settings) -> None:
    a, b = await factory.app(), await factory.app()
    for _ in range(6):
        assert (await client.get("/v1/players", headers=a.server)).status_code == 200
    refused = await client.get("/v1/players", headers=a.server)
    body = problem(refused, 429, "rate_limited")
    assert "6/minute" in body["detail"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # Another app's key, and the app's client key, each have their own budget.
    assert (await client.get("/v1/players", headers=b.server)).status_code == 200
    assert (await client.get("/v1/players", headers=a.client)).status_code == 403  # counted, but not refused for rate

    if settings.redis_url:  # scaled out, the counters live in Redis under the engine's namespace
        redis = Redis.from_url(settings.redis_url)
        try:
            stored = [k async for k in redis.scan_iter(match=f"{settings.redis_namespace}:limits*", count=1000)]
        finally:
            await redis.aclose()
        assert stored


async def test_each_player_has_its_own_budget(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    alice = await factory.player_token(keys, "alice")
    bob = await factory.player_token(keys, "bob")
    for _ in range(2):
        assert (await client.get("/v1/players/alice/account", headers=alice)).status_code == 200
    refused = await client.get("/v1/players/alice/account", headers=alice)
    problem(refused, 429, "rate_limited")
    assert int(refused.headers["retry-after"]) >= 1
    assert (await client.get("/v1/players/bob/account", headers=bob)).status_code == 200
    # The server key is not held to alice's budget.
    assert (await client.get("/v1/players/alice/account", headers=keys.server)).status_code == 200


async def test_sign_in_attempts_are_limited_per_source_address(engine: FastAPI, factory: Factory) -> None:
    """``rate_limit_login`` brakes one address trying many accounts; other addresses are not slowed."""
    keys = await factory.app()
    first, second = await factory.admin(keys.org_id), await factory.admin(keys.org_id)
    async with from_address(engine, "203.0.113.7") as guesser, from_address(engine, "198.51.100.1") as office:
        for admin in (first, second):
            wrong = {"email": admin.email, "password": "not the password"}
            problem(await guesser.post("/v1/auth/login", json=wrong), 401, "invalid_credentials")
        refused = await guesser.post("/v1/auth/login", json={"email": first.email, "password": first.password})
        assert "this address" in problem(refused, 429, "rate_limited")["detail"]
        assert int(refused.headers["retry-after"]) >= 1
        right = {"email": first.email.upper(), "password": first.password}  # the same account, however spelled
        assert (await office.post("/v1/auth/login", json=right)).status_code == 200


async def test_every_answer_says_how_much_of_the_budget_is_left(client: httpx.AsyncClient, factory: Factory) -> None:
    """IETF HTTPAPI ``RateLimit-Policy`` and ``RateLimit`` on normal answers, not only ``Retry-After`` on 429."""
    keys = await factory.app()
    first = await client.get("/v1/players", headers=keys.server)
    assert first.status_code == 200
    assert first.headers["ratelimit-policy"] == '"caller";q=6;w=60'
    assert first.headers["ratelimit"] == '"caller";r=5;t=10'
    for left in (4, 3, 2, 1, 0):
        resp = await client.get("/v1/players", headers=keys.server)
        assert resp.status_code == 200
        remaining = int(resp.headers["ratelimit"].split(";r=")[1].split(";")[0])
        assert remaining == left
    refused = await client.get("/v1/players", headers=keys.server)
    problem(refused, 429, "rate_limited")
    assert refused.headers["ratelimit"].startswith('"caller";r=0;t=')
    assert 1 <= int(refused.headers["retry-after"]) <= 10

    # A player token meets two limits (its key's and its own): both are listed.
    other = await factory.app()
    alice = await factory.player_token(other, "alice")
    resp = await client.get("/v1/players/alice/account", headers=alice)
    assert resp.headers["ratelimit-policy"] == '"caller";q=6;w=60, "player";q=2;w=60'
    assert resp.headers["ratelimit"].endswith('"player";r=1;t=30')
    # Routes without limits (liveness) carry none.
    assert "ratelimit" not in (await client.get("/healthz")).headers
