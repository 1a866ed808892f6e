"""Progress from events: periods in the player's time zone, objectives, gates, cooldowns, rewards."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from questline.kit.clock import ManualClock
from questline.kit.runtime import Runtime
from tests.challenges.helpers import (
    balance,
    challenges,
    configure,
    event,
    history,
    idem,
    outbox_types,
    player,
    send,
    total_xp,
    workouts,
)
from tests.conftest import Factory
from tests.pipeline.helpers import settle


async def test_auto_completion_pays_once_and_announces(client: httpx.AsyncClient, factory: Factory,
                                                       runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys, {"three-workouts": workouts(3)})
    await send(client, keys, *[event("ana", f"2026-03-10T0{h}:00:00Z") for h in range(1, 6)])
    await settle(runtime)

    view = (await challenges(client, keys, "ana"))["three-workouts"]
    assert view["group"] == "daily" and view["status"] == "completed" and view["period"] == "2026-03-10"
    assert view["progress_percent"] == 100 and view["times_completed"] == 1
    assert view["objectives"][0]["current"] == 3 and view["objectives"][0]["met"] is True
    assert view["expires_at"] == "2026-03-11T00:00:00Z"
    # Points through the ledger; XP through an award event processed in a later batch.
    assert await balance(client, keys, "ana") == 20
    assert await total_xp(client, keys, "ana") == 50
    types = await outbox_types(client, keys)
    assert types.count("challenge.completed") == 1 and "challenge.progressed" in types
    assert [h["period"] for h in await history(client, keys, "ana")] == ["2026-03-10"]


async def test_daily_reset_at_local_midnight_east_of_utc(client: httpx.AsyncClient, factory: Factory,
                                                         runtime: Runtime, clock: ManualClock) -> None:
    """Pacific/Kiritimati is UTC+14: its 11 March begins at 10:00 UTC on 10 March."""
    keys = await factory.app()
    await configure(client, keys, {"three-workouts": workouts(3)})
    await player(client, keys, "kiri", "Pacific/Kiritimati")
    await send(client, keys, event("kiri", "2026-03-10T09:00:00Z"), event("kiri", "2026-03-10T09:59:59Z"),
               event("kiri", "2026-03-10T10:00:00Z"))
    await settle(runtime)
    clock.set(datetime(2026, 3, 10, 10, 30, tzinfo=UTC))
    view = (await challenges(client, keys, "kiri"))["three-workouts"]
    # Two fell on local 10 March, one on 11 March: nothing complete.
    assert view["period"] == "2026-03-11" and view["status"] == "in_progress"
    assert view["objectives"][0]["current"] == 1 and view["progress_percent"] == 33
    assert view["expires_at"] == "2026-03-11T10:00:00Z"
    assert await history(client, keys, "kiri") == []

    await send(client, keys, event("kiri", "2026-03-10T11:00:00Z"), event("kiri", "2026-03-11T09:59:59Z"))
    await settle(runtime)
    view = (await challenges(client, keys, "kiri"))["three-workouts"]
    assert view["status"] == "completed"
    assert [h["period"] for h in await history(client, keys, "kiri")] == ["2026-03-11"]


async def test_daily_reset_at_local_midnight_west_of_utc(client: httpx.AsyncClient, factory: Factory,
                                                         runtime: Runtime, clock: ManualClock) -> None:
    """Etc/GMT+12 is UTC-12: its 10 March ends at 12:00 UTC on 11 March."""
    keys = await factory.app()
    await configure(client, keys, {"three-workouts": workouts(3)})
    await player(client, keys, "baker", "Etc/GMT+12")
    await send(client, keys, event("baker", "2026-03-10T12:00:00Z"), event("baker", "2026-03-11T11:00:00Z"),
               event("baker", "2026-03-11T11:59:59Z"), event("baker", "2026-03-11T12:00:00Z"))
    await settle(runtime)
    assert [h["period"] for h in await history(client, keys, "baker")] == ["2026-03-10"]

    clock.set(datetime(2026, 3, 11, 11, 59, tzinfo=UTC))
    before = (await challenges(client, keys, "baker"))["three-workouts"]
    assert before["period"] == "2026-03-10" and before["status"] == "completed"
    assert before["expires_at"] == "2026-03-11T12:00:00Z"
    clock.set(datetime(2026, 3, 11, 12, 0, tzinfo=UTC))
    after = (await challenges(client, keys, "baker"))["three-workouts"]
    assert after["period"] == "2026-03-11" and after["status"] == "in_progress"
    assert after["objectives"][0]["current"] == 1
    assert after["expires_at"] == "2026-03-12T12:00:00Z"


async def test_weekly_and_monthly_boundaries(client: httpx.AsyncClient, factory: Factory, runtime: Runtime,
                                             clock: ManualClock) -> None:
    keys = await factory.app()
    await configure(client, keys, {
        "weekly-minutes": {"name": "100 minutes this week", "recurrence": "weekly", "objectives": [
            {"type": "value", "event_type": "workout.completed", "field": "data.minutes", "target": 100}]},
        "monthly-runs": {"name": "2 runs this month", "recurrence": "monthly", "objectives": [
            {"type": "count", "event_type": "workout.completed", "target": 2,
             "filter": {"field": "data.kind", "op": "eq", "value": "run"}}]},
    })
    await player(client, keys, "paris", "Europe/Paris")
    # Sunday 15 March 23:30 in Paris is week 11, Monday 00:30 week 12; 31 March 23:30 (summer time)
    # is March, 00:30 is April.
    clock.set(datetime(2026, 3, 31, 12, 0, tzinfo=UTC))
    await send(client, keys,
               event("paris", "2026-03-15T22:30:00Z", minutes=60, kind="swim"),
               event("paris", "2026-03-15T23:30:00Z", minutes=60, kind="swim"),
               event("paris", "2026-03-31T21:30:00Z", minutes=10, kind="run"),
               event("paris", "2026-03-31T22:30:00Z", minutes=10, kind="run"))
    await settle(runtime)
    done = {(h["challenge"], h["period"]) for h in await history(client, keys, "paris")}
    assert done == set()  # 60 + 60 minutes straddle a week; 2 runs straddle a month

    clock.set(datetime(2026, 3, 16, 8, 0, tzinfo=UTC))
    week = (await challenges(client, keys, "paris"))["weekly-minutes"]
    assert week["group"] == "weekly" and week["period"] == "2026-W12"
    assert week["objectives"][0]["current"] == 60 and week["progress_percent"] == 60
    assert week["expires_at"] == "2026-03-22T23:00:00Z"  # Monday 23 March, 00:00 in Paris

    await send(client, keys, event("paris", "2026-03-16T09:00:00Z", minutes=45, kind="run"))
    await settle(runtime)
    done = {(h["challenge"], h["period"]) for h in await history(client, keys, "paris")}
    assert done == {("weekly-minutes", "2026-W12"), ("monthly-runs", "2026-03")}
    clock.set(datetime(2026, 3, 31, 12, 0, tzinfo=UTC))
    month = (await challenges(client, keys, "paris"))["monthly-runs"]
    assert month["group"] == "monthly" and month["objectives"][0]["current"] == 2
    assert month["status"] == "completed"  # runs on 16 and 31 March (local)
    assert month["expires_at"] == "2026-03-31T22:00:00Z"  # 1 April, 00:00 in Paris (summer time)


async def test_objective_types(client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys, {
        "high-score": {"name": "Score 1000", "objectives": [
            {"type": "value", "event_type": "match.won", "field": "data.score", "aggregate": "max", "target": 1000}]},
        "photo": {"name": "Add a photo", "objectives": [
            {"type": "exists", "event_type": "profile.updated", "field": "data.photo_url"}]},
        "burst": {"name": "3 wins in 10 minutes", "objectives": [
            {"type": "time_window", "event_type": "match.won", "target": 3, "window_seconds": 600}]},
        "combo": {"name": "Win and log a meal", "objectives": [
            {"type": "count", "event_type": "match.won", "target": 1},
            {"type": "count", "event_type": "meal.logged", "target": 2}]},
    })
    await send(client, keys,
               event("p", "2026-03-10T10:00:00Z", "match.won", score=500),
               event("p", "2026-03-10T10:08:20Z", "match.won", score=900),
               event("p", "2026-03-10T10:18:20Z", "match.won", score=700),
               event("p", "2026-03-10T10:19:00Z", "profile.updated", name="P"),
               event("p", "2026-03-10T10:20:00Z", "meal.logged"))
    await settle(runtime)
    view = await challenges(client, keys, "p")
    assert view["high-score"]["objectives"][0]["current"] == 900 and view["high-score"]["progress_percent"] == 90
    assert view["photo"]["status"] == "in_progress"  # the update had no photo
    assert view["burst"]["objectives"][0]["current"] == 2  # 10:00 and 10:08:20 or 10:08:20 and 10:18:20
    assert view["combo"]["progress_percent"] == 75 and view["combo"]["status"] == "in_progress"
    assert view["high-score"]["group"] == "special"

    await send(client, keys,
               event("p", "2026-03-10T10:21:00Z", "match.won", score=1200),
               event("p", "2026-03-10T10:21:30Z", "match.won", score=100),
               event("p", "2026-03-10T10:22:00Z", "profile.updated", photo_url="https://x.test/p.png"),
               event("p", "2026-03-10T10:23:00Z", "meal.logged"))
    await settle(runtime)
    view = await challenges(client, keys, "p")
    # 10:18:20, 10:21 and 10:21:30 fall within 600 s (10:08:20 to 10:18:20 is exactly 600: not within).
    assert {k: v["status"] for k, v in view.items()} == {
        "high-score": "completed", "photo": "completed", "burst": "completed", "combo": "completed"}


async def test_repeatable_with_cooldown(client: httpx.AsyncClient, factory: Factory, runtime: Runtime,
                                        clock: ManualClock) -> None:
    keys = await factory.app()
    await configure(client, keys, {"hydrate": {
        "name": "Drink 2 glasses", "recurrence": "one_time", "repeatable": True, "cooldown_seconds": 3600,
        "rewards": {"points": {"currency": "points", "amount": 5}},
        "objectives": [{"type": "count", "event_type": "water.logged", "target": 2}]}})
    water = "water.logged"
    await send(client, keys, event("w", "2026-03-10T08:00:00Z", water), event("w", "2026-03-10T08:01:00Z", water),
               # inside the cooldown: ignored
               event("w", "2026-03-10T08:30:00Z", water), event("w", "2026-03-10T08:59:59Z", water),
               # after it: the next round
               event("w", "2026-03-10T09:01:00Z", water), event("w", "2026-03-10T09:02:00Z", water),
               event("w", "2026-03-10T09:03:00Z", water))
    await settle(runtime)
    assert [h["period"] for h in await history(client, keys, "w")] == ["once#2", "once"]
    assert await balance(client, keys, "w") == 10

    clock.set(datetime(2026, 3, 10, 9, 30, tzinfo=UTC))
    view = (await challenges(client, keys, "w"))["hydrate"]
    assert view["status"] == "cooling_down" and view["times_completed"] == 2
    assert view["available_again_at"] == "2026-03-10T10:02:00Z"
    assert view["period"] == "once#3" and view["objectives"][0]["current"] == 0
    clock.set(datetime(2026, 3, 10, 10, 2, tzinfo=UTC))
    view = (await challenges(client, keys, "w"))["hydrate"]
    assert view["status"] == "in_progress"


async def test_gates_level_required_challenges_and_dates(client: httpx.AsyncClient, factory: Factory,
                                                         runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    await configure(client, keys, {
        "first-steps": {"name": "First steps", "rewards": {"xp": {"track": "xp", "amount": 100}},
                        "objectives": [{"type": "count", "event_type": "workout.completed", "target": 1}]},
        "second-steps": {"name": "Second steps", "required_challenges": ["first-steps"],
                         "objectives": [{"type": "count", "event_type": "workout.completed", "target": 2}]},
        "veterans": {"name": "Veterans only", "min_level": {"track": "xp", "level": 2},
                     "objectives": [{"type": "count", "event_type": "workout.completed", "target": 1}]},
        "spring-event": {"name": "Spring event", "recurrence": "event", "starts_at": "2026-03-20T00:00:00Z",
                         "ends_at": "2026-03-27T00:00:00Z",
                         "objectives": [{"type": "count", "event_type": "workout.completed", "target": 1}]},
    })
    await send(client, keys, event("g", "2026-03-10T08:00:00Z"))
    await settle(runtime)
    view = await challenges(client, keys, "g", include_locked="true")
    assert view["first-steps"]["status"] == "completed"
    # Gates are judged before the event: the workout that completed first-steps (and whose XP
    # award, processed after it, reached level 2) counts for neither follow-up.
    assert view["second-steps"]["status"] == "in_progress"
    assert view["second-steps"]["objectives"][0]["current"] == 0
    assert view["veterans"]["status"] == "in_progress" and view["veterans"]["objectives"][0]["current"] == 0
    assert "spring-event" not in view  # not running yet

    await send(client, keys, event("g", "2026-03-10T09:00:00Z"), event("g", "2026-03-10T09:30:00Z"))
    await settle(runtime)
    view = await challenges(client, keys, "g")
    assert view["second-steps"]["status"] == "completed" and view["veterans"]["status"] == "completed"

    other = await challenges(client, keys, "g", category="general", difficulty="hard")
    assert other == {}
    await send(client, keys, event("h", "2026-03-10T08:00:00Z", "meal.logged"))
    await settle(runtime)
    fresh = await challenges(client, keys, "h", include_locked="true")
    assert fresh["veterans"]["status"] == "locked" and fresh["veterans"]["locked_reasons"] == ["needs xp level 2"]
    assert fresh["second-steps"]["locked_reasons"] == ["needs challenge 'first-steps' completed"]
    assert "veterans" not in await challenges(client, keys, "h")

    # Events outside the dates do not count, even when sent later.
    clock.set(datetime(2026, 3, 28, tzinfo=UTC))
    await send(client, keys, event("h", "2026-03-19T23:59:59Z"), event("h", "2026-03-27T00:00:00Z"))
    await settle(runtime)
    assert [h["challenge"] for h in await history(client, keys, "h")] == ["first-steps"]
    await send(client, keys, event("h", "2026-03-26T23:59:59Z"))
    await settle(runtime)
    # Inside the dates at last (and second-steps and veterans, open since the first workout, advance too).
    assert {h["challenge"] for h in await history(client, keys, "h")} == {
        "first-steps", "second-steps", "veterans", "spring-event"}


async def test_completion_metrics_feed_later_conditions(client: httpx.AsyncClient, factory: Factory,
                                                        runtime: Runtime) -> None:
    """``challenges.completed`` and ``challenges.completed.<category>`` are metrics later rules can test."""
    keys = await factory.app()
    await configure(client, keys, {
        "one-workout": workouts(1),
        "one-meal": {"name": "Meal", "category": "nutrition",
                     "objectives": [{"type": "count", "event_type": "meal.logged", "target": 1}]},
        "two-done": {"name": "Two challenges done", "objectives": [{
            "type": "exists", "event_type": "workout.completed",
            "filter": {"metric": "challenges.completed", "op": "gte", "value": 2}}]},
        "workout-fan": {"name": "A workout challenge done", "objectives": [{
            "type": "exists", "event_type": "meal.logged",
            "filter": {"metric": "challenges.completed.workout", "op": "gte", "value": 1}}]},
    })
    await send(client, keys, event("m", "2026-03-10T08:00:00Z", "meal.logged"),
               event("m", "2026-03-10T09:00:00Z"))
    await settle(runtime)
    done = {h["challenge"] for h in await history(client, keys, "m")}
    # The workout completed one-workout; two-done judged the metric as it stood before (1).
    assert done == {"one-workout", "one-meal"}
    await send(client, keys, event("m", "2026-03-10T10:00:00Z", "meal.logged"),
               event("m", "2026-03-10T11:00:00Z"))
    await settle(runtime)
    assert {h["challenge"] for h in await history(client, keys, "m")} == {
        "one-workout", "one-meal", "two-done", "workout-fan"}


async def test_replay_rebuilds_without_paying_twice(client: httpx.AsyncClient, factory: Factory,
                                                    runtime: Runtime) -> None:
    from questline.pipeline.replay import start_replay

    keys = await factory.app()
    await configure(client, keys, {"three-workouts": workouts(3)})
    await send(client, keys, *[event("r", f"2026-03-10T0{h}:00:00Z") for h in range(1, 4)])
    await settle(runtime)
    await start_replay(runtime, keys.app_id)
    await settle(runtime)
    assert [h["period"] for h in await history(client, keys, "r")] == ["2026-03-10"]
    assert await balance(client, keys, "r") == 20
    assert await total_xp(client, keys, "r") == 50
    assert (await challenges(client, keys, "r"))["three-workouts"]["status"] == "completed"


async def test_player_token_sees_only_its_own_challenges(client: httpx.AsyncClient, factory: Factory,
                                                         runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys, {"three-workouts": workouts(3)})
    await send(client, keys, event("mine", "2026-03-10T08:00:00Z"), event("theirs", "2026-03-10T08:00:00Z"))
    await settle(runtime)
    token = await factory.player_token(keys, "mine")
    assert (await client.get("/v1/players/mine/challenges", headers=token)).status_code == 200
    assert (await client.get("/v1/players/theirs/challenges", headers=token)).status_code == 404
    assert (await client.get("/v1/players/theirs/challenges/history", headers=token)).status_code == 404
    assert (await client.get("/v1/players/nobody/challenges", headers=keys.server)).status_code == 404


async def test_required_achievement_opens_after_the_unlock(client: httpx.AsyncClient, factory: Factory,
                                                           runtime: Runtime) -> None:
    """``required_achievements`` reads the metric ``achievement.<key>`` the achievements processor publishes."""
    keys = await factory.app()
    await configure(client, keys, {
        "after-badge": {"name": "After the badge", "required_achievements": ["two-workouts"],
                        "objectives": [{"type": "count", "event_type": "workout.completed", "target": 1}]},
    }, stat={"workouts": {"event_type": "workout.completed"}},
        achievement={"two-workouts": {"name": "Two workouts", "criteria": {"stat": "workouts", "op": "gte",
                                                                         "value": 2}}})
    await send(client, keys, event("b", "2026-03-10T08:00:00Z"))
    await settle(runtime)
    locked = (await challenges(client, keys, "b", include_locked="true"))["after-badge"]
    assert locked["status"] == "locked" and locked["locked_reasons"] == ["needs achievement 'two-workouts'"]
    # The second workout unlocks the achievement after challenges saw it: it does not count yet.
    await send(client, keys, event("b", "2026-03-10T09:00:00Z"))
    await settle(runtime)
    assert (await challenges(client, keys, "b"))["after-badge"]["status"] == "in_progress"
    await send(client, keys, event("b", "2026-03-10T10:00:00Z"))
    await settle(runtime)
    assert (await challenges(client, keys, "b"))["after-badge"]["status"] == "completed"


async def test_repeatable_rounds_continue_after_a_manual_completion(client: httpx.AsyncClient, factory: Factory,
                                                                   runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    await configure(client, keys, {"refer": {
        "name": "Refer friends", "recurrence": "daily", "repeatable": True,
        "objectives": [{"type": "count", "event_type": "friend.referred", "target": 2}]}})
    await send(client, keys, event("r", "2026-03-10T08:00:00Z", "friend.referred"))
    await settle(runtime)
    forced = await client.post("/v1/players/r/challenges/refer/complete", headers=idem(keys.server),
                               json={"reason": "referral lost in transit"})
    assert forced.status_code == 201 and forced.json()["period"] == "2026-03-10"
    view = (await challenges(client, keys, "r"))["refer"]
    assert view["period"] == "2026-03-10#2" and view["objectives"][0]["current"] == 0
    await send(client, keys, event("r", "2026-03-10T09:00:00Z", "friend.referred"),
               event("r", "2026-03-10T09:30:00Z", "friend.referred"))
    await settle(runtime)
    assert [h["period"] for h in await history(client, keys, "r")] == ["2026-03-10#2", "2026-03-10"]
    assert (await challenges(client, keys, "r"))["refer"]["times_completed"] == 2


async def test_old_period_progress_is_trimmed(client: httpx.AsyncClient, factory: Factory, runtime: Runtime,
                                              clock: ManualClock) -> None:
    from questline.challenges.tasks import trim_progress
    from questline.kit.db import unit_of_work
    from questline.roles import build_scheduler

    assert "challenges.trim_progress" in build_scheduler(runtime).jobs
    keys = await factory.app()
    await configure(client, keys, {"three-workouts": workouts(3), "first": workouts(5, recurrence="one_time")})
    await send(client, keys, event("t", "2026-03-10T08:00:00Z"))
    await settle(runtime)
    async def progress_rows() -> int:  # this app's rows only: the PostgreSQL database is shared by tests
        import sqlalchemy as sa

        from questline.challenges.models import ChallengeProgress

        async with runtime.read_sessions() as session:
            query = sa.select(sa.func.count()).select_from(ChallengeProgress).where(
                ChallengeProgress.app_id == keys.app_id)
            return int((await session.execute(query)).scalar_one())

    before = await progress_rows()
    async with unit_of_work(runtime.sessions) as session:
        await trim_progress(session, datetime(2026, 5, 10, 12, 0, tzinfo=UTC))
    assert await progress_rows() == before  # 61 days: kept
    async with unit_of_work(runtime.sessions) as session:
        await trim_progress(session, datetime(2026, 5, 11, 12, 1, tzinfo=UTC))
    assert await progress_rows() == before - 1  # the day's row
    clock.set(datetime(2026, 3, 10, 13, 0, tzinfo=UTC))
    view = await challenges(client, keys, "t")
    assert view["three-workouts"]["objectives"][0]["current"] == 0  # that day's progress is forgotten ...
    assert view["first"]["objectives"][0]["current"] == 1  # ... a one-time challenge's is not
