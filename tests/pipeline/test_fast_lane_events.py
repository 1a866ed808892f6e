"""``POST /v1/events`` in the fast lane (``kit.fastlane``) answers exactly as the FastAPI route does.

A write cannot be sent twice to the same app (the second would be a duplicate), so every request
of the matrix goes to two apps with the same content: one with the lane on, one with it off.
Status, body, the headers a client may read, the route the metrics count, and what was stored
must be the same; the requests the lane takes must have been answered by it, and the shapes it
leaves to FastAPI (``?wait=true``, idempotency keys, bodies that are not JSON or not parseable,
refused credentials) must have been passed on whole.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import sqlalchemy as sa
from fastapi import FastAPI

from questline.kit.db import unit_of_work
from questline.kit.fastlane import FastLane
from questline.kit.ratelimit import RateLimiter
from questline.kit.runtime import Runtime
from questline.pipeline.models import EventRecord
from questline.pipeline.worker import drain
from questline.tenancy import service as tenancy
from tests.conftest import AppKeys, Factory

T0 = "2026-03-10T11:30:00Z"  # inside the window a client may send in (the clock reads 12:00)
SIGNIFICANT = ("content-type", "content-length", "x-request-id", "ratelimit-policy", "ratelimit", "retry-after",
               "www-authenticate", "access-control-allow-origin", "access-control-expose-headers", "location")


def lane_of(engine: FastAPI) -> FastLane:
    lane = engine.state.fast_lane
    assert isinstance(lane, FastLane)
    return lane


def counted(runtime: Runtime) -> dict[tuple[str, str, str], float]:
    return {(s.labels["method"], s.labels["route"], s.labels["status"]): s.value
            for metric in runtime.metrics.requests.collect() for s in metric.samples if s.name.endswith("_total")}


def ev(player: str, id_: str, type_: str = "match.won", **data: Any) -> dict[str, Any]:
    return {"id": id_, "player_id": player, "type": type_, "timestamp": T0, "data": data}


class Pair:
    """Two apps with the same content: ``on`` is sent through the lane, ``off`` through FastAPI."""

    def __init__(self, client: httpx.AsyncClient, engine: FastAPI, runtime: Runtime,
                 on: AppKeys, off: AppKeys, tokens: dict[str, tuple[dict[str, str], dict[str, str]]]) -> None:
        self.client, self.engine, self.runtime = client, engine, runtime
        self.on, self.off, self.tokens = on, off, tokens

    def auth(self, who: str, lane: bool) -> dict[str, str]:
        keys = self.on if lane else self.off
        if who == "server":
            return keys.server
        if who == "client":
            return keys.client
        if who == "none":
            return {}
        if who == "forged":
            return {"Authorization": "Bearer " + keys.server_key[:-2] + "xx"}
        return self.tokens[who][0 if lane else 1]

    async def send(self, who: str, content: bytes, *, headers: dict[str, str] | None = None,
                   params: dict[str, str] | None = None) -> tuple[httpx.Response, bool]:
        """The reply through FastAPI, checked equal to the one through the lane; and whether the lane took it."""
        lane = lane_of(self.engine)
        replies, metered, answered = [], [], False
        for enabled in (True, False):
            lane.enabled = enabled
            self.runtime.limiter = RateLimiter()
            before, counts = lane.answered, counted(self.runtime)
            resp = await self.client.post(
                "/v1/events", content=content, params=params,
                headers={"content-type": "application/json", **self.auth(who, enabled), "X-Request-ID": "req-same",
                         "Origin": "https://game.example", **(headers or {})})
            if enabled:
                answered = lane.answered > before
            replies.append(resp)
            metered.append({k: v - counts.get(k, 0) for k, v in counted(self.runtime).items()
                            if v != counts.get(k, 0)})
        lane.enabled = True
        on, off = replies
        where = (who, content[:120], headers, params)
        assert on.status_code == off.status_code, (where, on.text, off.text)
        assert on.content == off.content, (where, on.text, off.text)
        for name in SIGNIFICANT:
            assert on.headers.get(name) == off.headers.get(name), (where, name, on.headers, off.headers)
        assert metered[0] == metered[1], (where, metered)
        return off, answered


async def stored(runtime: Runtime, app_id: str) -> list[tuple[str, str, str, Any]]:
    """The app's events in the database's log (on JetStream they reach it when the worker applies them)."""
    await drain(runtime)
    async with runtime.read_sessions() as session:
        rows = (await session.execute(
            sa.select(EventRecord.event_id, EventRecord.player_id, EventRecord.type, EventRecord.data)
            .where(EventRecord.app_id == app_id).order_by(EventRecord.event_id))).all()
    return [tuple(r) for r in rows]


async def pair(client: httpx.AsyncClient, engine: FastAPI, factory: Factory, runtime: Runtime) -> Pair:
    on, off = await factory.app("Lane Game"), await factory.app("Route Game")
    for keys in (on, off):
        async with unit_of_work(runtime.sessions) as session:
            await tenancy.set_client_event_types(session, keys.app_id, ["match.won"])
    tokens = {name: (await factory.player_token(on, name), await factory.player_token(off, name))
              for name in ("ann", "ben")}
    return Pair(client, engine, runtime, on, off, tokens)


async def test_events_are_taken_the_same_through_the_lane(client: httpx.AsyncClient, engine: FastAPI,
                                                          factory: Factory, runtime: Runtime) -> None:
    p = await pair(client, engine, factory, runtime)
    dumps = orjson.dumps
    taken: list[tuple[str, bytes, int]] = [
        ("server", dumps(ev("ann", "e1", points=3)), 202),
        ("server", dumps(ev("ann", "e1", points=3)), 202),  # a duplicate: acknowledged, listed
        ("server", dumps([ev("ann", "e2"), ev("ben", "e3", level=2)]), 202),
        ("server", dumps({"events": [ev("ben", "e4"), ev("ben", "e4")]}), 202),  # a duplicate within one request
        ("server", dumps([ev("ann", "e5"), {"id": "e6", "player_id": "bad id!", "type": "x"}]), 202),
        ("server", b'[{"id": "e7", "player_id": "ann", "type": "match.won", "timestamp": "2026-03-10T11:30:00Z",'
                   b' "data": {"big": 123456789012345678901234567890}}]', 422),  # read as an integer (orjson: a float)
        ("ann", dumps(ev("ann", "e8")), 202),  # a player's own event of a client-allowed type
        ("server", dumps(ev("ann", "e9", note="tab\there")), 202),
        # refused after admission: the lane answers with the route's problem
        ("server", b"[]", 422),
        ("server", dumps([ev("ann", f"x{i}") for i in range(1001)]), 422),
        ("server", dumps({"id": "e10", "player_id": "ann"}), 422),
        ("ann", dumps(ev("ben", "e11")), 422),  # another player's event
        ("ann", dumps(ev("ann", "e12", "shop.bought")), 422),  # a type clients may not send
        ("client", dumps(ev("ann", "e13")), 422),  # the publishable key cannot vouch for a player
        ("server", dumps(ev("ann", "e14", text="nul\u0000")), 422),
        ("server", dumps("just a string"), 422),
        ("server", b'{"id": "e15", "player_id": "ann", "type": "t", "data": {"x": NaN}}', 422),  # Python's parser
        ("server", b'"\\ud800"', 422),
    ]
    for who, content, status in taken:
        resp, answered = await p.send(who, content)
        assert resp.status_code == status, (who, content[:80], resp.text)
        assert answered, (who, content[:80])
    first = orjson.loads((await p.send("server", dumps(ev("ann", "e1"))))[0].content)
    assert first["duplicates"] == ["e1"] and first["accepted"] == []

    passed_on: list[tuple[str, bytes, dict[str, str] | None, dict[str, str] | None, int]] = [
        ("server", b"{not json", None, None, 400),
        ("server", b"", None, None, 422),
        ("server", dumps(ev("ann", "e16")), {"content-type": "text/plain"}, None, 422),
        ("server", dumps(ev("ann", "e17")), {"Idempotency-Key": "k-1"}, None, 202),
        ("server", dumps(ev("ann", "e18")), None, {"wait": "false"}, 202),
        ("server", dumps(ev("ann", "e19")), None, {"wait": "maybe"}, 422),
        ("none", dumps(ev("ann", "e20")), None, None, 401),
        ("forged", dumps(ev("ann", "e21")), None, None, 401),
    ]
    for who, content, headers, params, status in passed_on:
        resp, answered = await p.send(who, content, headers=headers, params=params)
        assert resp.status_code == status, (who, content[:80], headers, params, resp.text)
        if params != {"wait": "false"}:
            assert not answered, (who, content[:80], headers, params)

    # What each app stored is the same, event for event.
    assert await stored(runtime, p.on.app_id) == await stored(runtime, p.off.app_id)
    kept = ["e1", "e17", "e18", "e2", "e3", "e4", "e5", "e8", "e9"]
    assert [r[0] for r in await stored(runtime, p.on.app_id)] == kept


async def test_rate_limits_and_revoked_keys_are_the_same(client: httpx.AsyncClient, engine: FastAPI,
                                                         factory: Factory, runtime: Runtime) -> None:
    p = await pair(client, engine, factory, runtime)
    runtime.settings = runtime.settings.model_copy(update={"rate_limit_per_key": "2/minute"})
    lane = lane_of(engine)
    seen: dict[bool, list[tuple[int, bytes, str | None, str | None]]] = {}
    for enabled in (True, False):
        lane.enabled = enabled
        runtime.limiter = RateLimiter()
        keys = p.on if enabled else p.off
        seen[enabled] = []
        for i in range(3):
            resp = await client.post("/v1/events", json=ev("ann", f"r{i}"),
                                     headers={**keys.server, "X-Request-ID": "req-same"})
            seen[enabled].append((resp.status_code, resp.content, resp.headers.get("retry-after"),
                                  resp.headers.get("ratelimit")))
    lane.enabled = True
    assert seen[True] == seen[False]
    assert [s[0] for s in seen[True]] == [202, 202, 429]
    # The refused third event was not stored on either path.
    assert [r[0] for r in await stored(runtime, p.on.app_id)] == ["r0", "r1"]
    assert [r[0] for r in await stored(runtime, p.off.app_id)] == ["r0", "r1"]

    runtime.settings = runtime.settings.model_copy(update={"rate_limit_per_key": "100000/minute"})
    for keys in (p.on, p.off):
        parsed = tenancy.parse_key(keys.server_key)
        assert parsed is not None
        async with unit_of_work(runtime.sessions) as session:
            await tenancy.revoke_key(session, runtime.clock, keys.app_id, parsed[1])
    resp, answered = await p.send("server", orjson.dumps(ev("ann", "gone")))
    assert resp.status_code == 401 and resp.json()["code"] == "key_revoked" and not answered
