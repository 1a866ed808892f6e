"""Claim-mode challenges: claims with verification, the approval queue, duplicates and races."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from questline.kit.runtime import Runtime
from questline.tenancy.schemas import Role
from tests.challenges.helpers import (
    balance,
    challenges,
    configure,
    event,
    history,
    idem,
    outbox_types,
    send,
    total_xp,
    workouts,
)
from tests.conftest import AppKeys, Factory, problem
from tests.pipeline.helpers import settle

TRAINER = {"name": "Trainer-verified session", "category": "workout", "recurrence": "daily",
           "completion_mode": "claim",
           "rewards": {"xp": {"track": "xp", "amount": 40}, "points": {"currency": "points", "amount": 75}},
           "objectives": [{"type": "count", "event_type": "session.logged", "target": 1}]}
PROOF = {"verification": {"trainer_id": "t-42", "session_minutes": 60}, "note": "leg day"}


async def _ready(client: httpx.AsyncClient, factory: Factory, runtime: Runtime, *players: str) -> AppKeys:
    keys = await factory.app()
    await configure(client, keys, {"trainer": TRAINER, "three-workouts": workouts(3)})
    await send(client, keys, *[event(p, "2026-03-10T08:00:00Z", "session.logged") for p in players])
    await settle(runtime)
    return keys


async def _claim(client: httpx.AsyncClient, headers: dict[str, str], player: str = "ana",
                 body: dict[str, Any] | None = None, key: str | None = None) -> httpx.Response:
    return await client.post(f"/v1/players/{player}/challenges/trainer/claim", headers=idem(headers, key),
                             json=PROOF if body is None else body)


async def test_claim_approve_pays_once(client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys, {"trainer": TRAINER})
    token = await factory.player_token(keys, "ana")
    # Nothing to claim before the objectives are met.
    await send(client, keys, event("ana", "2026-03-10T07:00:00Z", "meal.logged"))
    await settle(runtime)
    early = problem(await _claim(client, token), 409, "objectives_not_met")
    assert early["objectives"][0]["current"] == 0

    await send(client, keys, event("ana", "2026-03-10T08:00:00Z", "session.logged"))
    await settle(runtime)
    assert (await challenges(client, keys, "ana"))["trainer"]["status"] == "ready_to_claim"
    assert await history(client, keys, "ana") == []  # a claim-mode challenge never completes by itself

    resp = await _claim(client, token, key="claim-1")
    assert resp.status_code == 201, resp.text
    claim = resp.json()
    assert claim["status"] == "pending" and claim["period"] == "2026-03-10"
    assert claim["verification"] == PROOF["verification"] and claim["progress"][0]["met"] is True
    replay = await _claim(client, token, key="claim-1")
    assert replay.status_code == 201 and replay.json()["id"] == claim["id"]
    assert replay.headers.get("Idempotent-Replayed") == "true"
    problem(await _claim(client, token, key="claim-2"), 409, "claim_pending")
    view = (await challenges(client, keys, "ana"))["trainer"]
    assert view["status"] == "pending_approval" and view["claim_id"] == claim["id"]

    admin = await factory.admin(keys.org_id, Role.ADMIN)
    queue = await client.get("/v1/challenge-claims", headers=admin.headers(keys.app_id), params={"status": "pending"})
    assert queue.status_code == 200 and [c["id"] for c in queue.json()["items"]] == [claim["id"]]
    approved = await client.post(f"/v1/challenge-claims/{claim['id']}/approve", headers=admin.headers(keys.app_id),
                                 json={"reason": "trainer confirmed"})
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert body["status"] == "approved" and body["decided_by"] == f"admin:{admin.admin_id}"
    assert body["rewards"] == TRAINER["rewards"] and body["reason"] == "trainer confirmed"

    again = problem(await client.post(f"/v1/challenge-claims/{claim['id']}/approve", headers=keys.server), 409,
                    "claim_already_decided")
    assert again["claim_status"] == "approved"
    problem(await client.post(f"/v1/challenge-claims/{claim['id']}/reject", headers=keys.server), 409,
            "claim_already_decided")
    problem(await _claim(client, token), 409, "already_completed")

    await settle(runtime)  # the XP award event
    assert await balance(client, keys, "ana") == 75 and await total_xp(client, keys, "ana") == 40
    done = await history(client, keys, "ana")
    assert [(h["challenge"], h["source"], h["claim_id"]) for h in done] == [("trainer", "claim", claim["id"])]
    assert (await challenges(client, keys, "ana"))["trainer"]["status"] == "completed"
    types = await outbox_types(client, keys)
    for kind in ("challenge.progressed", "challenge.claimed", "challenge.approved", "challenge.completed"):
        assert types.count(kind) == 1, (kind, types)
    assert (await client.get("/v1/challenge-claims", headers=keys.server,
                             params={"status": "pending"})).json()["items"] == []


async def test_reject_then_claim_again(client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await _ready(client, factory, runtime, "ben")
    first = (await _claim(client, keys.server, "ben")).json()
    rejected = await client.post(f"/v1/challenge-claims/{first['id']}/reject", headers=idem(keys.server),
                                 json={"reason": "no trainer on record"})
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert (await challenges(client, keys, "ben"))["trainer"]["status"] == "ready_to_claim"
    second = await _claim(client, keys.server, "ben", {"verification": {"trainer_id": "t-7"}})
    assert second.status_code == 201 and second.json()["id"] != first["id"]
    listed = (await client.get("/v1/challenge-claims", headers=keys.server, params={"player_id": "ben"})).json()
    assert [(c["id"], c["status"]) for c in listed["items"]] == [(first["id"], "rejected"),
                                                                 (second.json()["id"], "pending")]
    assert "challenge.rejected" in await outbox_types(client, keys)
    assert await balance(client, keys, "ben") == 0


async def test_concurrent_approvals_one_wins(client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await _ready(client, factory, runtime, "cat")
    claim = (await _claim(client, keys.server, "cat")).json()
    replies = await asyncio.gather(*[
        client.post(f"/v1/challenge-claims/{claim['id']}/approve", headers=keys.server) for _ in range(6)])
    statuses = sorted(r.status_code for r in replies)
    assert statuses == [200, 409, 409, 409, 409, 409], [r.text for r in replies]
    for reply in replies:
        if reply.status_code == 409:
            problem(reply, 409, "claim_already_decided")
    await settle(runtime)
    assert await balance(client, keys, "cat") == 75 and await total_xp(client, keys, "cat") == 40
    assert len(await history(client, keys, "cat")) == 1


async def test_concurrent_claims_one_wins(client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await _ready(client, factory, runtime, "dan")
    token = await factory.player_token(keys, "dan")
    replies = await asyncio.gather(*[_claim(client, token, "dan") for _ in range(6)])
    assert sorted(r.status_code for r in replies) == [201, 409, 409, 409, 409, 409], [r.text for r in replies]
    assert all(r.json()["code"] == "claim_pending" for r in replies if r.status_code == 409)
    listed = (await client.get("/v1/challenge-claims", headers=keys.server, params={"status": "pending"})).json()
    assert len(listed["items"]) == 1


async def test_claim_refusals(client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await _ready(client, factory, runtime, "eve", "fay")
    eve = await factory.player_token(keys, "eve")
    problem(await client.post("/v1/players/eve/challenges/trainer/claim", headers=eve, json=PROOF), 400,
            "idempotency_key_required")
    problem(await _claim(client, eve, "fay"), 404)  # a token acts only for its own player
    problem(await _claim(client, keys.client, "eve"), 403, "caller_not_allowed")
    problem(await _claim(client, eve, "eve", {"verification": {"blob": "x" * 9000}}), 413, "verification_too_large")
    problem(await client.post("/v1/players/eve/challenges/three-workouts/claim", headers=idem(eve), json=PROOF), 409,
            "not_claimable")
    problem(await client.post("/v1/players/eve/challenges/nope/claim", headers=idem(eve), json=PROOF), 404,
            "challenge_not_found")
    problem(await _claim(client, eve, "eve", {"verification": {}, "extra": 1}), 422, "validation_failed")

    viewer = await factory.admin(keys.org_id, Role.VIEWER)
    problem(await client.get("/v1/challenge-claims", headers=viewer.headers(keys.app_id)), 403, "insufficient_role")
    problem(await client.get("/v1/challenge-claims", headers=eve), 403, "caller_not_allowed")
    problem(await client.post("/v1/challenge-claims/clm_01M7XNH118NJXGRRVK1JWWC0AZ/approve", headers=keys.server),
            404, "claim_not_found")
    problem(await client.get("/v1/challenge-claims", headers=keys.server, params={"status": "maybe"}), 422,
            "validation_failed")
    problem(await client.get("/v1/challenge-claims", headers=keys.server, params={"cursor": "bm9wZQ"}), 400,
            "invalid_cursor")
    other = await factory.app()
    assert (await client.get("/v1/challenge-claims", headers=other.server)).json()["items"] == []


async def test_force_complete_for_support(client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys, {"three-workouts": workouts(3)})
    await send(client, keys, event("gus", "2026-03-10T08:00:00Z"))
    await settle(runtime)
    url = "/v1/players/gus/challenges/three-workouts/complete"
    token = await factory.player_token(keys, "gus")
    problem(await client.post(url, headers=idem(token), json={"reason": "lost workouts"}), 403)
    problem(await client.post(url, headers=keys.server, json={"reason": "lost workouts"}), 400,
            "idempotency_key_required")
    resp = await client.post(url, headers=idem(keys.server), json={"reason": "lost workouts"})
    assert resp.status_code == 201, resp.text
    assert resp.json()["source"] == "manual" and resp.json()["period"] == "2026-03-10"
    problem(await client.post(url, headers=idem(keys.server), json={"reason": "again"}), 409, "already_completed")
    # Later workouts that day do not complete it a second time.
    await send(client, keys, event("gus", "2026-03-10T09:00:00Z"), event("gus", "2026-03-10T10:00:00Z"))
    await settle(runtime)
    assert len(await history(client, keys, "gus")) == 1
    assert await balance(client, keys, "gus") == 20 and await total_xp(client, keys, "gus") == 50
