"""Battle-pass tiers and challenges (quests) with webhook, in-game and token rewards go through reward
fulfilment: one record per reward, made with the claim or the completion, never twice (a retried
claim, a replay of the player's events, an approval), and delivered signed to a real local receiver."""

from __future__ import annotations

import copy

import httpx

from questline.fulfilment import service as fulfilment
from questline.kit.clock import ManualClock
from questline.kit.runtime import Runtime
from questline.pipeline.replay import start_replay
from tests.battlepass import helpers as bp
from tests.challenges import helpers as ch
from tests.conftest import Factory, problem
from tests.fulfilment.helpers import records, target
from tests.pipeline.helpers import send, settle
from tests.receivers import receiving


async def test_a_battle_pass_tier_with_an_in_game_reward_is_fulfilled_once(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    season = copy.deepcopy(bp.SEASON)
    season["free"]["1"] = {"points": [{"currency": "points", "amount": 100}],
                           "in_game": {"item": "golden-skin", "quantity": 1}, "webhook": {"sku": "poster"}}
    await bp.configure(client, keys, season)
    async with receiving() as receiver:
        secret = await target(client, keys, "in_game", f"{receiver.base}/game/grant")
        await target(client, keys, "webhook", f"{receiver.base}/rewards")
        await send(client, keys, [bp.won(1, score=1200), bp.won(2)])  # tier 1
        await settle(runtime)
        first = await bp.claim(client, keys.server, 1, key="claim-1")
        assert first.status_code == 201, first.text
        assert first.json()["reward"]["in_game"] == {"item": "golden-skin", "quantity": 1}
        again = await bp.claim(client, keys.server, 1, key="claim-1")  # the same request retried
        assert again.status_code == 201
        problem(await bp.claim(client, keys.server, 1), 409, "already_claimed")
        made = await records(client, keys, player_id="alice")
        assert sorted((r["kind"], r["source"], r["spec"]) for r in made) == [
            ("in_game", "battle_pass", {"item": "golden-skin", "quantity": 1}),
            ("webhook", "battle_pass", {"sku": "poster"})]
        assert await fulfilment.process_due(runtime) == 2
        assert await fulfilment.process_due(runtime) == 0
        [call] = receiver.to("/game/grant")
        assert call.verified(secret) | {"fulfilment_id": "-"} == {
            "type": "reward.in_game", "fulfilment_id": "-", "player_id": "alice", "item": "golden-skin",
            "quantity": 1}
        assert len(receiver.to("/rewards")) == 1
        # A replay of alice's events re-derives her pass, and claims stay claimed: nothing new.
        await start_replay(runtime, keys.app_id)
        await settle(runtime)
        assert len(await records(client, keys, player_id="alice")) == 2
        assert await bp.balance(client, keys, "alice") == 100


async def test_a_tier_reward_needs_something_and_a_bad_token_reward_is_refused(
        client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    season = copy.deepcopy(bp.SEASON)
    season["free"]["1"] = {"token": {"amount": "-5"}}
    resp = await client.put("/v1/currencies/points", headers=keys.server, json={"name": "Points"})
    assert resp.status_code in (200, 201)
    bad = await client.put("/v1/definitions/battle_pass/s1", headers=keys.server, json=season)
    assert bad.status_code == 422, bad.text
    assert "token" in bad.text


async def test_a_challenge_with_webhook_and_token_rewards_makes_records_once_even_through_a_replay(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    spec = ch.workouts(3)
    spec["rewards"] |= {"webhook": {"sku": "water-bottle"}, "token": {"amount": "1000"}}
    await ch.configure(client, keys, {"three-workouts": spec})
    await ch.send(client, keys, *[ch.event("ana", f"2026-03-10T0{h}:00:00Z") for h in range(1, 6)])
    await settle(runtime)
    made = await records(client, keys, player_id="ana")
    assert sorted((r["kind"], r["source"], r["source_ref"], r["spec"]) for r in made) == [
        ("token", "challenge", "challenge:three-workouts:ana:2026-03-10:token",
         {"amount": "1000", "contract": None, "address_trait": "wallet_address"}),
        ("webhook", "challenge", "challenge:three-workouts:ana:2026-03-10:webhook", {"sku": "water-bottle"})]
    # The replay records the completion again: the records are found, none is made twice.
    await start_replay(runtime, keys.app_id)
    await settle(runtime)
    assert [h["period"] for h in await ch.history(client, keys, "ana")] == ["2026-03-10"]
    again = await records(client, keys, player_id="ana")
    assert sorted(r["id"] for r in again) == sorted(r["id"] for r in made)
    # A second day's completion is a second period: its own records.
    await ch.send(client, keys, *[ch.event("ana", f"2026-03-11T0{h}:00:00Z") for h in range(1, 4)])
    await settle(runtime)
    assert len(await records(client, keys, player_id="ana")) == 4


async def test_an_approved_challenge_claim_makes_its_in_game_record_once(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    spec = ch.workouts(1, completion_mode="claim")
    spec["rewards"] = {"in_game": {"item": "medal", "quantity": 2}}
    await ch.configure(client, keys, {"one-workout": spec})
    await ch.send(client, keys, ch.event("bo", "2026-03-10T08:00:00Z"))
    await settle(runtime)
    assert await records(client, keys, player_id="bo") == []  # waiting for its claim
    token = await factory.player_token(keys, "bo")
    claimed = await client.post("/v1/players/bo/challenges/one-workout/claim", headers=ch.idem(token), json={})
    assert claimed.status_code == 201, claimed.text
    approved = await client.post(f"/v1/challenge-claims/{claimed.json()['id']}/approve", headers=ch.idem(keys.server),
                                 json={})
    assert approved.status_code == 200, approved.text
    problem(await client.post(f"/v1/challenge-claims/{claimed.json()['id']}/approve", headers=ch.idem(keys.server),
                              json={}), 409, "claim_already_decided")
    [made] = await records(client, keys, player_id="bo")
    assert (made["kind"], made["source"], made["spec"]) == ("in_game", "challenge", {"item": "medal", "quantity": 2})
