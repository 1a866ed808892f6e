"""Streaks: local days at the edges of the world's time zones, freezes, rest days, milestones, the break job."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import httpx
import sqlalchemy as sa

from questline.kit.clock import ManualClock
from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from questline.pipeline.models import EventRecord
from questline.pipeline.replay import start_replay
from questline.pipeline.worker import drain
from questline.streaks.processor import CHECK_EVENT
from questline.streaks.tasks import request_checks
from tests.conftest import Factory, problem
from tests.ledger.helpers import grant
from tests.pipeline.helpers import recorded_statements
from tests.streaks.helpers import balance, configure, daily, event, outbox, play, player, streak, tick


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


async def test_kiritimati_days_turn_at_local_midnight_and_the_job_breaks_on_time(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    await configure(client, keys, streak={"daily": daily()})
    await player(client, keys, "kiri", "Pacific/Kiritimati")  # UTC+14: local midnight is 10:00 UTC
    clock.set(at("2026-03-09T12:00:00Z"))
    # One second apart, but on two local days: 03-09 23:59:59 and 03-10 00:00:00.
    await play(client, keys, runtime, event("kiri", "2026-03-09T09:59:59Z"), event("kiri", "2026-03-09T10:00:00Z"))
    state = await streak(client, keys, "kiri")
    assert (state["current"], state["longest"]) == (2, 2)
    assert (state["started_period"], state["last_active_period"]) == ("2026-03-09", "2026-03-10")
    # Still local 03-10 (23:59): the same period changes nothing.
    await play(client, keys, runtime, event("kiri", "2026-03-10T09:59:00Z"))
    state = await streak(client, keys, "kiri")
    assert state["current"] == 2
    # Local 03-11 passes without play: the streak ends at local 03-12 00:00 = 2026-03-11T10:00Z.
    assert at(state["breaks_at"]) == at("2026-03-11T10:00:00Z")

    clock.set(at("2026-03-11T09:59:00Z"))
    await tick(runtime)
    assert (await streak(client, keys, "kiri"))["current"] == 2
    assert await outbox(client, keys, "streak.broken") == []

    clock.set(at("2026-03-11T10:00:00Z"))
    assert "streaks.check_breaks" in await tick(runtime)
    state = await streak(client, keys, "kiri")
    assert (state["current"], state["longest"], state["breaks_at"]) == (0, 2, None)
    broken = await outbox(client, keys, "streak.broken")
    assert [b["data"]["length"] for b in broken] == [2]
    assert broken[0]["data"]["last_active_period"] == "2026-03-10"

    # Idempotent: later runs find nothing to break and announce nothing again.
    for minutes in (1, 2):
        clock.set(at(f"2026-03-11T10:0{minutes}:00Z"))
        await tick(runtime)
    assert len(await outbox(client, keys, "streak.broken")) == 1


async def test_utc_minus_12_local_days_and_milestone_reward(client: httpx.AsyncClient, factory: Factory,
                                                           runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    await configure(client, keys, streak={"daily": daily()})
    await player(client, keys, "baker", "Etc/GMT+12")  # UTC-12: local midnight is 12:00 UTC
    clock.set(at("2026-03-12T13:00:00Z"))
    await play(client, keys, runtime, event("baker", "2026-03-10T11:59:59Z"),  # local 03-09 23:59:59
               event("baker", "2026-03-10T12:00:00Z"))  # local 03-10 00:00
    assert (await streak(client, keys, "baker"))["current"] == 2
    assert await balance(client, keys, "baker") == 0
    await play(client, keys, runtime, event("baker", "2026-03-12T11:59:59Z"))  # local 03-11 23:59:59
    state = await streak(client, keys, "baker")
    assert (state["current"], state["next_milestone"]) == (3, 7)
    assert await balance(client, keys, "baker") == 100
    milestones = await outbox(client, keys, "streak.milestone")
    assert [(m["data"]["milestone"], m["data"]["started_period"]) for m in milestones] == [(3, "2026-03-09")]
    assert state["active_this_period"] is False  # it is local 03-12 01:00 now
    assert at(state["breaks_at"]) == at("2026-03-13T12:00:00Z")  # local 03-13 00:00


async def test_milestone_paid_once_per_streak_even_through_replay(client: httpx.AsyncClient, factory: Factory,
                                                                  runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    await configure(client, keys, streak={"daily": daily()})
    clock.set(at("2026-03-20T00:00:00Z"))
    days = ["2026-03-10", "2026-03-11", "2026-03-12", "2026-03-13"]
    await play(client, keys, runtime, *[event("ann", f"{d}T08:00:00Z") for d in days])
    assert await balance(client, keys, "ann") == 100

    await start_replay(runtime, keys.app_id)
    await drain(runtime)
    state = await streak(client, keys, "ann")
    assert (state["current"], state["longest"]) == (4, 4)
    assert await balance(client, keys, "ann") == 100
    assert len(await outbox(client, keys, "streak.milestone")) == 1  # replays announce nothing

    # A gap breaks it; the next streak reaching 3 earns the milestone again.
    again = ["2026-03-16", "2026-03-17", "2026-03-18"]
    await play(client, keys, runtime, *[event("ann", f"{d}T08:00:00Z") for d in again])
    state = await streak(client, keys, "ann")
    assert (state["current"], state["longest"], state["started_period"]) == (3, 4, "2026-03-16")
    assert await balance(client, keys, "ann") == 200
    assert [b["data"]["length"] for b in await outbox(client, keys, "streak.broken")] == [4]


async def test_freezes_bought_cover_a_missed_day_and_are_used_automatically(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    await configure(client, keys, streak={"daily": daily()})
    await play(client, keys, runtime, event("fay", "2026-03-10T08:00:00Z"))
    assert (await grant(client, keys, "fay", 120)).status_code == 201
    me = await factory.player_token(keys, "fay")

    def buying(who: dict[str, str], key: str | None = None) -> dict[str, str]:
        return {**who, "Idempotency-Key": key or uuid.uuid4().hex}

    first = await client.post("/v1/players/fay/streaks/daily/freezes", headers=buying(me, "buy-1"))
    assert first.status_code == 201, first.text
    assert (first.json()["freezes_available"], first.json()["balance"]) == (1, 70)
    again = await client.post("/v1/players/fay/streaks/daily/freezes", headers=buying(me, "buy-1"))
    assert again.json() == first.json()  # a retry with the same key buys nothing more
    assert (await client.post("/v1/players/fay/streaks/daily/freezes",
                              headers=buying(keys.server))).status_code == 201
    problem(await client.post("/v1/players/fay/streaks/daily/freezes", headers=buying(me)), 409, "freezes_full")
    assert await balance(client, keys, "fay") == 20
    state = await streak(client, keys, "fay")
    assert state["freezes_available"] == 2
    # Two freezes carry the streak through 03-11 and 03-12: it breaks at 03-14 00:00 UTC.
    assert at(state["breaks_at"]) == at("2026-03-14T00:00:00Z")

    # 03-11 passes: at midnight the job keeps the streak with one freeze.
    clock.set(at("2026-03-12T00:00:00Z"))
    await tick(runtime)
    state = await streak(client, keys, "fay")
    assert (state["current"], state["freezes_available"]) == (1, 1)
    kept = [m["data"] for m in await outbox(client, keys, "streak.updated") if m["data"].get("freezes_used")]
    assert kept == [{"streak": "daily", "current": 1, "longest": 1, "period": "2026-03-11", "freezes_available": 1,
                     "freezes_used": 1, "rest_days": 0}]
    # 03-12 missed too, then play on 03-13: the last freeze covers the gap and the streak grows.
    clock.set(at("2026-03-13T10:00:00Z"))
    await play(client, keys, runtime, event("fay", "2026-03-13T09:00:00Z"))
    state = await streak(client, keys, "fay")
    assert (state["current"], state["freezes_available"]) == (2, 0)
    assert await outbox(client, keys, "streak.broken") == []


async def test_freeze_purchase_refusals_change_nothing(client: httpx.AsyncClient, factory: Factory,
                                                       runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys, streak={"daily": daily(), "free": daily(freezes={"max_held": 1})})
    await player(client, keys, "gus")
    headers = {**keys.server, "Idempotency-Key": "k1"}
    body = problem(await client.post("/v1/players/gus/streaks/daily/freezes", headers=headers), 409,
                   "insufficient_funds")
    assert body["shortfall"] == 50
    assert (await streak(client, keys, "gus"))["freezes_available"] == 0
    problem(await client.post("/v1/players/gus/streaks/free/freezes", headers={**keys.server, "Idempotency-Key": "k2"}),
            409, "freezes_not_for_sale")
    problem(await client.post("/v1/players/gus/streaks/nope/freezes", headers={**keys.server, "Idempotency-Key": "k3"}),
            404, "streak_not_found")
    problem(await client.post("/v1/players/gus/streaks/daily/freezes", headers=keys.server), 400,
            "idempotency_key_required")
    other = await factory.player_token(keys, "hal")
    problem(await client.post("/v1/players/gus/streaks/daily/freezes", headers={**other, "Idempotency-Key": "k4"}),
            404)
    client_key = {**keys.client, "Idempotency-Key": "k5"}
    problem(await client.post("/v1/players/gus/streaks/daily/freezes", headers=client_key), 403, "caller_not_allowed")


async def test_rest_days_excuse_missed_days_without_freezes(client: httpx.AsyncClient, factory: Factory,
                                                            runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    await configure(client, keys, streak={"daily": daily()})
    await player(client, keys, "ivy", "Europe/Paris")
    clock.set(at("2026-03-10T08:00:00Z"))  # Tuesday 09:00 in Paris
    await play(client, keys, runtime, event("ivy", "2026-03-10T08:00:00Z"))
    me = await factory.player_token(keys, "ivy")
    resp = await client.put("/v1/players/ivy/streaks/daily/rest-days", headers=me,
                            json={"days": ["2026-03-11", "2026-03-14"]})
    assert resp.status_code == 200, resp.text
    assert resp.json()["rest_days"] == ["2026-03-11", "2026-03-14"]
    # Wednesday is a rest day, so the streak lasts until Thursday ends (Friday 00:00 Paris = 23:00 UTC).
    assert at(resp.json()["breaks_at"]) == at("2026-03-12T23:00:00Z")

    clock.set(at("2026-03-11T23:00:00Z"))  # Thursday 00:00 in Paris: Wednesday passed, excused
    await tick(runtime)
    state = await streak(client, keys, "ivy")
    assert (state["current"], state["freezes_available"]) == (1, 0)
    await play(client, keys, runtime, event("ivy", "2026-03-12T10:00:00Z"))  # Thursday
    assert (await streak(client, keys, "ivy"))["current"] == 2

    clock.set(at("2026-03-13T23:00:00Z"))  # Saturday 00:00: Friday was missed and not a rest day
    await tick(runtime)
    state = await streak(client, keys, "ivy")
    assert (state["current"], state["longest"]) == (0, 2)
    assert len(await outbox(client, keys, "streak.broken")) == 1


async def test_rest_day_rules(client: httpx.AsyncClient, factory: Factory, runtime: Runtime,
                              clock: ManualClock) -> None:
    keys = await factory.app()
    await configure(client, keys, streak={"daily": daily(), "weekly": daily(cadence="weekly", rest_days_per_week=0)})
    await player(client, keys, "jo")
    clock.set(at("2026-03-10T12:00:00Z"))

    async def put(days: list[str], key: str = "daily") -> httpx.Response:
        return await client.put(f"/v1/players/jo/streaks/{key}/rest-days", headers=keys.server, json={"days": days})

    problem(await put(["2026-03-10"]), 422, "rest_day_not_in_future")
    problem(await put(["2026-03-11", "2026-03-12", "2026-03-13"]), 422, "too_many_rest_days")
    problem(await put(["2027-06-01"]), 422, "rest_day_too_far")
    problem(await put(["2026-03-11"], "weekly"), 409, "rest_days_not_allowed")
    problem(await put(["not-a-date"]), 422, "validation_failed")
    assert (await put(["2026-03-11", "2026-03-16", "2026-03-17"])).status_code == 200  # two ISO weeks
    assert (await streak(client, keys, "jo"))["rest_days"] == ["2026-03-11", "2026-03-16", "2026-03-17"]
    # Replacing keeps the ones already past and counts them toward their week.
    clock.set(at("2026-03-11T12:00:00Z"))
    problem(await put(["2026-03-12", "2026-03-13"]), 422, "too_many_rest_days")
    assert (await put(["2026-03-13"])).status_code == 200
    assert (await streak(client, keys, "jo"))["rest_days"] == ["2026-03-11", "2026-03-13"]


async def test_freeze_grants_by_rule_and_weekly_cadence(client: httpx.AsyncClient, factory: Factory,
                                                        runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    weekly = {"name": "Weekly raid", "event_types": ["raid.done"], "cadence": "weekly",
              "freezes": {"max_held": 2},
              "freeze_grants": [{"event_type": "quest.done", "count": 1,
                                 "filter": {"field": "data.hard", "op": "eq", "value": True}}]}
    await configure(client, keys, streak={"raids": weekly})
    clock.set(at("2026-04-30T00:00:00Z"))
    await play(client, keys, runtime, event("kim", "2026-03-02T10:00:00Z", "raid.done"),  # 2026-W10
               event("kim", "2026-03-09T10:00:00Z", "raid.done"),  # W11
               event("kim", "2026-03-10T10:00:00Z", "quest.done", hard=False),
               *[event("kim", "2026-03-10T11:00:00Z", "quest.done", hard=True) for _ in range(3)])
    state = await streak(client, keys, "kim", "raids")
    assert (state["current"], state["last_active_period"], state["freezes_available"]) == (2, "2026-W11", 2)
    assert len(await outbox(client, keys, "streak.freeze_granted")) == 2  # the cap stops the third
    # W12 and W13 missed: two freezes cover them; W14 continues.
    await play(client, keys, runtime, event("kim", "2026-03-30T10:00:00Z", "raid.done"))
    state = await streak(client, keys, "kim", "raids")
    assert (state["current"], state["freezes_available"]) == (3, 0)
    # W15 and W16 missed with no freezes left: W17 starts over.
    await play(client, keys, runtime, event("kim", "2026-04-20T10:00:00Z", "raid.done"))
    state = await streak(client, keys, "kim", "raids")
    assert (state["current"], state["longest"], state["started_period"]) == (1, 3, "2026-W17")


async def test_streak_metrics_feed_conditions(client: httpx.AsyncClient, factory: Factory, runtime: Runtime,
                                              clock: ManualClock) -> None:
    keys = await factory.app()
    await configure(client, keys, streak={"daily": daily()},
                    stat={"long_plays": {"event_type": "session.played",
                                         "filter": {"metric": "streak.daily.current", "op": "gte", "value": 2}}})
    clock.set(at("2026-03-20T00:00:00Z"))
    await play(client, keys, runtime, *[event("lee", f"2026-03-1{d}T08:00:00Z") for d in (1, 2, 3)])
    resp = await client.get("/v1/players/lee/stats", headers=keys.server, params={"at": "2026-03-13T09:00:00Z"})
    # Stats run before streaks: each play sees the streak as the previous plays left it (0, 1, 2).
    assert resp.json()["long_plays"]["all"] == 1


async def test_bad_streak_definitions_are_refused(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await configure(client, keys)

    async def put(body: dict[str, object]) -> httpx.Response:
        return await client.put("/v1/definitions/streak/s", headers=keys.server, json=body)

    base: dict[str, object] = {"event_types": ["a"]}
    cases: list[tuple[dict[str, object], str]] = [
        ({**base, "milestones": [7, 3]}, "strictly increasing"),
        ({**base, "cadence": "weekly", "rest_days_per_week": 1}, "daily streaks only"),
        ({**base, "rest_days_per_week": 3}, "less than or equal to 2"),
        ({**base, "freezes": {"cost": 10}}, "max_held"),
        ({**base, "freeze_grants": [{"event_type": "b"}]}, "max_held"),
        ({**base, "milestones": [{"at": 3, "reward": {"currency": "gems", "amount": 5}}]}, "unknown currency 'gems'"),
        ({"event_types": []}, "at least 1"),
        ({**base, "filter": {"stat": "nope", "op": "gte", "value": 1}}, "unknown stat 'nope'"),
    ]
    for body, message in cases:
        found = problem(await put(body), 422, "invalid_definition")
        assert any(message in e["msg"] for e in found["errors"]), (body, found)


async def test_parallel_freeze_purchases_stop_at_the_cap(client: httpx.AsyncClient, factory: Factory,
                                                         runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys, streak={"daily": daily()})
    assert (await grant(client, keys, "max", 1000)).status_code == 201
    replies = await asyncio.gather(*[
        client.post("/v1/players/max/streaks/daily/freezes", headers={**keys.server, "Idempotency-Key": f"p{i}"})
        for i in range(6)
    ])
    assert sorted(r.status_code for r in replies) == [201, 201, 409, 409, 409, 409]
    assert {r.json()["code"] for r in replies if r.status_code == 409} == {"freezes_full"}
    assert (await streak(client, keys, "max"))["freezes_available"] == 2
    assert await balance(client, keys, "max") == 900


async def test_moving_west_postpones_the_break_to_the_new_local_midnight(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    await configure(client, keys, streak={"daily": daily()})
    await play(client, keys, runtime, event("nia", "2026-03-10T08:00:00Z"))
    assert at((await streak(client, keys, "nia"))["breaks_at"]) == at("2026-03-12T00:00:00Z")
    await player(client, keys, "nia", "Etc/GMT+12")  # now UTC-12: it is still 03-11 there at 03-12T00:00Z
    clock.set(at("2026-03-12T00:00:00Z"))
    await tick(runtime)
    assert (await streak(client, keys, "nia"))["current"] == 1
    clock.set(at("2026-03-12T11:59:00Z"))
    await tick(runtime)
    assert (await streak(client, keys, "nia"))["current"] == 1
    clock.set(at("2026-03-12T12:00:00Z"))  # local 03-12 00:00 in the new zone
    await tick(runtime)
    assert (await streak(client, keys, "nia"))["current"] == 0
    assert len(await outbox(client, keys, "streak.broken")) == 1


async def test_the_break_job_appends_every_due_check_with_one_insert(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock) -> None:
    async def checks() -> dict[str, int]:
        async with runtime.read_sessions() as session:
            rows = await session.execute(sa.select(EventRecord.app_id, sa.func.count()).where(
                EventRecord.app_id.in_([keys.app_id for keys in apps]), EventRecord.type == CHECK_EVENT)
                .group_by(EventRecord.app_id))
            return {app_id: int(n) for app_id, n in rows}

    # 2001: before any other test's streaks, so the shared database's other due checks stay out.
    apps = [await factory.app() for _ in range(2)]
    clock.set(at("2001-05-01T12:00:00Z"))
    for keys in apps:
        await configure(client, keys, streak={"daily": daily(rest_days_per_week=0)})
        await play(client, keys, runtime, *(event(f"p{i}", "2001-05-01T09:00:00Z") for i in range(3)))
    clock.set(at("2001-05-03T00:00:01Z"))  # 05-02 passed without play: every streak is due a check
    with recorded_statements(runtime) as seen:
        async with unit_of_work(runtime.sessions) as session:
            assert await request_checks(session, runtime, clock.now()) == 6
    # One read of what is due, one players check per app, one insert of all six.
    assert len([s for s in seen if s.startswith("INSERT INTO events")]) == 1
    assert len(seen) == 1 + len(apps) + 1
    assert await checks() == {keys.app_id: 3 for keys in apps}
    # Again before the worker ran them: the same ids, nothing appended twice.
    async with unit_of_work(runtime.sessions) as session:
        assert await request_checks(session, runtime, clock.now()) == 6
    assert await checks() == {keys.app_id: 3 for keys in apps}
    await tick(runtime)
    for keys in apps:
        assert [(await streak(client, keys, f"p{i}"))["current"] for i in range(3)] == [0, 0, 0]
