"""Gating inside the mechanics: challenges, leaderboards, competitions and pass XP count and admit
only the players a requirement lets in, judged per event with the state earlier events left."""

from __future__ import annotations

from typing import Any

import httpx

from questline.kit.clock import ManualClock
from questline.kit.runtime import Runtime
from tests.battlepass.helpers import SEASON
from tests.battlepass.helpers import configure as configure_pass
from tests.communities.helpers import create, idem, join, points
from tests.competitions.helpers import competition, fund, tick, trade, trades
from tests.competitions.helpers import create as create_competition
from tests.competitions.helpers import join as enter
from tests.conftest import START, AppKeys, Factory, problem
from tests.leaderboards.helpers import board, ranks
from tests.pipeline.helpers import send, settle

T0 = "2026-03-10T12:00:00Z"
T1 = "2026-03-10T12:01:00Z"
T2 = "2026-03-10T12:02:00Z"

CONFIG: dict[str, Any] = {
    "xp_track": {"xp": {"curve": {"type": "linear", "base": 100}}},
    "xp_rule": {"train-xp": {"track": "xp", "event_type": "training.done", "amount": 100}},
    "challenge": {
        "basics": {"name": "Basics", "objectives": [{"type": "count", "event_type": "training.done", "target": 1}]},
        "guild-raid": {"name": "Guild raid", "gating": {"communities": ["guild"]},
                       "objectives": [{"type": "count", "event_type": "raid.cleared", "target": 2}],
                       "rewards": {"points": {"currency": "points", "amount": 50}}},
        "after-basics": {"name": "After the basics", "gating": {"completed_challenges": ["basics"]},
                         "objectives": [{"type": "count", "event_type": "raid.cleared", "target": 1}]},
        "guild-trial": {"name": "Guild trial", "completion_mode": "claim", "gating": {"whitelist": ["ana"]},
                        "objectives": [{"type": "count", "event_type": "raid.cleared", "target": 1}]},
    },
    "achievement": {
        "graduate": {"name": "Graduate", "criteria": {"metric": "challenge.after-basics.completed", "op": "gte",
                                                      "value": 1}},
    },
    "leaderboard": {
        "guild-raids": {"event_type": "raid.cleared", "operator": "increment", "gating": {"communities": ["guild"]}},
        "veteran-raids": {"event_type": "raid.cleared", "operator": "increment",
                          "gating": {"min_level": {"track": "xp", "level": 2}}},
        "all-raids": {"event_type": "raid.cleared", "operator": "increment"},
    },
}


def ev(event_id: str, player: str, type_: str, ts: str = T0) -> dict[str, Any]:
    return {"id": event_id, "player_id": player, "type": type_, "timestamp": ts}


async def setup(client: httpx.AsyncClient, keys: AppKeys) -> None:
    await points(client, keys)
    await create(client, keys.server, slug="guild")
    resp = await client.post("/v1/definitions:bulk", headers=keys.server, json={"definitions": CONFIG})
    assert resp.status_code == 200, resp.text
    assert (await join(client, keys.server, "guild", player_id="ana")).status_code == 201


async def process(client: httpx.AsyncClient, keys: AppKeys, runtime: Runtime, events: list[dict[str, Any]]) -> None:
    resp = await send(client, keys, events)
    assert resp.status_code == 202 and not resp.json()["rejected"], resp.text
    await settle(runtime)


async def challenge_of(client: httpx.AsyncClient, keys: AppKeys, player: str, key: str) -> dict[str, Any] | None:
    resp = await client.get(f"/v1/players/{player}/challenges", headers=keys.server,
                            params={"include_locked": "true"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    found = [c for group in ("daily", "weekly", "monthly", "special") for c in body[group] if c["key"] == key]
    return found[0] if found else None


async def test_a_gated_challenge_counts_only_players_inside_the_gate(client: httpx.AsyncClient, factory: Factory,
                                                                    runtime: Runtime) -> None:
    keys = await factory.app()
    await setup(client, keys)
    await process(client, keys, runtime, [ev(f"{p}-{i}", p, "raid.cleared") for p in ("ana", "ben") for i in (1, 2)])

    ana = await challenge_of(client, keys, "ana", "guild-raid")
    assert ana is not None and ana["status"] == "completed"
    ben = await challenge_of(client, keys, "ben", "guild-raid")
    assert ben is not None and ben["status"] == "locked" and ben["progress_percent"] == 0
    assert ben["locked_reasons"] == ["an active member of one of: guild"]
    resp = await client.get("/v1/players/ben/challenges", headers=keys.server)
    assert "guild-raid" not in {c["key"] for c in resp.json()["special"]}
    balances = (await client.get("/v1/players/ana/balances", headers=keys.server)).json()["balances"]
    assert [b["balance"] for b in balances if b["currency"] == "points"] == [50]
    assert (await client.get("/v1/players/ben/balances", headers=keys.server)).status_code in (200, 404)

    # Once Ben joins, his later events count; the earlier ones stay uncounted.
    assert (await join(client, keys.server, "guild", player_id="ben")).status_code == 201
    await process(client, keys, runtime, [ev("ben-3", "ben", "raid.cleared", T1)])
    ben = await challenge_of(client, keys, "ben", "guild-raid")
    assert ben is not None and ben["status"] == "in_progress" and ben["progress_percent"] == 50


async def test_gates_see_what_earlier_events_of_the_same_batch_did(client: httpx.AsyncClient, factory: Factory,
                                                                  runtime: Runtime) -> None:
    keys = await factory.app()
    await setup(client, keys)
    # One batch: Cai raids before training (neither gate open yet), trains (level 2, basics done), raids again.
    await process(client, keys, runtime, [ev("c1", "cai", "raid.cleared", T0), ev("c2", "cai", "training.done", T1),
                                          ev("c3", "cai", "raid.cleared", T2)])
    after = await challenge_of(client, keys, "cai", "after-basics")
    assert after is not None and after["status"] == "completed"
    veterans = await board(client, keys.server, "veteran-raids")
    assert ranks(veterans) == [(1, "cai", 1)]  # only the raid after the level-up
    assert ranks(await board(client, keys.server, "all-raids")) == [(1, "cai", 2)]
    # The per-challenge completion count is a metric other mechanics test too.
    held = (await client.get("/v1/players/cai/achievements", headers=keys.server)).json()["achievements"]
    assert [(a["key"], a["unlocked"]) for a in held] == [("graduate", True)]


async def test_a_gated_leaderboard_ranks_only_members(client: httpx.AsyncClient, factory: Factory,
                                                      runtime: Runtime) -> None:
    keys = await factory.app()
    await setup(client, keys)
    await process(client, keys, runtime, [ev("a1", "ana", "raid.cleared"), ev("b1", "ben", "raid.cleared"),
                                          ev("b2", "ben", "raid.cleared", T1)])
    assert ranks(await board(client, keys.server, "guild-raids")) == [(1, "ana", 1)]
    assert ranks(await board(client, keys.server, "all-raids")) == [(1, "ben", 2), (2, "ana", 1)]
    # Banned or left: no longer counted (the score already earned stays).
    resp = await client.post("/v1/communities/guild/members/ana/ban", headers=keys.server, json={"note": "cheat"})
    assert resp.status_code == 200, resp.text
    await process(client, keys, runtime, [ev("a2", "ana", "raid.cleared", T2)])
    assert ranks(await board(client, keys.server, "guild-raids")) == [(1, "ana", 1)]


async def test_a_gated_claim_is_refused(client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    await setup(client, keys)
    await process(client, keys, runtime, [ev("a1", "ana", "raid.cleared"), ev("b1", "ben", "raid.cleared")])
    ben = await factory.player_token(keys, "ben")
    body = problem(await client.post("/v1/players/ben/challenges/guild-trial/claim", headers=idem(ben), json={}),
                   403, "gated")
    assert body["unmet"] == ["not on the whitelist"]
    ana = await factory.player_token(keys, "ana")
    resp = await client.post("/v1/players/ana/challenges/guild-trial/claim", headers=idem(ana), json={})
    assert resp.status_code == 201, resp.text
    queue = (await client.get("/v1/challenge-claims", headers=keys.server, params={"status": "pending"})).json()
    assert [c["player_id"] for c in queue["items"]] == ["ana"]


async def test_competition_entry_is_gated(client: httpx.AsyncClient, factory: Factory, runtime: Runtime,
                                          clock: ManualClock) -> None:
    keys = await factory.app()
    await setup(client, keys)
    await fund(client, keys, {"ana": 500, "ben": 500})
    body = competition("2026-03-10T12:00:00Z", "2026-03-11T12:00:00Z",
                       entry={"fee": {"currency": "points", "amount": 100}, "gating": {"communities": ["guild"]}})
    cup = await create_competition(client, keys, body)
    await tick(runtime, clock, START)
    refused = problem(await enter(client, keys, cup["id"], "ben"), 403, "gated")
    assert refused["unmet"] == ["an active member of one of: guild"]
    assert (await enter(client, keys, cup["id"], "ana")).status_code == 201
    got = (await client.get(f"/v1/competitions/{cup['id']}", headers=keys.server)).json()
    assert got["participants"] == 1 and got["fees_collected"] == 100
    balances = {p: (await client.get(f"/v1/players/{p}/balances", headers=keys.server)).json()["balances"][0]
                ["balance"] for p in ("ana", "ben")}
    assert balances == {"ana": 400, "ben": 500}
    await trades(client, keys, runtime, [trade("ana", 10, T1), trade("ben", 99, T1)])
    standings = (await client.get(f"/v1/competitions/{cup['id']}/leaderboard", headers=keys.server)).json()
    assert [(e["player_id"], e["score"]) for e in standings["items"]] == [("ana", 10)]

    # A requirement naming something the app does not define is refused when the competition is made.
    bad = competition("2026-03-10T12:00:00Z", "2026-03-11T12:00:00Z",
                      entry={"gating": {"completed_challenges": ["nope"], "min_level": {"track": "zz", "level": 2}}})
    refused = problem(await client.post("/v1/competitions", headers=keys.server, json=bad), 422, "unknown_reference")
    assert refused["missing"] == ["challenge 'nope'", "xp_track 'zz'"]


async def test_a_gated_season_earns_pass_xp_only_inside_the_gate(client: httpx.AsyncClient, factory: Factory,
                                                                 runtime: Runtime) -> None:
    keys = await factory.app()
    await configure_pass(client, keys, season={**SEASON, "gating": {"whitelist": ["vip"]}})
    await send(client, keys, [{"id": f"w-{p}", "player_id": p, "type": "match.won", "data": {"score": 1200},
                               "timestamp": T0} for p in ("vip", "pleb")])
    await settle(runtime)
    vip = (await client.get("/v1/players/vip/battle-pass/s1", headers=keys.server)).json()
    pleb = (await client.get("/v1/players/pleb/battle-pass/s1", headers=keys.server)).json()
    assert vip["xp"] > 0 and pleb["xp"] == 0 and pleb["current_tier"] == 0


async def test_gating_in_definitions_is_validated(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await setup(client, keys)
    board_def = {"event_type": "raid.cleared", "gating": {"completed_challenges": ["nope"]}}
    body = problem(await client.put("/v1/definitions/leaderboard/x", headers=keys.server, json=board_def), 422,
                   "invalid_definition")
    assert "unknown challenge 'nope'" in body["detail"]
    challenge = {"name": "X", "gating": {"min_level": {"track": "nope", "level": 2}},
                 "objectives": [{"type": "count", "event_type": "raid.cleared", "target": 1}]}
    problem(await client.put("/v1/definitions/challenge/x", headers=keys.server, json=challenge), 422,
            "invalid_definition")
    challenge["gating"] = {"whitelist": ["not a player id!"]}
    problem(await client.put("/v1/definitions/challenge/x", headers=keys.server, json=challenge), 422,
            "invalid_definition")
