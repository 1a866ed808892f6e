"""Reward fulfilment (issue 15 point 3, issue 10 point 2): item prizes land in the inventory; external,
webhook and in-game prizes become fulfilment records delivered, retried, listed and marked by hand."""

from __future__ import annotations

import httpx

from questline.fulfilment import service as fulfilment
from questline.kit.clock import ManualClock
from questline.kit.runtime import Runtime
from tests.competitions.helpers import outbox
from tests.conftest import Factory, problem
from tests.fulfilment.helpers import records, target, won
from tests.receivers import receiving


async def test_external_prize_is_listed_and_marked_fulfilled_once(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    cid = await won(client, keys, runtime, clock, [{"from_rank": 1, "external": {"sku": "hoodie", "size": "L"}},
                                                   {"from_rank": 2, "item": "trophy", "quantity": 2}])
    # The item prize is in ben's inventory; the external one waits for an admin.
    inventory = (await client.get("/v1/players/ben/inventory", headers=keys.server)).json()
    assert [(i["item"], i["quantity"]) for i in inventory["items"]] == [("trophy", 2)]
    [record] = await records(client, keys)
    assert (record["player_id"], record["kind"], record["status"], record["spec"]) == (
        "ann", "external", "pending", {"sku": "hoodie", "size": "L"})
    assert record["source"] == "competition_prize"
    assert await fulfilment.process_due(runtime) == 0  # nothing automatic to do
    prize = (await client.get("/v1/players/ann/prizes", headers=keys.server)).json()["items"][0]
    assert (prize["id"], prize["fulfilment"]) == (record["source_ref"], "pending")

    url = f"/v1/fulfilments/{record['id']}/fulfil"
    problem(await client.post(url, headers=keys.server, json={"reference": ""}), 422)
    problem(await client.post(f"/v1/fulfilments/{record['id']}/retry", headers=keys.server), 409,
            "fulfilment_not_automatic")
    done = await client.post(url, headers=keys.server, json={"reference": "UPS-1Z999"})
    assert done.status_code == 200 and done.json()["status"] == "completed"
    assert done.json()["reference"] == "UPS-1Z999" and done.json()["completed_at"]
    again = await client.post(url, headers=keys.server, json={"reference": "UPS-1Z999"})
    assert again.status_code == 200 and again.json()["updated_at"] == done.json()["updated_at"]
    problem(await client.post(url, headers=keys.server, json={"reference": "another"}), 409,
            "fulfilment_already_completed")
    prize = (await client.get("/v1/players/ann/prizes", headers=keys.server)).json()["items"][0]
    assert prize["fulfilment"] == "completed"
    statuses = [(m["data"]["status"], m["player_id"]) for m in await outbox(client, keys, "reward.status")]
    assert statuses == [("pending", "ann"), ("completed", "ann")]
    assert [r["id"] for r in await records(client, keys, status="completed")] == [record["id"]]
    assert await records(client, keys, status="pending") == []

    # A player cannot see the admin view; an unknown id is a 404.
    ann = await factory.player_token(keys, "ann")
    assert (await client.get("/v1/fulfilments", headers=ann)).status_code == 403
    problem(await client.get("/v1/fulfilments/ful_01JAAAAAAAAAAAAAAAAAAAAAAA", headers=keys.server), 404,
            "fulfilment_not_found")
    assert cid


async def test_webhook_and_in_game_rewards_are_signed_retried_and_delivered_once(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    async with receiving() as receiver:
        hook_secret = await target(client, keys, "webhook", f"{receiver.base}/rewards")
        game_secret = await target(client, keys, "in_game", f"{receiver.base}/game/grant")
        listed = (await client.get("/v1/fulfilment-targets", headers=keys.server)).json()
        assert [(t["kind"], t["secret"]) for t in listed] == [("in_game", None), ("webhook", None)]
        receiver.fail_next("/rewards", 500, 503)  # the studio's server fails twice, then succeeds
        await won(client, keys, runtime, clock, [{"from_rank": 1, "webhook": {"sku": "skin-gold"}},
                                                 {"from_rank": 2, "in_game": {"item": "sword", "quantity": 3}}])
        assert await fulfilment.process_due(runtime) == 2
        game = receiver.to("/game/grant")
        assert len(game) == 1
        assert game[0].json() | {"fulfilment_id": "-"} == {
            "type": "reward.in_game", "fulfilment_id": "-", "player_id": "ben", "item": "sword", "quantity": 3}
        game[0].verified(game_secret)
        [hooked] = await records(client, keys, kind="webhook")
        assert (hooked["status"], hooked["attempts"], hooked["last_error"]) == (
            "pending", 1, "the receiver answered 500")

        assert await fulfilment.process_due(runtime) == 0  # not due before its backoff
        clock.advance(seconds=5)
        assert await fulfilment.process_due(runtime) == 1
        clock.advance(seconds=300)
        assert await fulfilment.process_due(runtime) == 1
        calls = receiver.to("/rewards")
        assert len(calls) == 3 and {c.headers["webhook-id"] for c in calls} == {hooked["id"]}
        for call in calls:
            assert call.verified(hook_secret)["reward"] == {"sku": "skin-gold"}
        delivered = {c.headers["webhook-id"]: c.json() for c in calls}  # the receiver's dedupe
        assert len(delivered) == 1
        [hooked] = await records(client, keys, kind="webhook")
        assert (hooked["status"], hooked["attempts"], hooked["result"]["status"]) == ("completed", 3, 200)
        prizes = (await client.get("/v1/players/ann/prizes", headers=keys.server)).json()["items"]
        assert prizes[0]["fulfilment"] == "completed"
        assert await fulfilment.process_due(runtime) == 0
        statuses = [m["data"]["status"] for m in await outbox(client, keys, "reward.status")
                    if m["data"]["fulfilment_id"] == hooked["id"]]
        assert statuses == ["pending", "processing", "pending", "processing", "pending", "processing", "completed"]


async def test_a_refusing_receiver_fails_at_once_and_an_admin_retries(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    async with receiving() as receiver:
        await target(client, keys, "in_game", f"{receiver.base}/grant")
        receiver.fail_next("/grant", 400)
        await won(client, keys, runtime, clock, [{"from_rank": 1, "in_game": {"item": "gem"}}], players=("ann",))
        await fulfilment.process_due(runtime)
        [record] = await records(client, keys)
        assert (record["status"], record["last_error"]) == ("failed", "the receiver answered 400")
        assert (await client.get("/v1/players/ann/prizes", headers=keys.server)).json()["items"][0][
            "fulfilment"] == "failed"
        retried = await client.post(f"/v1/fulfilments/{record['id']}/retry", headers=keys.server)
        assert retried.status_code == 200 and retried.json()["status"] == "pending"
        await fulfilment.process_due(runtime)
        [record] = await records(client, keys)
        assert record["status"] == "completed" and len(receiver.to("/grant")) == 2
        problem(await client.post(f"/v1/fulfilments/{record['id']}/retry", headers=keys.server), 409,
                "fulfilment_not_retryable")


async def test_private_addresses_are_refused_unless_allowed(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    runtime.settings.webhooks_allow_private = False
    async with receiving() as receiver:
        await target(client, keys, "webhook", f"{receiver.base}/rewards")
        await won(client, keys, runtime, clock, [{"from_rank": 1, "webhook": {"sku": "x"}}], players=("ann",))
        await fulfilment.process_due(runtime)
        [record] = await records(client, keys)
        assert record["status"] == "failed" and "private or special address" in record["last_error"]
        assert receiver.requests == []
    problem(await client.put("/v1/fulfilment-targets/webhook", headers=keys.server, json={"url": "ftp://x.example"}),
            422, "invalid_url")
    problem(await client.put("/v1/fulfilment-targets/email", headers=keys.server, json={"url": "https://x.example"}),
            422)


async def test_rolling_back_a_distribution_cancels_undelivered_rewards(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    cid = await won(client, keys, runtime, clock, [{"from_rank": 1, "external": {"sku": "mug"}},
                                                   {"from_rank": 2, "item": "badge"}])
    resp = await client.post(f"/v1/competitions/{cid}/distributions/1/rollback", headers=keys.server,
                             json={"reason": "scores were wrong"})
    assert resp.status_code == 200
    assert {p["rank"]: p["fulfilment"] for p in resp.json()["prizes"]} == {1: "cancelled", 2: "cancelled"}
    [record] = await records(client, keys)
    assert record["status"] == "cancelled"
    inventory = (await client.get("/v1/players/ben/inventory", headers=keys.server)).json()
    assert {i["item"]: i["quantity"] for i in inventory["items"]}.get("badge", 0) == 0
    problem(await client.post(f"/v1/fulfilments/{record['id']}/fulfil", headers=keys.server,
                              json={"reference": "late"}), 409, "fulfilment_cancelled")
