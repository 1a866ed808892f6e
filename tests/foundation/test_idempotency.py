"""Idempotency-Key on POST with Stripe's semantics, on the real request edge."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel

from questline.app import create_app
from questline.kit.clock import ManualClock
from questline.kit.idempotency import IdempotencyRecord, canonical_json, request_fingerprint
from questline.kit.routing import ClockDep, SessionDep, UnitOfWorkRoute
from questline.kit.runtime import Runtime
from questline.players import service as players
from questline.players.schemas import AccountUpdate
from questline.roles import build_scheduler
from questline.tenancy.auth import SERVER, Caller, allow
from tests.achievements.test_badges import png
from tests.conftest import Factory, lifespan, problem
from tests.streaks.helpers import configure


class SlowBody(BaseModel):
    player: str
    wait: bool = False
    fail: bool = False


class Gate:
    """Holds a request inside its endpoint until the test lets it go."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.calls = 0


def slow_router(gate: Gate) -> APIRouter:
    router = APIRouter(prefix="/v1/test", route_class=UnitOfWorkRoute)

    @router.post("/slow", status_code=201)
    async def slow(body: SlowBody, caller: Annotated[Caller, allow(SERVER)], session: SessionDep,
                   clock: ClockDep) -> dict[str, Any]:
        gate.calls += 1
        call = gate.calls
        if body.wait:
            gate.entered.set()
            await gate.release.wait()
        if body.fail:
            raise RuntimeError("the work failed")
        await players.upsert_player(session, clock, caller.app, body.player, AccountUpdate(display_name=f"call {call}"))
        return {"player": body.player, "call": call}

    @router.post("/strict", status_code=201)
    async def strict(caller: Annotated[Caller, allow(SERVER, idempotency="required")]) -> dict[str, str]:
        return {"ok": "yes"}

    return router


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
async def engine(runtime: Runtime, gate: Gate) -> AsyncIterator[FastAPI]:
    app = create_app(runtime=runtime, background=False)
    app.include_router(slow_router(gate))
    async with lifespan(app):
        yield app


def key() -> dict[str, str]:
    return {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}


async def test_replay_is_byte_for_byte_and_the_work_happens_once(client: httpx.AsyncClient,
                                                                 factory: Factory) -> None:
    keys = await factory.app()
    admin = await factory.admin(keys.org_id)
    headers = {**admin.headers(), **key()}
    url = f"/v1/apps/{keys.app_id}/keys"
    first = await client.post(url, headers=headers, json={"kind": "server", "name": "ci"})
    again = await client.post(url, headers=headers, json={"kind": "server", "name": "ci"})
    assert first.status_code == again.status_code == 201
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content  # the same secret, byte for byte
    listed = (await client.get(url, headers=admin.headers())).json()["items"]
    assert [k["name"] for k in listed].count("ci") == 1


async def test_same_key_with_another_request_is_422(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    headers = {**keys.server, **key()}
    assert (await client.post("/v1/test/slow", headers=headers, json={"player": "p1"})).status_code == 201
    problem(await client.post("/v1/test/slow", headers=headers, json={"player": "p2"}), 422, "idempotency_key_reused")
    problem(await client.post("/v1/players/p1/tokens", headers=headers, json={}), 422, "idempotency_key_reused")
    problem(await client.get("/v1/players/p2/account", headers=keys.server), 404, "player_not_found")


async def test_a_duplicate_in_flight_is_409(client: httpx.AsyncClient, factory: Factory, gate: Gate) -> None:
    keys = await factory.app()
    headers = {**keys.server, **key()}
    body = {"player": "racer", "wait": True}
    first = asyncio.create_task(client.post("/v1/test/slow", headers=headers, json=body))
    await asyncio.wait_for(gate.entered.wait(), timeout=60)  # generous: a loaded CI box

    duplicate = await client.post("/v1/test/slow", headers=headers, json=body)
    problem(duplicate, 409, "idempotency_key_in_flight")
    assert duplicate.headers["retry-after"] == "1"
    assert not first.done()

    gate.release.set()
    done = await asyncio.wait_for(first, timeout=60)
    assert done.status_code == 201 and done.json() == {"player": "racer", "call": 1}
    replay = await client.post("/v1/test/slow", headers=headers, json=body)
    assert replay.content == done.content and replay.headers["idempotent-replayed"] == "true"
    assert gate.calls == 1


async def test_keys_are_scoped_per_app_and_per_caller(client: httpx.AsyncClient, factory: Factory,
                                                      gate: Gate) -> None:
    a, b = await factory.app(), await factory.app()
    shared = key()
    from_a = await client.post("/v1/test/slow", headers={**a.server, **shared}, json={"player": "p"})
    from_b = await client.post("/v1/test/slow", headers={**b.server, **shared}, json={"player": "p"})
    assert from_a.status_code == from_b.status_code == 201
    assert "idempotent-replayed" not in from_b.headers and gate.calls == 2

    # Two callers of the same app (two admins) with one key: two keys made, not one replayed.
    first_admin, second_admin = await factory.admin(a.org_id), await factory.admin(a.org_id)
    url = f"/v1/apps/{a.app_id}/keys"
    one = await client.post(url, headers={**first_admin.headers(), **shared}, json={"kind": "client"})
    two = await client.post(url, headers={**second_admin.headers(), **shared}, json={"kind": "client"})
    assert one.status_code == two.status_code == 201 and one.json()["id"] != two.json()["id"]


async def test_problems_are_replayed_but_refused_requests_are_not_stored(client: httpx.AsyncClient,
                                                                         factory: Factory) -> None:
    keys = await factory.app()
    admin = await factory.admin(keys.org_id)
    listed = (await client.get(f"/v1/apps/{keys.app_id}/keys", headers=admin.headers())).json()["items"]
    client_key = next(k["id"] for k in listed if k["kind"] == "client")
    url = f"/v1/apps/{keys.app_id}/keys/{client_key}/revoke"
    assert (await client.post(url, headers=admin.headers())).status_code == 200

    # A problem the endpoint raised is the request's answer: replayed as such.
    headers = {**admin.headers(), **key()}
    conflict = await client.post(url, headers=headers)
    problem(conflict, 409, "key_revoked")
    replay = await client.post(url, headers=headers)
    assert replay.content == conflict.content and replay.headers["idempotent-replayed"] == "true"

    # A request refused before it ran (validation) leaves no record: fixed, it runs.
    headers = {**keys.server, **key()}
    problem(await client.post("/v1/test/slow", headers=headers, json={"wait": "no"}), 422, "validation_failed")
    assert (await client.post("/v1/test/slow", headers=headers, json={"player": "p"})).status_code == 201


async def test_a_server_error_releases_the_key(client: httpx.AsyncClient, factory: Factory, gate: Gate) -> None:
    keys = await factory.app()
    headers = {**keys.server, **key()}
    problem(await client.post("/v1/test/slow", headers=headers, json={"player": "p", "fail": True}), 500,
            "internal_error")
    problem(await client.get("/v1/players/p/account", headers=keys.server), 404, "player_not_found")
    # The same request retried runs again (it is not answered with the stored failure)...
    problem(await client.post("/v1/test/slow", headers=headers, json={"player": "p", "fail": True}), 500,
            "internal_error")
    assert gate.calls == 2


async def test_a_claim_abandoned_by_a_crash_is_taken_over(client: httpx.AsyncClient, factory: Factory,
                                                           runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    headers = {**keys.server, **key()}
    body = b'{"player":"p"}'
    # A process claimed the key and died before answering.
    caller = f"key:{await _server_key_id(client, factory, keys.app_id, keys.org_id)}"
    fingerprint = request_fingerprint("POST", "/v1/test/slow", "", canonical_json({"player": "p"}))
    await runtime.idempotency.claim(keys.app_id, caller, headers["Idempotency-Key"], fingerprint)

    send: dict[str, Any] = {"headers": {**headers, "content-type": "application/json"}, "content": body}
    problem(await client.post("/v1/test/slow", **send), 409, "idempotency_key_in_flight")
    clock.advance(seconds=runtime.settings.idempotency_lock_seconds + 1)
    taken = await client.post("/v1/test/slow", **send)
    assert taken.status_code == 201 and taken.json()["player"] == "p"


async def _server_key_id(client: httpx.AsyncClient, factory: Factory, app_id: str, org_id: str) -> str:
    admin = await factory.admin(org_id)
    items = (await client.get(f"/v1/apps/{app_id}/keys", headers=admin.headers())).json()["items"]
    return str(next(k["id"] for k in items if k["kind"] == "server"))


async def test_keys_expire_after_24_hours_and_the_sweep_deletes_them(client: httpx.AsyncClient, factory: Factory,
                                                                      runtime: Runtime, clock: ManualClock) -> None:
    # A moment of our own, so no other test has claimed this hour's sweep in a shared database.
    clock.set(datetime(2031, 1, 1, tzinfo=UTC) + timedelta(hours=random.randrange(1, 500_000)))
    keys = await factory.app()
    old, young = key(), key()
    first = await client.post("/v1/test/slow", headers={**keys.server, **old}, json={"player": "p"})
    assert first.status_code == 201
    clock.advance(hours=23)
    assert (await client.post("/v1/test/slow", headers={**keys.server, **young}, json={"player": "q"})).is_success
    replay = await client.post("/v1/test/slow", headers={**keys.server, **old}, json={"player": "p"})
    assert replay.headers["idempotent-replayed"] == "true"

    clock.advance(hours=1, seconds=1)  # the old key is now 24h old; the young one is not
    # Only the sweep: at a moment this far out every job is due, over every app of a shared database.
    ran = await build_scheduler(runtime).tick(only={"idempotency.sweep"})
    assert ran == ["idempotency.sweep"]
    async with runtime.sessions() as session:
        left = (await session.execute(
            sa.select(IdempotencyRecord.key).where(IdempotencyRecord.scope == keys.app_id)
        )).scalars().all()
    assert left == [young["Idempotency-Key"]]

    # Expired, the key is free again: a different request with it runs.
    fresh = await client.post("/v1/test/slow", headers={**keys.server, **old}, json={"player": "r"})
    assert fresh.status_code == 201 and "idempotent-replayed" not in fresh.headers


async def test_malformed_and_missing_keys(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    for bad in (b"", b"x" * 256, "caf\u00e9".encode(), b"tab\there"):
        with_bad: dict[str, Any] = {**keys.server, "Idempotency-Key": bad}
        resp = await client.post("/v1/test/slow", headers=with_bad, json={"player": "p"})
        problem(resp, 422, "invalid_idempotency_key")
    problem(await client.post("/v1/test/strict", headers=keys.server), 400, "idempotency_key_required")
    assert (await client.post("/v1/test/strict", headers={**keys.server, **key()})).status_code == 201


async def test_the_same_json_in_another_spelling_is_the_same_request(client: httpx.AsyncClient,
                                                                     factory: Factory, gate: Gate) -> None:
    keys = await factory.app()
    headers = {**keys.server, **key(), "content-type": "application/json"}
    first = await client.post("/v1/test/slow", headers=headers, content=b'{"player": "p", "wait": false}')
    assert first.status_code == 201
    for spelling in (b'{"wait":false,"player":"p"}', b'{\n  "wait" : false ,\n  "player":"\\u0070"\n}'):
        again = await client.post("/v1/test/slow", headers=headers, content=spelling)
        assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true", again.text
        assert again.content == first.content
    assert gate.calls == 1
    # A different value is a different request, however it is spelled.
    problem(await client.post("/v1/test/slow", headers=headers, content=b'{"wait":true,"player":"p"}'), 422,
            "idempotency_key_reused")
    problem(await client.post("/v1/test/slow", headers={**headers, "content-type": "application/json"},
                              content=b'{"player": "p", "wait": false}', params={"extra": "1"}), 422,
            "idempotency_key_reused")


async def test_a_retried_upload_is_the_same_request(client: httpx.AsyncClient, factory: Factory) -> None:
    """Each multipart upload gets a new boundary: the fields and a digest of each file are compared."""
    keys = await factory.app()
    await configure(client, keys, stat={"wins": {"event_type": "match.won"}},
                    achievement={"first-win": {"name": "First Blood",
                                               "criteria": {"stat": "wins", "op": "gte", "value": 1}}})
    headers = {**keys.server, **key()}
    image = png(64, 64)
    first = await client.post("/v1/achievements/first-win/badge", headers=headers,
                              files={"file": ("badge.png", image, "image/png")})
    assert first.status_code == 201, first.text
    retried = await client.post("/v1/achievements/first-win/badge", headers=headers,
                                files={"file": ("badge.png", image, "image/png")})
    assert retried.status_code == 201 and retried.headers["idempotent-replayed"] == "true", retried.text
    assert retried.json()["version"] == first.json()["version"] == 1
    problem(await client.post("/v1/achievements/first-win/badge", headers=headers,
                              files={"file": ("badge.png", png(65, 64), "image/png")}), 422, "idempotency_key_reused")
    catalog = (await client.get("/v1/achievements", headers=keys.server)).json()
    assert catalog["achievements"][0]["badge"]["version"] == 1
