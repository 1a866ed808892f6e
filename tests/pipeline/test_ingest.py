"""Ingest: trust levels, per-item verdicts, deduplication, and ?wait=true."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx

from questline.kit.clock import ManualClock
from questline.kit.runtime import Runtime
from tests.conftest import Factory, problem
from tests.pipeline.helpers import configure, send, settle


def ev(i: int, player: str = "alice", type_: str = "match.won", **data: object) -> dict[str, object]:
    return {"id": f"e{i}", "player_id": player, "type": type_, "data": data or {"score": 100}}


async def test_duplicates_are_acknowledged_and_counted_once(client: httpx.AsyncClient, factory: Factory,
                                                            runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys)
    first = await send(client, keys, [ev(1), ev(2), ev(1)])
    assert first.status_code == 202
    assert first.json()["accepted"] == ["e1", "e2"] and first.json()["duplicates"] == ["e1"]
    again = await send(client, keys, [ev(1), ev(3)])
    assert again.json()["accepted"] == ["e3"] and again.json()["duplicates"] == ["e1"]
    await settle(runtime)
    stats = (await client.get("/v1/players/alice/stats", headers=keys.server)).json()
    assert stats["wins"]["all"] == 3


async def test_concurrent_copies_of_one_event_count_once(client: httpx.AsyncClient, factory: Factory,
                                                         runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys)
    replies = await asyncio.gather(*[send(client, keys, [ev(7)]) for _ in range(8)])
    assert all(r.status_code == 202 for r in replies)
    assert sum(len(r.json()["accepted"]) for r in replies) == 1
    assert sum(len(r.json()["duplicates"]) for r in replies) == 7
    await settle(runtime)
    stats = (await client.get("/v1/players/alice/stats", headers=keys.server)).json()
    assert stats["wins"]["all"] == 1


async def test_first_sight_creates_the_player(client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    problem(await client.get("/v1/players/newbie/account", headers=keys.server), 404, "player_not_found")
    assert (await send(client, keys, [ev(1, player="newbie")])).status_code == 202
    # Ingest only appends to the log; the worker meets the player and creates them.
    problem(await client.get("/v1/players/newbie/account", headers=keys.server), 404, "player_not_found")
    await settle(runtime)
    account = await client.get("/v1/players/newbie/account", headers=keys.server)
    assert account.status_code == 200 and account.json()["timezone"] == "UTC"


async def test_game_client_events_are_bounded_per_item(client: httpx.AsyncClient, factory: Factory,
                                                       clock: ManualClock, runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys)
    admin = await factory.admin(keys.org_id)
    resp = await client.put(f"/v1/apps/{keys.app_id}/client-event-types", headers=admin.headers(),
                            json={"event_types": ["match.won"]})
    assert resp.status_code == 200
    now = clock.now()
    batch = [
        ev(1),
        ev(2, type_="purchase.completed"),
        {**ev(3), "timestamp": (now - timedelta(days=2)).isoformat()},
        {**ev(4), "timestamp": (now + timedelta(hours=1)).isoformat()},
        {**ev(5), "data": {"blob": "x" * 10_000}},
        {"id": "bad id!", "player_id": "alice", "type": "match.won"},
        ev(6, type_="questline.xp.award", track="xp", amount=1000),
    ]
    resp = await send(client, keys, batch, headers=await factory.player_token(keys, "alice"))
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["accepted"] == ["e1"]
    codes = {r["index"]: r["code"] for r in body["rejected"]}
    assert codes == {1: "type_not_allowed", 2: "timestamp_out_of_window", 3: "timestamp_out_of_window",
                     4: "payload_too_large", 5: "invalid_event", 6: "reserved_type"}
    await settle(runtime)
    profile = (await client.get("/v1/players/alice", headers=keys.server)).json()
    assert profile["levels"]["xp"]["total_xp"] == 60  # only the accepted event counted


async def test_the_publishable_key_cannot_send_a_players_events(client: httpx.AsyncClient, factory: Factory,
                                                               runtime: Runtime) -> None:
    """Audit 10.13: the client key named any player_id and XP was credited to that player."""
    keys = await factory.app()
    await configure(client, keys)
    admin = await factory.admin(keys.org_id)
    await client.put(f"/v1/apps/{keys.app_id}/client-event-types", headers=admin.headers(),
                     json={"event_types": ["match.won"]})
    body = problem(await send(client, keys, [ev(1, player="victim")], headers=keys.client), 422,
                   "player_token_required")
    assert body["rejected"][0]["id"] == "e1"
    await settle(runtime)
    problem(await client.get("/v1/players/victim", headers=keys.server), 404)
    # The same event with the player's own token goes through.
    victim = await factory.player_token(keys, "victim")
    assert (await send(client, keys, [ev(1, player="victim")], headers=victim)).json()["accepted"] == ["e1"]


async def test_a_single_refused_event_is_a_4xx_and_changes_nothing(client: httpx.AsyncClient,
                                                                   factory: Factory) -> None:
    keys = await factory.app()
    alice = await factory.player_token(keys, "alice")
    body = problem(await send(client, keys, [ev(1)], headers=alice), 422, "type_not_allowed")
    assert body["rejected"][0]["id"] == "e1"
    events = await client.get("/v1/players/alice/events", headers=keys.server)
    assert events.status_code == 404 or events.json()["items"] == []


async def test_player_token_sends_only_for_itself(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    admin = await factory.admin(keys.org_id)
    await client.put(f"/v1/apps/{keys.app_id}/client-event-types", headers=admin.headers(),
                     json={"event_types": ["match.won"]})
    alice = await factory.player_token(keys, "alice")
    resp = await send(client, keys, [ev(1, player="alice"), ev(2, player="bob")], headers=alice)
    assert resp.status_code == 202
    assert resp.json()["accepted"] == ["e1"]
    assert resp.json()["rejected"][0]["code"] == "player_mismatch"


async def test_batch_shape_limits(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    problem(await send(client, keys, []), 422, "empty_batch")
    too_many = [ev(i) for i in range(1001)]
    problem(await send(client, keys, too_many), 422, "batch_too_large")
    problem(await client.post("/v1/events", headers={**keys.server, "Content-Type": "application/json"},
                              content=b"{not json"), 400, "malformed_json")
    single = await client.post("/v1/events", headers=keys.server, json=ev(9))
    assert single.status_code == 202 and single.json()["accepted"] == ["e9"]


async def test_wait_true_returns_committed_effects(client: httpx.AsyncClient, factory: Factory,
                                                   runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys)
    worker = asyncio.create_task(settle_until_idle(runtime))
    resp = await client.post("/v1/events", params={"wait": "true"}, headers=keys.server,
                             json={"events": [ev(1, score=1500), ev(2, score=10)]})
    await worker
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["processed"] is True
    types = [(e["event_id"], e["type"]) for e in body["effects"]]
    assert ("e1", "xp.earned") in types and ("e2", "level.up") in types
    assert ("e2", "points.credited") in types
    credited = next(e for e in body["effects"] if e["type"] == "points.credited")
    assert credited["data"]["amount"] == 200


async def settle_until_idle(runtime: Runtime) -> None:
    """A worker for tests: keep draining until a batch finds work, then until idle."""
    for _ in range(200):
        if await settle(runtime):
            return
        await asyncio.sleep(0)


async def test_forged_cursors_are_400s(client: httpx.AsyncClient, factory: Factory) -> None:
    from questline.kit.pagination import encode_cursor

    keys = await factory.app()
    await send(client, keys, [ev(1)])
    forged = encode_cursor(["abc"])
    problem(await client.get("/v1/outbox", headers=keys.server, params={"cursor": forged}), 400, "invalid_cursor")
    problem(await client.get("/v1/players/alice/events", headers=keys.server, params={"cursor": forged}), 400,
            "invalid_cursor")
    problem(await client.get("/v1/definitions/stat", headers=keys.server, params={"cursor": encode_cursor([5])}),
            400, "invalid_cursor")
