"""Tracking signups, the status pipeline, rewards to both sides, milestones and the metric."""

from __future__ import annotations

import asyncio

import httpx
import sqlalchemy as sa

from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from tests.conftest import AppKeys, Factory, problem
from tests.ledger.helpers import verify
from tests.pipeline.helpers import recorded_statements, send, settle
from tests.referrals.helpers import balance, code_of, configure, set_status, track


async def ledger_keys(runtime: Runtime, app_id: str) -> list[str]:
    async with unit_of_work(runtime.sessions) as session:
        rows = await session.execute(sa.text(
            "SELECT idempotency_key FROM ledger_transactions WHERE app_id = :app ORDER BY idempotency_key"),
            {"app": app_id})
        return [r[0] for r in rows]


async def test_a_signup_rewards_both_sides_and_the_first_milestone(client: httpx.AsyncClient, factory: Factory,
                                                                    runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys)
    code = await code_of(client, keys, "sean")

    resp = await track(client, keys, code.lower(), "newbie", ip="198.51.100.7", device_fingerprint="dev-1",
                       email="new.bie@example.com", attribution={"utm_source": "instagram"}, key="track-1")
    assert resp.status_code == 201, resp.text
    out = resp.json()
    assert out["status"] == "signed_up" and not out["flagged"] and out["review"] == "none"
    assert out["referrer_id"] == "sean" and out["referee_id"] == "newbie" and out["code"] == code
    assert out["referrer_points"] == 500 and out["referee_points"] == 500
    assert [m["tier"] for m in out["milestones"]] == ["bronze"] and out["milestones"][0]["points"] == 500
    assert out["email_domain"] == "example.com" and out["attribution"] == {"utm_source": "instagram"}
    assert await balance(client, keys, "sean") == 1000 and await balance(client, keys, "newbie") == 500
    # A retry replays; the same referee again is refused.
    again = await track(client, keys, code.lower(), "newbie", ip="198.51.100.7", device_fingerprint="dev-1",
                        email="new.bie@example.com", attribution={"utm_source": "instagram"}, key="track-1")
    assert again.content == resp.content
    body = problem(await track(client, keys, code, "newbie"), 409, "already_referred")
    assert body["referral_id"] == out["id"]
    assert await ledger_keys(runtime, keys.app_id) == sorted([
        f"referral:{out['id']}:signed_up:referrer", f"referral:{out['id']}:signed_up:referee",
        "referral-milestone:sean:bronze"])
    summary = (await client.get("/v1/players/sean/referrals", headers=keys.server)).json()
    assert summary["counted"] == 1 and summary["by_status"] == {"signed_up": 1}
    assert [m["tier"] for m in summary["milestones"]] == ["bronze"] and summary["next_milestone"]["tier"] == "silver"


async def test_statuses_move_forward_and_pay_at_each_step(client: httpx.AsyncClient, factory: Factory,
                                                          runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys)
    code = await code_of(client, keys, "sean")
    ref = (await track(client, keys, code, "ana", status="pending")).json()
    assert ref["status"] == "pending" and ref["referrer_points"] == 0 and ref["milestones"] == []
    assert await balance(client, keys, "sean") == 0

    resp = await set_status(client, keys, ref["id"], "signed_up")
    assert resp.json()["referrer_points"] == 500 and resp.json()["signed_up_at"]
    resp = await set_status(client, keys, ref["id"], "converted", revenue=4999)
    assert resp.status_code == 200, resp.text
    assert resp.json()["referrer_points"] == 2500 and resp.json()["revenue"] == 4999
    assert await balance(client, keys, "sean") == 500 + 500 + 2000  # signup, bronze, conversion bonus
    problem(await set_status(client, keys, ref["id"], "signed_up"), 409, "invalid_transition")
    resp = await set_status(client, keys, ref["id"], "converted", revenue=6000)  # same status: revenue only
    assert resp.json()["revenue"] == 6000 and resp.json()["referrer_points"] == 2500
    resp = await set_status(client, keys, ref["id"], "churned")
    assert resp.json()["status"] == "churned" and resp.json()["churned_at"]
    problem(await set_status(client, keys, ref["id"], "paid_client"), 409, "invalid_transition")

    # Skipping ahead pays every status passed; churning before signing up is refused.
    ref2 = (await track(client, keys, code, "ben")).json()
    resp = await set_status(client, keys, ref2["id"], "paid_client")
    assert resp.json()["converted_at"] and resp.json()["referrer_points"] == 500 + 2000 + 1000
    ref3 = (await track(client, keys, code, "cat", status="pending")).json()
    problem(await set_status(client, keys, ref3["id"], "churned"), 409, "invalid_transition")
    problem(await set_status(client, keys, "rfl_01M7XNXZARKZE4ZF4FW507NWSS", "converted"), 404, "referral_not_found")
    assert await verify(runtime, keys.app_id) == []


async def test_milestones_at_one_and_five_referrals(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    await configure(client, keys, {"currency": "points", "rewards": {}})
    code = await code_of(client, keys, "sean")
    reached = []
    for i in range(5):
        out = (await track(client, keys, code, f"friend{i}")).json()
        reached += [(i, m["tier"], m["points"], m["badge"]) for m in out["milestones"]]
    assert reached == [(0, "bronze", 500, None), (4, "silver", 3000, None)]  # seed 003's milestones: no badge
    assert await balance(client, keys, "sean") == 3500
    summary = (await client.get("/v1/players/sean/referrals", headers=keys.server)).json()
    assert summary["counted"] == 5 and summary["next_milestone"]["tier"] == "gold"
    assert summary["next_milestone"]["referrals"] == 10 and summary["next_milestone"]["points"] == 8000


async def test_racing_signups_award_each_milestone_once(client: httpx.AsyncClient, factory: Factory,
                                                        runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys, {"currency": "points"})
    code = await code_of(client, keys, "sean")
    replies = await asyncio.gather(*(track(client, keys, code, f"friend{i}") for i in range(6)))
    assert [r.status_code for r in replies] == [201] * 6, [r.text for r in replies]
    tiers = sorted(m["tier"] for r in replies for m in r.json()["milestones"])
    assert tiers == ["bronze", "silver"]
    assert await balance(client, keys, "sean") == 6 * 500 + 500 + 3000
    # The same referee tracked in parallel: one referral.
    replies = await asyncio.gather(*(track(client, keys, code, "twin") for _ in range(4)))
    assert sorted(r.status_code for r in replies) == [201, 409, 409, 409]
    assert await balance(client, keys, "twin") == 500
    assert await verify(runtime, keys.app_id) == []


async def test_referrals_count_is_a_metric_for_later_mechanics(client: httpx.AsyncClient, factory: Factory,
                                                                runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys)
    bundle = {"xp_track": {"xp": {}},
              "xp_rule": {"recruiter": {"track": "xp", "event_type": "questline.referral", "amount": 10,
                                        "filter": {"metric": "referrals.count", "op": "gte", "value": 2}}}}
    resp = await client.post("/v1/definitions:bulk", headers=keys.server, json={"definitions": bundle})
    assert resp.status_code == 200, resp.text
    code = await code_of(client, keys, "sean")
    assert (await track(client, keys, code, "a")).status_code == 201
    await settle(runtime)
    profile = (await client.get("/v1/players/sean", headers=keys.server)).json()
    assert profile["levels"]["xp"]["total_xp"] == 0
    assert (await track(client, keys, code, "b")).status_code == 201
    await settle(runtime)
    profile = (await client.get("/v1/players/sean", headers=keys.server)).json()
    assert profile["levels"]["xp"]["total_xp"] == 10


async def test_batches_read_no_referrals_when_no_definition_reads_the_metric(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys)
    plain = {"xp_track": {"xp": {}}, "xp_rule": {"play": {"track": "xp", "event_type": "match.won", "amount": 5}}}
    resp = await client.post("/v1/definitions:bulk", headers=keys.server, json={"definitions": plain})
    assert resp.status_code == 200, resp.text
    code = await code_of(client, keys, "sean")
    assert (await track(client, keys, code, "a")).status_code == 201
    won = {"id": "w1", "player_id": "sean", "type": "match.won", "data": {}}
    assert (await send(client, keys, [won])).status_code == 202
    with recorded_statements(runtime) as sent:
        await settle(runtime)
    assert sent and not [s for s in sent if "FROM referrals" in s]
    profile = (await client.get("/v1/players/sean", headers=keys.server)).json()
    assert profile["levels"]["xp"]["total_xp"] == 5
    # Once a definition reads it, batches load it again (the metric is counted, not left at 0).
    reads = {"xp_rule": {"recruiter": {"track": "xp", "event_type": "match.won", "amount": 10,
                                       "filter": {"metric": "referrals.count", "op": "gte", "value": 1}}}}
    resp = await client.post("/v1/definitions:bulk", headers=keys.server, json={"definitions": reads})
    assert resp.status_code == 200, resp.text
    won = {"id": "w2", "player_id": "sean", "type": "match.won", "data": {}}
    assert (await send(client, keys, [won])).status_code == 202
    with recorded_statements(runtime) as sent:
        await settle(runtime)
    assert [s for s in sent if "FROM referrals" in s]
    profile = (await client.get("/v1/players/sean", headers=keys.server)).json()
    assert profile["levels"]["xp"]["total_xp"] == 5 + 5 + 10


async def test_without_a_program_nothing_is_paid(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    code = await code_of(client, keys, "sean")
    assert code.startswith("SEAN-REF-")
    out = (await track(client, keys, code, "friend")).json()
    assert out["referrer_points"] == 0 and out["milestones"] == [] and not out["flagged"]


BADGES = {
    "recruiter": {"name": "Recruiter", "category": "referrals",
                  "points_reward": {"currency": "points", "amount": 40}},
    "talent-scout": {"name": "Talent Scout", "category": "referrals", "rarity": "epic"},
}
BADGED = {"currency": "points", "rewards": {}, "milestones": [
    {"tier": "bronze", "name": "Bronze", "referrals": 1, "points": 100, "badge": "recruiter"},
    {"tier": "silver", "name": "Silver", "referrals": 3, "badge": "talent-scout"},
    {"tier": "gold", "name": "Gold", "referrals": 10, "points": 1000}]}


async def configure_badges(client: httpx.AsyncClient, keys: AppKeys) -> None:
    resp = await client.put("/v1/currencies/points", headers=keys.server, json={"name": "Points"})
    assert resp.status_code in (200, 201), resp.text
    resp = await client.post("/v1/definitions:bulk", headers=keys.server, json={"definitions": {
        "achievement": BADGES, "referral_program": {"default": BADGED}}})
    assert resp.status_code == 200, resp.text


async def unlocked(client: httpx.AsyncClient, keys: AppKeys, player: str) -> set[str]:
    resp = await client.get(f"/v1/players/{player}/achievements", headers=keys.server)
    assert resp.status_code == 200, resp.text
    return {a["key"] for a in resp.json()["achievements"] if a["unlocked"]}


async def test_milestone_badges_are_achievements_granted_once(client: httpx.AsyncClient, factory: Factory,
                                                              runtime: Runtime) -> None:
    keys = await factory.app()
    await configure_badges(client, keys)
    code = await code_of(client, keys, "sean")
    out = (await track(client, keys, code, "friend0")).json()
    assert [(m["tier"], m["badge"]) for m in out["milestones"]] == [("bronze", "recruiter")]
    assert await unlocked(client, keys, "sean") == {"recruiter"}
    assert await balance(client, keys, "sean") == 100 + 40  # the milestone's points and the achievement's
    for i in (1, 2, 3):
        await track(client, keys, code, f"friend{i}")
    assert await unlocked(client, keys, "sean") == {"recruiter", "talent-scout"}
    assert await balance(client, keys, "sean") == 140
    await settle(runtime)  # the referral events: nothing more is unlocked or paid
    feed = (await client.get("/v1/outbox", headers=keys.server, params={"limit": 200})).json()["items"]
    grants = [(m["data"]["achievement"], m["data"]["granted_by"], m["data"]["reference"])
              for m in feed if m["type"] == "achievement.unlocked"]
    assert grants == [("recruiter", "referral_milestone", {"tier": "bronze"}),
                      ("talent-scout", "referral_milestone", {"tier": "silver"})]
    assert await verify(runtime, keys.app_id) == []

    # A badge must name an achievement of the app.
    wrong = {**BADGED, "milestones": [{"tier": "bronze", "name": "B", "referrals": 1, "badge": "bronze_recruiter"}]}
    body = problem(await client.put("/v1/definitions/referral_program/default", headers=keys.server, json=wrong),
                   422, "invalid_definition")
    assert "unknown achievement 'bronze_recruiter'" in body["detail"]


async def test_racing_signups_grant_each_badge_once(client: httpx.AsyncClient, factory: Factory,
                                                    runtime: Runtime) -> None:
    keys = await factory.app()
    await configure_badges(client, keys)
    code = await code_of(client, keys, "sean")
    replies = await asyncio.gather(*(track(client, keys, code, f"friend{i}") for i in range(5)))
    assert [r.status_code for r in replies] == [201] * 5, [r.text for r in replies]
    assert sorted(m["tier"] for r in replies for m in r.json()["milestones"]) == ["bronze", "silver"]
    assert await unlocked(client, keys, "sean") == {"recruiter", "talent-scout"}
    assert await balance(client, keys, "sean") == 100 + 40
    feed = (await client.get("/v1/outbox", headers=keys.server, params={"limit": 200})).json()["items"]
    assert sorted(m["data"]["achievement"] for m in feed if m["type"] == "achievement.unlocked") == [
        "recruiter", "talent-scout"]
    assert await verify(runtime, keys.app_id) == []
