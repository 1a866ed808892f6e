"""Achievements: unlocked once with their reward, progress, secrets, rarity, streak criteria, backfill."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from questline.achievements.tasks import run_backfill
from questline.cli.main import app as cli
from questline.kit.clock import ManualClock
from questline.kit.errors import NotFound
from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from questline.pipeline.replay import start_replay
from questline.pipeline.worker import drain
from tests.conftest import Factory, problem
from tests.streaks.helpers import balance, configure, daily, event, outbox, play, tick

WINS = {"wins": {"event_type": "match.won"}}


def achievements() -> dict[str, dict[str, Any]]:
    return {
        "first-win": {"name": "First Blood", "description": "Win a match", "category": "combat",
                      "points_reward": {"currency": "points", "amount": 50}, "unlocks": {"title": "Rookie"},
                      "criteria": {"stat": "wins", "op": "gte", "value": 1}, "sort_order": 1},
        "ten-wins": {"name": "Veteran", "description": "Win 10 matches", "rarity": "rare", "sort_order": 2,
                     "points_reward": {"currency": "points", "amount": 500},
                     "criteria": {"stat": "wins", "op": "gte", "value": 10}},
        "on-fire": {"name": "On Fire", "description": "Play 3 days in a row", "category": "streak", "sort_order": 3,
                    "criteria": {"metric": "streak.daily.current", "op": "gte", "value": 3},
                    "unlocks": {"cosmetic": "flame_border"}},
        "big-score": {"name": "Showstopper", "description": "Score 1000 in one match", "rarity": "epic",
                      "is_secret": True, "sort_order": 4,
                      "criteria": {"all": [{"field": "type", "op": "eq", "value": "match.won"},
                                           {"field": "data.score", "op": "gte", "value": 1000}]}},
        "retired": {"name": "Old Guard", "is_visible": False, "criteria": {"stat": "wins", "op": "gte", "value": 5}},
    }


async def setup(client: httpx.AsyncClient, keys: Any) -> None:
    await configure(client, keys, stat=WINS, streak={"daily": daily(milestones=[])}, achievement=achievements())


def won(player: str, ts: str = "2026-03-10T08:00:00Z", score: int = 100) -> dict[str, Any]:
    return event(player, ts, "match.won", score=score)


async def mine(client: httpx.AsyncClient, headers: dict[str, str], player: str) -> dict[str, Any]:
    resp = await client.get(f"/v1/players/{player}/achievements", headers=headers)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    body["by_key"] = {a["key"]: a for a in body["achievements"]}
    return body


async def test_unlocked_once_with_reward_progress_and_replay(client: httpx.AsyncClient, factory: Factory,
                                                             runtime: Runtime) -> None:
    keys = await factory.app()
    await setup(client, keys)
    await play(client, keys, runtime, won("amy"), won("amy"), won("amy"))
    view = await mine(client, keys.server, "amy")
    first, ten = view["by_key"]["first-win"], view["by_key"]["ten-wins"]
    assert (first["unlocked"], first["title_unlock"], first["progress"]) == (
        True, "Rookie", {"current": 1, "target": 1, "percent": 100})
    assert datetime.fromisoformat(first["unlocked_at"]) == datetime(2026, 3, 10, 8, tzinfo=UTC)
    assert (ten["unlocked"], ten["progress"]) == (False, {"current": 3, "target": 10, "percent": 30})
    assert "retired" not in view["by_key"]  # hidden until held… and then kept
    assert await balance(client, keys, "amy") == 50

    await play(client, keys, runtime, *[won("amy") for _ in range(7)])
    view = await mine(client, keys.server, "amy")
    assert view["by_key"]["ten-wins"]["unlocked"] and view["by_key"]["retired"]["unlocked"]
    assert (view["total"], view["unlocked"]) == (5, 3)
    assert await balance(client, keys, "amy") == 550
    unlocked = await outbox(client, keys, "achievement.unlocked")
    assert sorted(m["data"]["achievement"] for m in unlocked) == ["first-win", "retired", "ten-wins"]
    assert unlocked[0]["data"]["title_unlock"] == "Rookie"

    await start_replay(runtime, keys.app_id)
    await drain(runtime)
    again = await mine(client, keys.server, "amy")
    assert {k: (a["unlocked"], a["unlocked_at"]) for k, a in again["by_key"].items()} == \
        {k: (a["unlocked"], a["unlocked_at"]) for k, a in view["by_key"].items()}
    assert await balance(client, keys, "amy") == 550
    assert len(await outbox(client, keys, "achievement.unlocked")) == 3


async def test_secrets_masked_catalog_and_rarity(client: httpx.AsyncClient, factory: Factory,
                                                 runtime: Runtime) -> None:
    keys = await factory.app()
    await setup(client, keys)
    await play(client, keys, runtime, won("bo"), event("cy", "2026-03-10T08:00:00Z", "login"),
               event("di", "2026-03-10T08:00:00Z", "login"), event("ed", "2026-03-10T08:00:00Z", "login"))
    me = await factory.player_token(keys, "bo")
    secret = (await mine(client, me, "bo"))["by_key"]["big-score"]
    assert secret["hidden"] and secret["name"] == "Secret achievement" and secret["badge"] is None
    assert "1000" not in str(secret)

    catalog = (await client.get("/v1/achievements", headers=keys.server)).json()
    assert catalog["total_players"] == 4
    by_key = {a["key"]: a for a in catalog["achievements"]}
    assert list(by_key) == ["retired", "first-win", "ten-wins", "on-fire", "big-score"]  # sort_order, then key
    assert (by_key["first-win"]["unlocked_count"], by_key["first-win"]["rarity_percent"]) == (1, 25.0)
    for caller in (keys.client, me):
        public = (await client.get("/v1/achievements", headers=caller)).json()
        assert [a["key"] for a in public["achievements"]] == ["first-win", "ten-wins", "on-fire"]
    assert (await mine(client, me, "bo"))["by_key"]["first-win"]["rarity_percent"] == 25.0

    await play(client, keys, runtime, won("bo", score=1500))
    shown = (await mine(client, me, "bo"))["by_key"]["big-score"]
    assert (shown["hidden"], shown["unlocked"], shown["name"]) == (False, True, "Showstopper")
    other = await factory.player_token(keys, "cy")
    problem(await client.get("/v1/players/bo/achievements", headers=other), 404)
    problem(await client.get("/v1/players/nobody/achievements", headers=keys.server), 404, "player_not_found")


async def test_streak_criteria_unlock_in_the_same_event(client: httpx.AsyncClient, factory: Factory,
                                                        runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    await setup(client, keys)
    clock.set(datetime(2026, 3, 20, tzinfo=UTC))
    await play(client, keys, runtime, *[event("eve", f"2026-03-1{d}T08:00:00Z") for d in (1, 2)])
    fire = (await mine(client, keys.server, "eve"))["by_key"]["on-fire"]
    assert (fire["unlocked"], fire["progress"]["current"], fire["progress"]["target"]) == (False, 2, 3)
    await play(client, keys, runtime, event("eve", "2026-03-13T08:00:00Z"))
    fire = (await mine(client, keys.server, "eve"))["by_key"]["on-fire"]
    assert fire["unlocked"] and fire["cosmetic_unlock"] == "flame_border"
    unlocked = await outbox(client, keys, "achievement.unlocked")
    updated = await outbox(client, keys, "streak.updated")
    # The unlock is announced by the very event that made the streak 3.
    assert unlocked[0]["seq"] > updated[-1]["seq"]
    # A streak an achievement depends on cannot be deleted.
    problem(await client.delete("/v1/definitions/streak/daily", headers=keys.server), 409, "definition_in_use")


async def test_backfill_awards_players_who_already_qualify(client: httpx.AsyncClient, factory: Factory,
                                                           runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    await configure(client, keys, stat=WINS)
    await play(client, keys, runtime, *[won(p) for p in ("fox", "fox", "gil", "hap", "hap", "hap")])
    three = {"name": "Hat Trick", "criteria": {"stat": "wins", "op": "gte", "value": 2},
             "points_reward": {"currency": "points", "amount": 30}}
    resp = await client.put("/v1/definitions/achievement/two-wins", headers=keys.server, json=three)
    assert resp.status_code == 201, resp.text
    assert not (await mine(client, keys.server, "fox"))["by_key"]["two-wins"]["unlocked"]

    clock.advance(minutes=1)
    assert "achievements.backfill" in await tick(runtime)
    got = {p: (await mine(client, keys.server, p))["by_key"]["two-wins"]["unlocked"] for p in ("fox", "gil", "hap")}
    assert got == {"fox": True, "gil": False, "hap": True}
    assert [await balance(client, keys, p) for p in ("fox", "gil", "hap")] == [30, 0, 30]
    assert sorted(m["player_id"] for m in await outbox(client, keys, "achievement.unlocked")) == ["fox", "hap"]
    clock.advance(minutes=1)
    await tick(runtime)  # done for this version: nothing again
    assert len(await outbox(client, keys, "achievement.unlocked")) == 2

    # Lowering the bar is a new version: the job backfills again and catches gil.
    resp = await client.put("/v1/definitions/achievement/two-wins", headers=keys.server,
                            json={**three, "criteria": {"stat": "wins", "op": "gte", "value": 1}})
    assert resp.json()["version"] == 2
    clock.advance(minutes=1)
    await tick(runtime)
    assert (await mine(client, keys.server, "gil"))["by_key"]["two-wins"]["unlocked"]
    assert await balance(client, keys, "fox") == 30  # paid once

    # The service function the CLI uses: nothing left to award, and it says how many it looked at.
    assert await run_backfill(runtime, keys.app_id, None) == (3, 0)
    with pytest.raises(NotFound, match="achievement 'missing' not found"):
        await run_backfill(runtime, keys.app_id, ["missing"])


async def test_backfill_cli(client: httpx.AsyncClient, factory: Factory, runtime: Runtime, settings: Settings,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    keys = await factory.app()
    await configure(client, keys, stat=WINS)
    await play(client, keys, runtime, won("ivo"), won("jan"))
    resp = await client.put("/v1/definitions/achievement/one-win", headers=keys.server,
                            json={"name": "One", "criteria": {"stat": "wins", "op": "gte", "value": 1}})
    assert resp.status_code == 201
    monkeypatch.setenv("QUESTLINE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("QUESTLINE_SECRET_KEY", settings.secret_key.get_secret_value())
    runner = CliRunner()
    result = await asyncio.to_thread(runner.invoke, cli, ["achievements", "backfill", "--app", keys.app_id,
                                                          "--key", "one-win"])
    assert result.exit_code == 0, result.output
    assert "evaluated 2 players; unlocked 2 achievements" in result.output
    assert (await mine(client, keys.server, "jan"))["by_key"]["one-win"]["unlocked"]
    bad = await asyncio.to_thread(runner.invoke, cli, ["achievements", "backfill", "--app", keys.app_id,
                                                       "--key", "nope"])
    assert bad.exit_code == 1 and "achievement_not_found" in bad.output


async def test_bad_achievement_definitions_are_refused(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await configure(client, keys, stat=WINS, streak={"daily": daily(milestones=[])})
    ok = {"name": "A", "criteria": {"stat": "wins", "op": "gte", "value": 1}}
    cases = [
        ({**ok, "rarity": "ultra"}, "rarity"),
        ({"criteria": ok["criteria"]}, "name"),
        ({"name": "A", "progress": {"stat": "wins", "target": 3}}, "progress needs criteria"),
        ({**ok, "criteria": {"stat": "losses", "op": "gte", "value": 1}}, "unknown stat 'losses'"),
        ({**ok, "criteria": {"metric": "streak.weekly.current", "op": "gte", "value": 2}}, "unknown streak 'weekly'"),
        ({**ok, "criteria": {"metric": "streak.daily.best", "op": "gte", "value": 2}}, "streak.<key>.current"),
        ({**ok, "progress": {"stat": "wins", "level": "xp", "target": 3}}, "exactly one of"),
        ({**ok, "progress": {"metric": "referrals.count", "period": "week", "target": 3}}, "period applies"),
        ({**ok, "points_reward": {"currency": "gems", "amount": 5}}, "unknown currency 'gems'"),
        ({**ok, "criteria": {"stat": "wins", "op": "gte"}}, "single value"),
    ]
    for body, message in cases:
        found = problem(await client.put("/v1/definitions/achievement/a", headers=keys.server, json=body), 422,
                        "invalid_definition")
        assert any(message in (e["msg"] + " " + ".".join(e["loc"])) for e in found["errors"]), (body, found)
    # Metrics from other areas are accepted as they are (absent counts as 0).
    resp = await client.put("/v1/definitions/achievement/a", headers=keys.server,
                            json={**ok, "criteria": {"metric": "referrals.count", "op": "gte", "value": 5}})
    assert resp.status_code == 201, resp.text


async def test_unlocks_in_one_event_count_toward_collection_achievements(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    win = {"stat": "wins", "op": "gte", "value": 1}
    await configure(client, keys, stat=WINS, achievement={
        "a-collector": {"name": "Collector", "criteria": {"metric": "achievements.unlocked", "op": "gte", "value": 2}},
        "b-first": {"name": "First", "criteria": win},
        "c-also": {"name": "Also", "criteria": win},
    })
    await play(client, keys, runtime, won("kit"))
    view = await mine(client, keys.server, "kit")
    assert view["unlocked"] == 3
    assert view["by_key"]["a-collector"]["progress"] == {"current": 2, "target": 2, "percent": 100}


async def test_demo_content_loads_and_plays(client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    from questline.demo import install_content
    from questline.kit.db import unit_of_work

    keys = await factory.app()
    async with unit_of_work(runtime.sessions) as session:
        await install_content(session, runtime.clock, keys.app_id)
    catalog = (await client.get("/v1/achievements", headers=keys.server)).json()
    assert len(catalog["achievements"]) == 30
    assert {a["rarity"] for a in catalog["achievements"]} == {"common", "rare", "epic", "legendary", "mythic"}
    await play(client, keys, runtime, event("zed", "2026-03-10T08:00:00Z", "workout.completed", kind="yoga",
                                            minutes=125, calories=300))
    view = await mine(client, keys.server, "zed")
    assert {k for k, a in view["by_key"].items() if a["unlocked"]} == {"first-steps", "deep-stretch"}
    streaks = (await client.get("/v1/players/zed/streaks", headers=keys.server)).json()["streaks"]
    assert {s["key"]: s["current"] for s in streaks} == {"daily_activity": 1, "workout_weeks": 1}


async def test_backfill_job_resumes_where_it_stopped_and_shares_passes(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    from questline.achievements.repository import stale_backfills
    from questline.achievements.tasks import backfill_stale
    from questline.kit.db import unit_of_work

    keys = await factory.app()
    await configure(client, keys, stat=WINS)
    names = ["p1", "p2", "p3", "p4", "p5"]
    await play(client, keys, runtime, *[won(p) for p in names], won("p5"))
    one = {"name": "One", "criteria": {"stat": "wins", "op": "gte", "value": 1}}
    two = {"name": "Two", "criteria": {"stat": "wins", "op": "gte", "value": 2}}
    resp = await client.post("/v1/definitions:bulk", headers=keys.server,
                             json={"definitions": {"achievement": {"one": one, "two": two}}})
    assert resp.status_code == 200, resp.text
    runs = []
    for _ in range(100):  # two players per run; other tests' apps (on PostgreSQL) may take turns too
        async with unit_of_work(runtime.sessions) as session:
            worked = await backfill_stale(session, runtime, runtime.clock.now(), budget=2)
        mine = {k.split(":")[1]: v for k, v in worked.items() if k.startswith(f"{keys.app_id}:")}
        if mine:
            runs.append(mine)
        async with runtime.read_sessions() as session:
            if not [r for r in await stale_backfills(session, 10_000) if r[0] == keys.app_id]:
                break
    assert all(set(run) == {"one", "two"} for run in runs)  # one pass for both
    assert len(runs) >= 3  # resumed where it stopped
    assert (sum(r["one"] for r in runs), sum(r["two"] for r in runs)) == (5, 1)
    assert (await client.get("/v1/achievements", headers=keys.server)).json()["achievements"][0]["unlocked_count"] == 5


async def test_later_events_of_a_batch_test_what_they_can_move(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    """A player's later events in one batch test only the achievements their inputs moved: a
    criterion on today's stats moves with the day even when the stat does not, an unlock moves the
    achievements that read it within the same pass, and one that reads the event is always tested."""
    from questline.achievements.processor import index_achievements
    from questline.rules.service import ruleset_cache

    keys = await factory.app()
    await configure(client, keys, stat=WINS, achievement={
        # Won before, but not today: true on the first event of a new day, whatever its type.
        "a-rest": {"name": "Rest", "criteria": {"all": [{"stat": "wins", "period": "day", "op": "eq", "value": 0},
                                                        {"stat": "wins", "op": "gte", "value": 1}]}},
        "k-win": {"name": "Two", "criteria": {"stat": "wins", "op": "gte", "value": 2}},
        "m-chain": {"name": "Chain", "criteria": {"metric": "achievement.k-win", "op": "gte", "value": 1}},
        "t-played": {"name": "Played", "criteria": {"field": "type", "op": "eq", "value": "session.played"}},
        "z-also": {"name": "Also", "criteria": {"stat": "wins", "op": "gte", "value": 2}},
    })
    async with runtime.read_sessions() as session:
        deps = index_achievements(await ruleset_cache(runtime).get(session, keys.app_id))
    # Positions in key order: a-rest 0, k-win 1, m-chain 2, t-played 3, z-also 4.
    assert (deps.always, deps.periodic) == ({3}, {0})
    assert deps.stats == {"wins": {0, 1, 4}}
    assert deps.metrics == {"achievement.k-win": {2}}

    await play(client, keys, runtime, won("ivy", "2026-03-10T08:00:00Z"), won("ivy", "2026-03-10T09:00:00Z"),
               event("ivy", "2026-03-11T08:00:00Z", "session.played"))  # one batch
    unlocks = [m["data"]["achievement"] for m in await outbox(client, keys, "achievement.unlocked")]
    # In key order within an event, as when every achievement is tested on every event.
    assert unlocks == ["k-win", "m-chain", "z-also", "a-rest", "t-played"]
    view = await mine(client, keys.server, "ivy")
    assert {key: datetime.fromisoformat(a["unlocked_at"]).hour for key, a in view["by_key"].items()} == {
        "k-win": 9, "m-chain": 9, "z-also": 9, "a-rest": 8, "t-played": 8}
    assert datetime.fromisoformat(view["by_key"]["a-rest"]["unlocked_at"]).day == 11
