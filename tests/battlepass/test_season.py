"""Seasons as definitions, pass XP from events, tiers and the progress a player sees."""

from __future__ import annotations

import copy

import httpx

from questline.kit.runtime import Runtime
from tests.battlepass.helpers import SEASON, configure, progress, won
from tests.conftest import Factory, problem
from tests.pipeline.helpers import send, settle


async def test_pass_xp_from_rules_gives_tiers_within_daily_limits(client: httpx.AsyncClient, factory: Factory,
                                                                   runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys)
    # 60 + 60 + 30 (daily limit 150) from "win", plus 40 from "big-win" for the 1200 score.
    resp = await send(client, keys, [won(1, score=1200), won(2), won(3)])
    assert resp.status_code == 202, resp.text
    await settle(runtime)

    got = await progress(client, keys)
    assert got["season"] == "s1" and got["featured"] and got["active"] and got["total_tiers"] == 5
    assert got["xp"] == 190 and got["current_tier"] == 1
    assert got["xp_in_tier"] == 90 and got["xp_for_next_tier"] == 100
    assert not got["has_premium"]
    assert got["claimable"] == {"free": [1], "premium": []}
    free = {r["tier"]: r for r in got["free_rewards"]}
    assert free[1]["reached"] and free[1]["claimable"] and not free[1]["claimed"]
    assert not free[2]["reached"] and not free[2]["claimable"]
    premium = {r["tier"]: r for r in got["premium_rewards"]}
    assert premium[1]["locked"] and premium[1]["reached"] and not premium[1]["claimable"]

    # The next local day has a fresh limit; events outside the season earn nothing.
    await send(client, keys, [won(4, ts="2026-03-11T09:00:00Z"), won(5, ts="2026-04-02T09:00:00Z"),
                              won(6, ts="2026-02-20T09:00:00Z")])
    await settle(runtime)
    got = await progress(client, keys)
    assert got["xp"] == 250 and got["current_tier"] == 2 and got["claimable"]["free"] == [1, 2]


async def test_tier_crossings_are_announced(client: httpx.AsyncClient, factory: Factory,
                                                                    runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys)
    await send(client, keys, [won(1, score=1200), won(2)])
    await settle(runtime)
    resp = await client.get("/v1/outbox", headers=keys.server, params={"limit": 200})
    assert resp.status_code == 200, resp.text
    effects = [(e["type"], e["data"]) for e in resp.json()["items"] if e["type"].startswith("battle_pass.")]
    assert ("battle_pass.tier_reached", {"season": "s1", "from": 0, "to": 1}) in effects
    assert sum(e[1]["amount"] for e in effects if e[0] == "battle_pass.xp_earned") == 160


async def test_a_curve_sets_the_xp_of_each_tier(client: httpx.AsyncClient, factory: Factory,
                                                runtime: Runtime) -> None:
    keys = await factory.app()
    season = {**SEASON, "curve": {"type": "table", "thresholds": [50, 150, 300, 500, 800]}}
    await configure(client, keys, season=season, rules={"win": {"event_type": "match.won", "amount": 60}})
    await send(client, keys, [won(i) for i in range(3)])
    await settle(runtime)
    got = await progress(client, keys)
    assert got["xp"] == 180 and got["current_tier"] == 2
    assert got["xp_in_tier"] == 30 and got["xp_for_next_tier"] == 150


async def test_invalid_seasons_are_refused(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await configure(client, keys)
    put = "/v1/definitions/battle_pass/s2"
    bad_dates = {**SEASON, "featured": False, "ends_at": "2026-02-01T00:00:00Z"}
    assert "ends_at must be after" in problem(await client.put(put, headers=keys.server, json=bad_dates),
                                              422, "invalid_definition")["detail"]
    outside = copy.deepcopy({**SEASON, "featured": False})
    outside["free"]["9"] = {"badge": "x"}
    problem(await client.put(put, headers=keys.server, json=outside), 422, "invalid_definition")
    unknown_item = copy.deepcopy({**SEASON, "featured": False})
    unknown_item["free"]["1"] = {"items": [{"item": "dragon"}]}
    body = problem(await client.put(put, headers=keys.server, json=unknown_item), 422, "invalid_definition")
    assert "unknown item 'dragon'" in body["detail"]
    # A badge is an achievement's key: an unknown one is refused when the season is saved.
    unknown_badge = copy.deepcopy({**SEASON, "featured": False})
    unknown_badge["premium"]["3"]["badge"] = "golden_trophy"
    body = problem(await client.put(put, headers=keys.server, json=unknown_badge), 422, "invalid_definition")
    assert "unknown achievement 'golden_trophy'" in body["detail"]
    unknown_currency = {**SEASON, "featured": False, "premium_price": {"currency": "gems", "amount": 5}}
    body = problem(await client.put(put, headers=keys.server, json=unknown_currency), 422, "invalid_definition")
    assert "gems" in body["detail"]
    empty = copy.deepcopy({**SEASON, "featured": False})
    empty["free"]["1"] = {}
    problem(await client.put(put, headers=keys.server, json=empty), 422, "invalid_definition")
    rule = {"event_type": "match.won", "amount": 5, "season": "nope"}
    problem(await client.put("/v1/definitions/pass_xp_rule/r", headers=keys.server, json=rule), 422,
            "invalid_definition")


async def test_one_featured_season_per_app(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await configure(client, keys)
    second = {**SEASON, "name": "Autumn", "starts_at": "2026-04-01T00:00:00Z", "ends_at": "2026-05-01T00:00:00Z"}
    body = problem(await client.put("/v1/definitions/battle_pass/s2", headers=keys.server, json=second),
                   422, "invalid_definition")
    assert "'s1' is already featured" in body["detail"]
    # Re-saving the featured season itself is fine; moving the flag takes unfeaturing first.
    resp = await client.put("/v1/definitions/battle_pass/s1", headers=keys.server, json={**SEASON, "tiers": 6})
    assert resp.status_code == 200, resp.text
    resp = await client.put("/v1/definitions/battle_pass/s1", headers=keys.server, json={**SEASON, "featured": False})
    assert resp.status_code == 200, resp.text
    problem(await client.get("/v1/players/alice/battle-pass", headers=keys.server), 404)
    resp = await client.put("/v1/definitions/battle_pass/s2", headers=keys.server, json=second)
    assert resp.status_code == 201, resp.text
    seasons = (await client.get("/v1/battle-passes", headers=keys.client)).json()
    assert [(s["season"], s["featured"]) for s in seasons] == [("s1", False), ("s2", True)]


async def test_progress_of_unknown_players_and_seasons(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await configure(client, keys)
    problem(await client.get("/v1/players/ghost/battle-pass", headers=keys.server), 404, "player_not_found")
    assert (await client.put("/v1/players/alice/account", headers=keys.server, json={})).status_code in (200, 201)
    problem(await client.get("/v1/players/alice/battle-pass/nope", headers=keys.server), 404, "season_not_found")
    got = (await client.get("/v1/players/alice/battle-pass/s1", headers=keys.server)).json()
    assert got["current_tier"] == 0 and got["xp"] == 0 and got["xp_for_next_tier"] == 100
    token = await factory.player_token(keys, "bob")
    problem(await client.get("/v1/players/alice/battle-pass", headers=token), 404)


async def test_the_featured_tier_is_a_metric_for_other_mechanics(client: httpx.AsyncClient, factory: Factory,
                                                                  runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys)
    bundle = {"xp_track": {"xp": {}},
              "xp_rule": {"tier-bonus": {"track": "xp", "event_type": "match.won", "amount": 5,
                                         "filter": {"metric": "battle_pass.tier", "op": "gte", "value": 1}}}}
    resp = await client.post("/v1/definitions:bulk", headers=keys.server, json={"definitions": bundle})
    assert resp.status_code == 200, resp.text
    # Later mechanics see the tier after earlier events: the first win reaches tier 1, the next two earn the bonus.
    await send(client, keys, [won(1, score=1200), won(2), won(3)])
    await settle(runtime)
    profile = (await client.get("/v1/players/alice", headers=keys.server)).json()
    assert profile["levels"]["xp"]["total_xp"] == 10
