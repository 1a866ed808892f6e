from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime

import httpx
import sqlalchemy as sa

from questline.competitions import service as competitions
from questline.competitions import tasks as competitions_tasks
from questline.kit.clock import ManualClock
from questline.kit.db import unit_of_work
from questline.kit.jobs import Scheduler
from questline.kit.runtime import Runtime
from questline.leaderboards import tasks as leaderboards_tasks
from tests.competitions.helpers import (
    balance,
    competition,
    create,
    fund,
    join,
    outbox,
    tick,
    trade,
    trades,
)
from tests.conftest import Factory, problem


def at(hour: int, minute: int = 0, second: int = 0, day: int = 10) -> datetime:
    return datetime(2026, 3, day, hour, minute, second, tzinfo=UTC)


def iso(hour: int, minute: int = 0, day: int = 10) -> str:
    return at(hour, minute, day=day).isoformat().replace("+00:00", "Z")


CUP = competition(iso(13), iso(15), entry={"fee": {"currency": "points", "amount": 100}, "max_participants": 3},
                  prizes={"sponsor_amount": 1000, "tiers": [
                      {"from_rank": 1, "percent": 50}, {"from_rank": 2, "percent": 30},
                      {"from_rank": 3, "item": "trophy"}]})


async def test_cup_from_entry_to_prizes_rollback_and_redistribution(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    await fund(client, keys, {"alice": 500, "bob": 500, "carol": 500, "dave": 500})
    cup = await create(client, keys, CUP)
    cid = cup["id"]
    assert cup["status"] == "upcoming" and cup["pool"] == 1000

    for who in ("alice", "bob", "carol"):
        assert (await join(client, keys, cid, who)).status_code == 201
    again = await join(client, keys, cid, "alice")
    assert again.status_code == 200  # entering twice takes no second fee
    problem(await join(client, keys, cid, "dave"), 409, "competition_full")
    assert [await balance(client, keys, p) for p in ("alice", "bob", "carol", "dave")] == [400, 400, 400, 500]

    await trades(client, keys, runtime, [trade("alice", 999, iso(12, 30))])  # before the start: not counted
    assert (await tick(runtime, clock, at(13, 0, 5)))["started"] == 1
    assert (await client.get(f"/v1/competitions/{cid}", headers=keys.client)).json()["status"] == "active"
    await trades(client, keys, runtime, [
        trade("alice", 100, iso(13, 10)), trade("bob", 300, iso(13, 20)), trade("carol", 100, iso(13, 30)),
        trade("alice", 200, iso(13, 40)), trade("eve", 1000, iso(13, 45)),  # eve never entered
    ])
    board = (await client.get(f"/v1/competitions/{cid}/leaderboard", headers=keys.client)).json()
    assert [(e["rank"], e["player_id"], e["score"]) for e in board["items"]] == [
        (1, "bob", 300), (2, "alice", 300), (3, "carol", 100)]  # bob reached 300 first
    assert board["resets_at"] == "2026-03-10T15:00:00Z"
    leaders = await outbox(client, keys, "competition.top_changed")
    assert leaders[-1]["data"]["leaders"][0]["player_id"] == "bob"

    await tick(runtime, clock, at(15, 0, 5))
    done = (await client.get(f"/v1/competitions/{cid}", headers=keys.server)).json()
    assert done["status"] == "completed" and done["distribution_status"] == "distributed" and done["pool"] == 1300
    # 50% and 30% of 1300; the trophy goes into carol's inventory through the shop's grant path.
    assert [await balance(client, keys, p) for p in ("bob", "alice", "carol")] == [1050, 790, 400]
    dists = (await client.get(f"/v1/competitions/{cid}/distributions", headers=keys.server)).json()
    assert len(dists) == 1
    prizes = {p["rank"]: p for p in dists[0]["prizes"]}
    assert (prizes[1]["player_id"], prizes[1]["amount"], prizes[1]["status"]) == ("bob", 650, "claimed")
    assert (prizes[3]["kind"], prizes[3]["item"], prizes[3]["fulfilment"]) == ("item", "trophy", "completed")
    inventory = (await client.get("/v1/players/carol/inventory", headers=keys.server)).json()
    assert [(i["item"], i["quantity"]) for i in inventory["items"]] == [("trophy", 1)]

    # Again (a second tick, an admin retry): nothing is paid twice.
    await tick(runtime, clock, at(15, 1))
    again_dist = await client.post(f"/v1/competitions/{cid}/distributions", headers=keys.server)
    assert again_dist.status_code == 200 and again_dist.json()["batch"] == 1
    assert await balance(client, keys, "bob") == 1050
    types = [m["type"] for m in await outbox(client, keys, "competition.")]
    assert types.count("competition.started") == 1 and types.count("competition.ended") == 1
    assert types.count("competition.prizes_distributed") == 1

    # Roll back: compensating entries take the points back; twice is once.
    body = {"reason": "volume from a wash-trading ring"}
    rolled = await client.post(f"/v1/competitions/{cid}/distributions/1/rollback", headers=keys.server, json=body)
    assert rolled.status_code == 200 and rolled.json()["status"] == "rolled_back"
    assert {p["status"] for p in rolled.json()["prizes"]} == {"rolled_back"}
    assert [await balance(client, keys, p) for p in ("bob", "alice")] == [400, 400]
    again_rb = await client.post(f"/v1/competitions/{cid}/distributions/1/rollback", headers=keys.server, json=body)
    assert again_rb.status_code == 200 and await balance(client, keys, "bob") == 400

    # Disqualify the cheat and distribute again: a new batch with its own ledger keys.
    assert (await client.post(f"/v1/competitions/{cid}/participants/bob/disqualify",
                              headers=keys.server)).json()["status"] == "disqualified"
    second = (await client.post(f"/v1/competitions/{cid}/distributions", headers=keys.server)).json()
    assert second["batch"] == 2
    assert [(p["rank"], p["player_id"], p["amount"]) for p in second["prizes"]] == [
        (1, "alice", 650), (2, "carol", 390)]
    assert [await balance(client, keys, p) for p in ("alice", "bob", "carol")] == [1050, 400, 790]
    history = (await client.get("/v1/players/bob/prizes/history", headers=keys.server)).json()["items"]
    assert [h["action"] for h in history] == ["rolled_back", "claimed", "awarded"]
    async with unit_of_work(runtime.sessions) as session:
        keys_used = set((await session.execute(sa.text(
            "SELECT idempotency_key FROM ledger_transactions WHERE app_id = :a"), {"a": keys.app_id})).scalars())
    assert {f"prize:{cid}:1:bob", f"prize-rollback:{cid}:1:bob", f"prize:{cid}:1:alice:b2",
            f"competition-fee:{cid}:alice"} <= keys_used

    # Analytics and CSV export.
    stats = (await client.get(f"/v1/competitions/{cid}/analytics", headers=keys.server)).json()
    assert stats["participants"] == 3 and sum(p["joins"] for p in stats["timeline"]) == 3
    assert sum(p["events"] for p in stats["timeline"]) == 4 and sum(p["volume"] for p in stats["timeline"]) == 700
    assert stats["timeline"][-1]["participants"] == 3
    resp = await client.get(f"/v1/competitions/{cid}/export", headers=keys.server, params={"dataset": "prizes"})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert [(r["batch"], r["rank"], r["player_id"], r["status"]) for r in rows] == [
        ("1", "1", "bob", "rolled_back"), ("1", "2", "alice", "rolled_back"), ("1", "3", "carol", "rolled_back"),
        ("2", "1", "alice", "claimed"), ("2", "2", "carol", "claimed")]
    part = await client.get(f"/v1/competitions/{cid}/export", headers=keys.server,
                            params={"dataset": "participants"})
    assert [r["player_id"] for r in csv.DictReader(io.StringIO(part.text))] == ["alice", "bob", "carol"]


async def test_manual_claims_own_prize_before_the_deadline(client: httpx.AsyncClient, factory: Factory,
                                                           runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    await fund(client, keys, {"nobody": 1})
    cid = (await create(client, keys, competition(iso(13), iso(14), prizes={
        "sponsor_amount": 300, "claim": "manual", "claim_window_hours": 24,
        "tiers": [{"from_rank": 1, "to_rank": 2, "points": 100},
                  {"from_rank": 3, "external": {"sku": "hoodie"}}]})))["id"]
    for who in ("ann", "ben", "cy"):
        assert (await join(client, keys, cid, who)).status_code == 201
    await trades(client, keys, runtime, [trade("ann", 30, iso(13, 5)), trade("ben", 20, iso(13, 6)),
                                         trade("cy", 10, iso(13, 7))])
    await tick(runtime, clock, at(14, 0, 1))
    ann, ben = await factory.player_token(keys, "ann"), await factory.player_token(keys, "ben")
    mine = (await client.get("/v1/players/ann/prizes", headers=ann)).json()["items"]
    assert len(mine) == 1 and mine[0]["status"] == "claimable" and mine[0]["claim_deadline"] == "2026-03-11T14:00:01Z"
    ben_prize = (await client.get("/v1/players/ben/prizes", headers=ben)).json()["items"][0]
    assert await balance(client, keys, "ann") == 0

    # Someone else's prize does not exist for you, whichever way you ask.
    problem(await client.post(f"/v1/players/ann/prizes/{ben_prize['id']}/claim", headers=ann), 404, "prize_not_found")
    problem(await client.post(f"/v1/players/ben/prizes/{ben_prize['id']}/claim", headers=ann), 404)
    problem(await client.get("/v1/players/ben/prizes", headers=ann), 404)

    claimed = await client.post(f"/v1/players/ann/prizes/{mine[0]['id']}/claim", headers=ann)
    assert claimed.status_code == 200 and claimed.json()["status"] == "claimed"
    assert await balance(client, keys, "ann") == 100
    problem(await client.post(f"/v1/players/ann/prizes/{mine[0]['id']}/claim", headers=ann), 409,
            "prize_already_claimed")

    clock.set(at(14, 0, 1, day=11))  # the deadline
    ben = await factory.player_token(keys, "ben")
    problem(await client.post(f"/v1/players/ben/prizes/{ben_prize['id']}/claim", headers=ben), 410,
            "claim_deadline_passed")
    assert await balance(client, keys, "ben") == 0
    await tick(runtime, clock, at(14, 1, day=11))
    assert (await client.get("/v1/players/ben/prizes", headers=ben)).json()["items"][0]["status"] == "expired"
    problem(await client.post(f"/v1/players/ben/prizes/{ben_prize['id']}/claim", headers=ben), 410)
    history = (await client.get("/v1/players/ben/prizes/history", headers=ben)).json()["items"]
    assert [h["action"] for h in history] == ["expired", "awarded"]
    cy = (await client.get("/v1/players/cy/prizes", headers=keys.server)).json()["items"][0]
    assert (cy["kind"], cy["data"], cy["status"]) == ("external", {"sku": "hoodie"}, "expired")


async def test_two_schedulers_move_each_competition_once(client: httpx.AsyncClient, factory: Factory,
                                                         runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    await fund(client, keys, {"ann": 100, "ben": 100})
    # Its own day: job claims are per job and period, shared by every test on one database.
    clock.set(at(12, day=20))
    cid = (await create(client, keys, competition(iso(13, day=20), iso(14, day=20), prizes={
        "sponsor_amount": 50, "tiers": [{"from_rank": 1, "points": 50}]})))["id"]
    for who in ("ann", "ben"):
        await join(client, keys, cid, who)
    await trades(client, keys, runtime, [trade("ann", 5, iso(13, 5, day=20)), trade("ben", 9, iso(13, 6, day=20))])

    other = Runtime.build(runtime.settings, clock)  # a second process: its own engine and pool
    try:
        def scheduler(rt: Runtime, name: str) -> Scheduler:
            s = Scheduler(rt.sessions, rt.clock, worker_name=name)
            competitions_tasks.register_jobs(s, rt)
            leaderboards_tasks.register_jobs(s, rt)
            return s

        first, second = scheduler(runtime, "one"), scheduler(other, "two")
        for moment in (at(13, 0, 1, day=20), at(14, 0, 1, day=20), at(14, 0, 30, day=20)):
            clock.set(moment)
            ran = await asyncio.gather(first.tick(), second.tick())
            assert sum("competitions.lifecycle" in r for r in ran) == 1
        # The conditional updates alone also keep it once: the service called in parallel, outside the job claim.
        async def advance(rt: Runtime) -> dict[str, int]:
            async with unit_of_work(rt.sessions) as session:
                return await competitions.advance(session, rt, at(14, 5, day=20))
        await asyncio.gather(advance(runtime), advance(other))
    finally:
        await other.close()
    types = [m["type"] for m in await outbox(client, keys, "competition.")]
    assert types.count("competition.started") == 1 and types.count("competition.ended") == 1
    assert types.count("competition.prizes_distributed") == 1
    assert await balance(client, keys, "ben") == 150  # 100 granted, no fee, the 50-point prize once
    dists = (await client.get(f"/v1/competitions/{cid}/distributions", headers=keys.server)).json()
    assert len(dists) == 1 and len(dists[0]["prizes"]) == 1


async def test_parallel_joins_fill_exactly_the_places(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await fund(client, keys, {f"p{i}": 10 for i in range(12)})
    cid = (await create(client, keys, competition(iso(13), iso(14), entry={
        "fee": {"currency": "points", "amount": 10}, "max_participants": 5})))["id"]
    replies = await asyncio.gather(*(join(client, keys, cid, f"p{i}") for i in range(12)))
    codes = sorted(r.status_code for r in replies)
    assert codes == [201] * 5 + [409] * 7, [r.text for r in replies if r.status_code not in (201, 409)]
    got = (await client.get(f"/v1/competitions/{cid}", headers=keys.server)).json()
    assert got["participants"] == 5 and got["fees_collected"] == 50
    paid = sum([1 for i in range(12) if await balance(client, keys, f"p{i}") == 0])
    assert paid == 5


async def test_entry_requirements_and_fees(client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    await fund(client, keys, {"rich": 1000, "poor": 5})
    resp = await client.post("/v1/definitions:bulk", headers=keys.server, json={"definitions": {
        "xp_track": {"xp": {"name": "XP", "curve": {"type": "linear", "base": 100}}},
        "xp_rule": {"play": {"track": "xp", "event_type": "played", "amount": 100}}}})
    assert resp.status_code == 200, resp.text
    cid = (await create(client, keys, competition(iso(13), iso(14), entry={
        "fee": {"currency": "points", "amount": 50}, "min_level": {"track": "xp", "level": 2},
        "gating": {"traits": {"community": "guild-7"}}})))["id"]
    denied = problem(await join(client, keys, cid, "rich"), 403, "gated")
    assert denied["unmet"] == ["trait community = 'guild-7'"]
    await client.put("/v1/players/rich/account", headers=keys.server, json={"traits": {"community": "guild-7"}})
    await client.put("/v1/players/poor/account", headers=keys.server, json={"traits": {"community": "guild-7"}})
    denied = problem(await join(client, keys, cid, "rich"), 403, "entry_requirements_not_met")
    assert denied["unmet"] == ["level 2 on xp (has 1)"]
    await trades(client, keys, runtime, [{"id": f"pl-{p}", "player_id": p, "type": "played", "data": {}}
                                         for p in ("rich", "poor")])
    problem(await join(client, keys, cid, "poor"), 409, "insufficient_funds")
    assert await balance(client, keys, "poor") == 5
    # A player enters themself with their own token, and only themself.
    rich = await factory.player_token(keys, "rich")
    assert (await join(client, keys, cid, "rich", headers=rich)).status_code == 201
    problem(await join(client, keys, cid, "poor", headers=rich), 404)
    assert await balance(client, keys, "rich") == 950
    problem(await client.post("/v1/competitions", headers=keys.server, json=competition(
        iso(13), iso(14), entry={"fee": {"currency": "gems", "amount": 5}})), 422, "unknown_currency")
    problem(await client.post("/v1/competitions", headers=keys.server, json=competition(
        iso(13), iso(14), prizes={"tiers": [{"from_rank": 1, "to_rank": 3, "percent": 40}]})), 422)
    problem(await client.get("/v1/competitions/cmp_nope", headers=keys.server), 404, "competition_not_found")


async def test_cancel_refunds_and_end_early(client: httpx.AsyncClient, factory: Factory, runtime: Runtime,
                                            clock: ManualClock) -> None:
    keys = await factory.app()
    await fund(client, keys, {"ann": 100, "ben": 100})
    fee = {"fee": {"currency": "points", "amount": 40}}
    cid = (await create(client, keys, competition(iso(13), iso(15), entry=fee)))["id"]
    for who in ("ann", "ben"):
        await join(client, keys, cid, who)
    assert await balance(client, keys, "ann") == 60
    cancelled = await client.post(f"/v1/competitions/{cid}/cancel", headers=keys.server,
                                  json={"reason": "server outage"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert [await balance(client, keys, p) for p in ("ann", "ben")] == [100, 100]
    problem(await client.post(f"/v1/competitions/{cid}/cancel", headers=keys.server, json={"reason": "again"}), 409,
            "competition_not_running")
    problem(await join(client, keys, cid, "cat"), 409, "competition_closed")

    cid2 = (await create(client, keys, competition(iso(13), iso(15), entry=fee, prizes={
        "tiers": [{"from_rank": 1, "percent": 100}]})))["id"]
    for who in ("ann", "ben"):
        await join(client, keys, cid2, who)
    await tick(runtime, clock, at(13, 0, 1))
    await trades(client, keys, runtime, [trade("ben", 3, iso(13, 10))])
    clock.set(at(13, 30))
    ended = (await client.post(f"/v1/competitions/{cid2}/end", headers=keys.server)).json()
    assert ended["status"] == "completed" and ended["ends_at"] == "2026-03-10T13:30:00Z"
    assert await balance(client, keys, "ben") == 60 + 80  # the whole pool of fees
    await trades(client, keys, runtime, [trade("ann", 50, iso(13, 31))])  # too late: nothing moves
    board = (await client.get(f"/v1/competitions/{cid2}/leaderboard", headers=keys.server)).json()
    assert [(e["player_id"], e["score"]) for e in board["items"]] == [("ben", 3)]


async def test_prizes_beyond_the_pool_are_refused(client: httpx.AsyncClient, factory: Factory, runtime: Runtime,
                                                  clock: ManualClock) -> None:
    keys = await factory.app()
    await fund(client, keys, {"ann": 1})
    cid = (await create(client, keys, competition(iso(13), iso(14), prizes={
        "sponsor_amount": 10, "tiers": [{"from_rank": 1, "points": 500}]})))["id"]
    await join(client, keys, cid, "ann")
    await trades(client, keys, runtime, [trade("ann", 1, iso(13, 1))])
    await tick(runtime, clock, at(14, 0, 1))
    got = (await client.get(f"/v1/competitions/{cid}", headers=keys.server)).json()
    assert got["status"] == "completed" and got["distribution_status"] == "failed"
    assert "pool holds 10" in got["distribution_error"]
    assert await balance(client, keys, "ann") == 1
    problem(await client.post(f"/v1/competitions/{cid}/distributions", headers=keys.server), 409,
            "prizes_exceed_pool")
