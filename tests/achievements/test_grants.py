"""Granted achievements: grant-only ones, the grant route, one reward whoever unlocks first, replays."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from questline.achievements.repository import stale_backfills
from questline.achievements.tasks import backfill_stale
from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from questline.pipeline.replay import start_replay
from questline.pipeline.worker import drain
from tests.achievements.test_achievements import WINS, mine, won
from tests.conftest import Factory, problem
from tests.streaks.helpers import balance, configure, outbox, play

ACHIEVEMENTS: dict[str, Any] = {
    # Grant-only: no criteria.
    "vip": {"name": "VIP", "description": "Granted by the team", "rarity": "legendary",
            "points_reward": {"currency": "points", "amount": 70}, "unlocks": {"title": "Insider"}},
    "beta": {"name": "Beta Tester", "is_secret": True},
    # With criteria: granted early, or unlocked by events.
    "first-win": {"name": "First Blood", "points_reward": {"currency": "points", "amount": 50},
                  "criteria": {"stat": "wins", "op": "gte", "value": 1}},
    # Reads a granted achievement's metric.
    "vip-winner": {"name": "VIP Winner", "criteria": {"all": [
        {"metric": "achievement.vip", "op": "gte", "value": 1}, {"stat": "wins", "op": "gte", "value": 1}]}},
}


def idem(headers: dict[str, str], key: str | None = None) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key or uuid.uuid4().hex}


async def grant(client: httpx.AsyncClient, headers: dict[str, str], player: str, key: str,
                idempotency_key: str | None = None, **body: Any) -> httpx.Response:
    return await client.post(f"/v1/players/{player}/achievements/{key}/grant", headers=idem(headers, idempotency_key),
                             json=body or None)


async def test_grant_only_achievements_are_granted_once_through_the_api(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys, stat=WINS, achievement=ACHIEVEMENTS)
    await play(client, keys, runtime, won("amy"), won("bob"))
    view = await mine(client, keys.server, "amy")
    vip = view["by_key"]["vip"]
    assert (vip["unlocked"], vip["progress"]) == (False, {"current": 0, "target": 1, "percent": 0})  # never by events
    assert view["by_key"]["first-win"]["unlocked"]

    resp = await grant(client, keys.server, "amy", "vip", idempotency_key="vip-amy", reason="met the team")
    assert resp.status_code == 201, resp.text
    out = resp.json()
    assert (out["key"], out["granted"], out["unlocked"], out["title_unlock"]) == ("vip", True, True, "Insider")
    assert out["progress"] == {"current": 1, "target": 1, "percent": 100} and out["rarity_percent"] == 50.0
    assert await balance(client, keys, "amy") == 50 + 70
    # A retry with the same key replays the reply; a new request finds it granted already.
    again = await grant(client, keys.server, "amy", "vip", idempotency_key="vip-amy", reason="met the team")
    assert (again.status_code, again.content) == (201, resp.content)
    resp = await grant(client, keys.server, "amy", "vip")
    assert resp.status_code == 200, resp.text
    assert resp.json()["granted"] is False and resp.json()["unlocked"]
    assert await balance(client, keys, "amy") == 120

    announced = [m for m in await outbox(client, keys, "achievement.unlocked") if m["data"]["achievement"] == "vip"]
    assert len(announced) == 1
    data = announced[0]["data"]
    assert (data["source"], data["granted_by"], data["reference"]["reason"]) == ("grant", "api", "met the team")
    assert data["reference"]["actor"].startswith("key:") and data["title_unlock"] == "Insider"
    credited = [m["data"] for m in await outbox(client, keys, "points.credited") if m["player_id"] == "amy"]
    assert sorted(c["amount"] for c in credited) == [50, 70]

    # An app admin may grant too (a secret one: shown unmasked once held); the catalog counts it.
    admin = await factory.admin(keys.org_id)
    resp = await grant(client, admin.headers(keys.app_id), "bob", "beta")
    assert resp.status_code == 201, resp.text
    assert (resp.json()["hidden"], resp.json()["name"]) == (False, "Beta Tester")
    catalog = {a["key"]: a for a in (await client.get("/v1/achievements", headers=keys.server)).json()["achievements"]}
    assert (catalog["vip"]["unlocked_count"], catalog["beta"]["unlocked_count"]) == (1, 1)

    # Refusals: unknown achievement, a player's own token, no Idempotency-Key, a bad reason.
    problem(await grant(client, keys.server, "amy", "nope"), 404, "achievement_not_found")
    token = await factory.player_token(keys, "amy")
    problem(await grant(client, token, "amy", "vip"), 403, "caller_not_allowed")
    problem(await client.post("/v1/players/amy/achievements/vip/grant", headers=keys.server), 400,
            "idempotency_key_required")
    problem(await grant(client, keys.server, "amy", "vip", reason=""), 422, "validation_failed")
    # A player the app has not seen yet is created (as ledger grants do).
    resp = await grant(client, keys.server, "newcomer", "vip")
    assert resp.status_code == 201 and await balance(client, keys, "newcomer") == 70


async def test_the_reward_is_paid_once_across_a_grant_and_criteria(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys, stat=WINS, achievement=ACHIEVEMENTS)
    # Granted before the player meets the criteria: paid now ...
    resp = await grant(client, keys.server, "cy", "first-win")
    assert resp.status_code == 201, resp.text
    assert await balance(client, keys, "cy") == 50
    # ... and the criteria holding later neither unlocks again nor pays again.
    await play(client, keys, runtime, won("cy"), won("cy"))
    assert await balance(client, keys, "cy") == 50
    assert len([m for m in await outbox(client, keys, "achievement.unlocked") if m["player_id"] == "cy"]) == 1
    # Unlocked by events first: a grant afterwards changes nothing.
    await play(client, keys, runtime, won("di"))
    resp = await grant(client, keys.server, "di", "first-win")
    assert (resp.status_code, resp.json()["granted"]) == (200, False)
    assert await balance(client, keys, "di") == 50
    # Racing grants of one achievement: one unlock, one payment.
    replies = await asyncio.gather(*(grant(client, keys.server, "ed", "vip") for _ in range(6)))
    assert sorted(r.status_code for r in replies) == [200] * 5 + [201], [r.text for r in replies]
    assert await balance(client, keys, "ed") == 70
    # Criteria see a granted achievement as the metric achievement.<key> (at the player's next event).
    await play(client, keys, runtime, won("ed"))
    assert (await mine(client, keys.server, "ed"))["by_key"]["vip-winner"]["unlocked"]


async def test_a_replay_keeps_grants_and_pays_nothing_again(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys, stat=WINS, achievement=ACHIEVEMENTS)
    await play(client, keys, runtime, won("fay"))
    assert (await grant(client, keys.server, "fay", "vip")).status_code == 201
    assert (await grant(client, keys.server, "gus", "first-win")).status_code == 201
    before = {p: await mine(client, keys.server, p) for p in ("fay", "gus")}
    balances = {p: await balance(client, keys, p) for p in ("fay", "gus")}
    assert balances == {"fay": 50 + 70, "gus": 50}
    announced = len(await outbox(client, keys, "achievement.unlocked"))

    await start_replay(runtime, keys.app_id)
    await drain(runtime)
    for player in ("fay", "gus"):
        after = await mine(client, keys.server, player)
        # vip-winner reads the grant: the replay knows grants, not when they came, so it sees the grant from
        # the start and fay's win, which came before the grant, now unlocks it (it has no reward).
        assert {k: (a["unlocked"], a["unlocked_at"]) for k, a in after["by_key"].items() if k != "vip-winner"} == \
            {k: (a["unlocked"], a["unlocked_at"]) for k, a in before[player]["by_key"].items() if k != "vip-winner"}
        assert await balance(client, keys, player) == balances[player]
    assert (await mine(client, keys.server, "fay"))["by_key"]["vip-winner"]["unlocked"]
    assert (await mine(client, keys.server, "fay"))["by_key"]["vip"]["unlocked"]
    assert (await mine(client, keys.server, "gus"))["by_key"]["first-win"]["unlocked"]
    assert len(await outbox(client, keys, "achievement.unlocked")) == announced
    resp = await grant(client, keys.server, "fay", "vip")
    assert (resp.status_code, resp.json()["granted"]) == (200, False)


async def test_grant_only_definitions_need_no_backfill_pass(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys, stat=WINS)
    await play(client, keys, runtime, won("hal"), won("ida"))
    resp = await client.put("/v1/definitions/achievement/vip", headers=keys.server, json=ACHIEVEMENTS["vip"])
    assert resp.status_code == 201, resp.text
    assert "criteria" not in resp.json()["body"]
    for _ in range(50):  # other tests' apps (on PostgreSQL) may take turns
        async with unit_of_work(runtime.sessions) as session:
            worked = await backfill_stale(session, runtime, runtime.clock.now(), budget=1)
        assert not [k for k in worked if k.startswith(f"{keys.app_id}:")]  # no pass over the players
        async with runtime.read_sessions() as session:
            if not [r for r in await stale_backfills(session, 10_000) if r[0] == keys.app_id]:
                break
    else:
        raise AssertionError("the grant-only achievement was never marked backfilled")
    assert not (await mine(client, keys.server, "hal"))["by_key"]["vip"]["unlocked"]
