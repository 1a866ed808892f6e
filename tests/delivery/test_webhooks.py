"""Webhooks by the Standard Webhooks spec, against a real local HTTP receiver."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa

from questline.kit.clock import ManualClock
from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from questline.pipeline import repository as event_log
from questline.pipeline.models import OutboxMessage
from questline.relay import service as relay
from questline.webhooks import service, tasks
from questline.webhooks.subscriber import WebhookSubscriber
from tests.conftest import AppKeys, Factory, problem
from tests.delivery.receiver import receiving, signed_by
from tests.pipeline.helpers import configure, send, settle


async def _endpoint(client: httpx.AsyncClient, keys: AppKeys, url: str, **body: Any) -> dict[str, Any]:
    resp = await client.post("/v1/webhooks", headers=keys.server, json={"url": url, **body})
    assert resp.status_code == 201, resp.text
    created: dict[str, Any] = resp.json()
    assert created["secret"].startswith("whsec_")
    return created


async def _announce(runtime: Runtime, app_id: str, type_: str = "level.up", player: str = "alice",
                    **payload: Any) -> None:
    async with unit_of_work(runtime.sessions) as session:
        await event_log.add_outbox(session, [event_log.outbox_row(app_id, type_, player, payload, runtime.clock.now())])


async def _deliver(runtime: Runtime) -> int:
    """Relay the outbox, then one sender round."""
    await relay.drain(runtime)
    return await tasks.send_due(runtime)


async def _log(client: httpx.AsyncClient, keys: AppKeys, endpoint_id: str) -> list[dict[str, Any]]:
    resp = await client.get(f"/v1/webhooks/{endpoint_id}/deliveries", headers=keys.server)
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


async def test_a_receiver_failing_twice_gets_the_message_once_signed(
        runtime: Runtime, client: httpx.AsyncClient, factory: Factory, clock: ManualClock) -> None:
    keys = await factory.app()
    await configure(client, keys)
    async with receiving(answers=[500, 503]) as receiver:
        endpoint = await _endpoint(client, keys, receiver.url, event_types=["level.*"], description="game server")
        resp = await send(client, keys, [{"id": f"e{i}", "type": "match.won", "player_id": "alice",
                                          "data": {"score": 10}} for i in range(2)])
        assert resp.status_code in (200, 202), resp.text
        await settle(runtime)
        assert await _deliver(runtime) == 1  # one level-up; points.credited is filtered out
        clock.advance(seconds=4)
        assert await tasks.send_due(runtime) == 0  # the second attempt waits 5 s
        clock.advance(seconds=1)
        assert await tasks.send_due(runtime) == 1
        clock.advance(minutes=5)
        assert await tasks.send_due(runtime) == 1
        clock.advance(hours=1)
        assert await tasks.send_due(runtime) == 0
        # The relay hands the same messages over again: no second delivery is made.
        async with unit_of_work(runtime.sessions) as session:
            rows = (await session.execute(sa.select(OutboxMessage).where(OutboxMessage.app_id == keys.app_id)
                                          .order_by(OutboxMessage.seq))).scalars().all()
            messages = [relay.message_of((r.txid, r.seq, r.app_id, r.type, r.player_id, r.event_seq, r.payload,
                                          r.created_at)) for r in rows]
            await WebhookSubscriber(runtime).handle(session, messages)
        assert await tasks.send_due(runtime) == 0
    assert len(receiver.requests) == 3
    assert len(receiver.unique_ids()) == 1  # after dedupe by webhook-id: once
    assert all(signed_by(endpoint["secret"], r) for r in receiver.requests)
    body = orjson.loads(receiver.requests[-1].body)
    assert body["type"] == "level.up" and body["data"]["player_id"] == "alice" and body["data"]["to"] == 2
    log = await _log(client, keys, endpoint["id"])
    assert [(d["status"], d["attempts"]) for d in log] == [("delivered", 3)]
    detail = (await client.get(f"/v1/webhooks/{endpoint['id']}/deliveries/{log[0]['id']}", headers=keys.server)).json()
    assert [a["status_code"] for a in detail["log"]] == [500, 503, 200]
    assert detail["log"][2]["response_excerpt"] == "answer 200" and detail["log"][0]["trigger"] == "auto"
    assert all(a["duration_ms"] >= 0 for a in detail["log"])


async def test_a_receiver_down_for_the_whole_schedule_ends_in_dead_letters_and_is_redelivered(
        runtime: Runtime, client: httpx.AsyncClient, factory: Factory, clock: ManualClock) -> None:
    keys = await factory.app()
    async with receiving(default=503) as receiver:
        endpoint = await _endpoint(client, keys, receiver.url)
        await _announce(runtime, keys.app_id, n=1)
        assert await _deliver(runtime) == 1
        for wait in service.SCHEDULE[1:]:
            clock.advance(seconds=wait.total_seconds())
            assert await tasks.send_due(runtime) == 1
        clock.advance(hours=24)
        assert await tasks.send_due(runtime) == 0
        assert len(receiver.requests) == len(service.SCHEDULE) == 8
        dead = (await client.get("/v1/webhooks/dead-letters", headers=keys.server)).json()["items"]
        assert [d["endpoint_id"] for d in dead] == [endpoint["id"]] and dead[0]["attempts"] == 8
        assert (await _log(client, keys, endpoint["id"]))[0]["status"] == "dead"
        receiver.default = 204
        resp = await client.post(f"/v1/webhooks/{endpoint['id']}/deliveries/{dead[0]['id']}/retry",
                                 headers=keys.server)
        assert resp.status_code == 200 and resp.json()["status"] == "pending", resp.text
        assert await tasks.send_due(runtime) == 1
    log = await _log(client, keys, endpoint["id"])
    assert log[0]["status"] == "delivered"
    detail = (await client.get(f"/v1/webhooks/{endpoint['id']}/deliveries/{log[0]['id']}", headers=keys.server)).json()
    assert detail["log"][-1]["trigger"] == "manual" and detail["log"][-1]["status_code"] == 204
    assert (await client.get("/v1/webhooks/dead-letters", headers=keys.server)).json()["items"] == []
    assert len(receiver.unique_ids()) == 1


async def test_no_retry_on_4xx_but_408_409_429(runtime: Runtime, client: httpx.AsyncClient, factory: Factory,
                                               clock: ManualClock) -> None:
    keys = await factory.app()
    async with receiving(answers=[400, 429, 200]) as receiver:
        endpoint = await _endpoint(client, keys, receiver.url)
        await _announce(runtime, keys.app_id, "a.one")
        assert await _deliver(runtime) == 1  # 400: final
        await _announce(runtime, keys.app_id, "a.two")
        assert await _deliver(runtime) == 1  # 429: retried
        clock.advance(seconds=5)
        assert await tasks.send_due(runtime) == 1
    by_type = {d["event_type"]: d for d in await _log(client, keys, endpoint["id"])}
    assert by_type["a.one"]["status"] == "dead" and by_type["a.one"]["attempts"] == 1
    assert by_type["a.two"]["status"] == "delivered" and by_type["a.two"]["attempts"] == 2


async def test_redirects_are_not_followed_and_slow_receivers_time_out(
        runtime: Runtime, client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    runtime.settings.webhooks_timeout_seconds = 0.3
    async with receiving(answers=[302], location="http://127.0.0.1:9/elsewhere") as hop, \
            receiving(delay=2.0) as slow:
        first = await _endpoint(client, keys, hop.url)
        second = await _endpoint(client, keys, slow.url)
        await _announce(runtime, keys.app_id)
        assert await _deliver(runtime) == 2
    hop_log = (await _log(client, keys, first["id"]))[0]
    slow_log = (await _log(client, keys, second["id"]))[0]
    assert hop_log["last_status"] == 302 and "not followed" in hop_log["last_error"]
    assert hop_log["status"] == "pending" and len(hop.requests) == 1
    assert slow_log["last_error"] == "timed out" and slow_log["status"] == "pending"


async def test_an_endpoint_failing_for_five_days_is_disabled_and_its_owner_told(
        runtime: Runtime, client: httpx.AsyncClient, factory: Factory, clock: ManualClock) -> None:
    keys = await factory.app()
    async with receiving(default=500) as receiver:
        endpoint = await _endpoint(client, keys, receiver.url, event_types=["a.b"])
        await _announce(runtime, keys.app_id, "a.b")
        assert await _deliver(runtime) == 1
        clock.advance(days=5)
        await _announce(runtime, keys.app_id, "a.b")
        await _deliver(runtime)
        got = (await client.get(f"/v1/webhooks/{endpoint['id']}", headers=keys.server)).json()
        assert got["enabled"] is False and "failing since" in got["disabled_reason"]
        await _announce(runtime, keys.app_id, "a.b")
        calls = len(receiver.requests)
        await _deliver(runtime)
        assert len(receiver.requests) == calls  # a disabled endpoint is not called
        resp = await client.post(f"/v1/webhooks/{endpoint['id']}/replay",
                                 params={"since": "2020-01-01T00:00:00Z"}, headers=keys.server)
        problem(resp, 409, "endpoint_disabled")
    async with unit_of_work(runtime.sessions) as session:
        told = (await session.execute(sa.select(OutboxMessage.payload).where(
            OutboxMessage.app_id == keys.app_id, OutboxMessage.type == service.DISABLED_TYPE))).scalars().all()
    assert [t["endpoint_id"] for t in told] == [endpoint["id"]]
    resp = await client.patch(f"/v1/webhooks/{endpoint['id']}", headers=keys.server, json={"enabled": True})
    assert resp.json()["enabled"] is True and resp.json()["failing_since"] is None


async def test_secret_rotation_signs_with_both_during_the_overlap(
        runtime: Runtime, client: httpx.AsyncClient, factory: Factory, clock: ManualClock) -> None:
    keys = await factory.app()
    async with receiving() as receiver:
        endpoint = await _endpoint(client, keys, receiver.url)
        old = endpoint["secret"]
        resp = await client.post(f"/v1/webhooks/{endpoint['id']}/rotate-secret", headers=keys.server,
                                 json={"overlap_seconds": 3600})
        assert resp.status_code == 200, resp.text
        new = resp.json()["secret"]
        assert new != old and new.startswith("whsec_")
        await _announce(runtime, keys.app_id, n=1)
        await _deliver(runtime)
        clock.advance(hours=2)
        await _announce(runtime, keys.app_id, n=2)
        await _deliver(runtime)
    during, after = receiver.requests
    assert signed_by(old, during) and signed_by(new, during)
    assert signed_by(new, after) and not signed_by(old, after)
    # The secret is shown only at creation and rotation.
    listed = (await client.get("/v1/webhooks", headers=keys.server)).json()["items"]
    assert [e["id"] for e in listed] == [endpoint["id"]] and "secret" not in listed[0]


async def test_replay_since_a_time_delivers_again(runtime: Runtime, client: httpx.AsyncClient, factory: Factory,
                                                  clock: ManualClock) -> None:
    keys = await factory.app()
    async with receiving() as receiver:
        endpoint = await _endpoint(client, keys, receiver.url)
        await _announce(runtime, keys.app_id, n=1)
        await _deliver(runtime)
        since = clock.advance(hours=1)
        await _announce(runtime, keys.app_id, n=2)
        await _announce(runtime, keys.app_id, n=3)
        await _deliver(runtime)
        resp = await client.post(f"/v1/webhooks/{endpoint['id']}/replay", params={"since": since.isoformat()},
                                 headers=keys.server)
        assert resp.status_code == 200 and resp.json() == {"requeued": 2}, resp.text
        assert await tasks.send_due(runtime) == 2
    sent = [orjson.loads(r.body)["data"]["n"] for r in receiver.requests]  # calls run concurrently
    assert sent[0] == 1 and sorted(sent[1:3]) == [2, 3] and sorted(sent[3:]) == [2, 3]


async def test_endpoint_crud_filters_and_bad_input(runtime: Runtime, client: httpx.AsyncClient,
                                                   factory: Factory) -> None:
    keys = await factory.app()
    other = await factory.app()
    async with receiving() as receiver:
        endpoint = await _endpoint(client, keys, receiver.url, event_types=["quest.completed"])
        resp = await client.patch(f"/v1/webhooks/{endpoint['id']}", headers=keys.server,
                                  json={"event_types": ["level.up"], "description": "levels"})
        assert resp.json()["event_types"] == ["level.up"] and resp.json()["description"] == "levels"
        await _announce(runtime, keys.app_id, "quest.completed")
        await _announce(runtime, keys.app_id, "level.up")
        await _announce(runtime, other.app_id, "level.up")
        await _deliver(runtime)
        assert [orjson.loads(r.body)["type"] for r in receiver.requests] == ["level.up"]
    for body in ({"url": "ftp://example.com/x"}, {"url": "http://user:pw@example.com/"},
                 {"url": receiver.url, "event_types": ["Bad Type!"]}, {"url": receiver.url, "secret": "mine"}):
        problem(await client.post("/v1/webhooks", headers=keys.server, json=body), 422)
    problem(await client.get(f"/v1/webhooks/{endpoint['id']}", headers=other.server), 404, "endpoint_not_found")
    problem(await client.get("/v1/webhooks/whe_nope", headers=keys.server), 404, "endpoint_not_found")
    problem(await client.post(f"/v1/webhooks/{endpoint['id']}/replay", params={"since": "yesterday"},
                              headers=keys.server), 422)
    problem(await client.post("/v1/webhooks", headers=keys.client, json={"url": receiver.url}), 403)
    resp = await client.delete(f"/v1/webhooks/{endpoint['id']}", headers=keys.server)
    assert resp.status_code == 204
    problem(await client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=keys.server), 404)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/x", "http://10.1.2.3/x", "http://169.254.169.254/latest",
                                 "http://[::1]/x", "http://[::ffff:192.168.0.1]/x", "http://localhost/x"])
async def test_private_addresses_are_refused_unless_allowed(runtime: Runtime, client: httpx.AsyncClient,
                                                            factory: Factory, url: str) -> None:
    keys = await factory.app()
    runtime.settings.webhooks_allow_private = False
    problem(await client.post("/v1/webhooks", headers=keys.server, json={"url": url}), 422, "url_not_allowed")
    runtime.settings.webhooks_allow_private = True
    assert (await client.post("/v1/webhooks", headers=keys.server, json={"url": url})).status_code == 201


async def test_an_address_that_turns_private_is_refused_at_call_time(
        runtime: Runtime, client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    async with receiving() as receiver:
        endpoint = await _endpoint(client, keys, receiver.url)
        runtime.settings.webhooks_allow_private = False
        await _announce(runtime, keys.app_id)
        await _deliver(runtime)
    assert receiver.requests == []
    log = (await _log(client, keys, endpoint["id"]))[0]
    assert log["status"] == "dead" and log["last_error"].startswith("refused")


def test_private_addresses_are_never_allowed_in_production() -> None:
    base = {"secret_key": "x" * 40, "database_url": f"sqlite+aiosqlite:///{uuid.uuid4().hex}.db"}
    assert service.allow_private(Settings(env="development", **base)) is True  # type: ignore[arg-type]
    assert service.allow_private(Settings(env="development", webhooks_allow_private=False, **base)) is False  # type: ignore[arg-type]
    assert service.allow_private(Settings(env="production", webhooks_allow_private=True, **base)) is False  # type: ignore[arg-type]


def test_the_schedule_is_the_specs() -> None:
    assert [int(s.total_seconds()) for s in service.SCHEDULE] == [0, 5, 300, 1800, 7200, 18000, 36000, 36000]
    assert timedelta(days=5) == service.DISABLE_AFTER
