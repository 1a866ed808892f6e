"""The fast lane's mechanism (``kit.fastlane``) on a small app of its own: it reads parameters as
FastAPI does, never takes a path another route would answer, and passes on what it declines.

The board reads it serves in the engine are compared with FastAPI's in
``tests/leaderboards/test_fast_lane.py``.
"""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import orjson
import pytest
from fastapi import FastAPI, Path, Query

from questline.kit.errors import NotFound
from questline.kit.fastlane import FastLane, FastLaneMiddleware, LaneAnswer, LaneCall, LaneHandler
from questline.kit.routing import ExposedRoute
from questline.kit.runtime import Runtime


async def admitted() -> None:
    return None


def build(runtime: Runtime) -> tuple[FastAPI, FastLane]:
    app = FastAPI()

    @app.get("/v1/things/special")
    async def special() -> dict[str, str]:
        return {"from": "special"}

    @app.get("/v1/things/{key}")
    async def thing(key: Annotated[str, Path(pattern=r"^[a-z]+$")], n: Annotated[int, Query(ge=1, le=9)] = 3,
                    q: Annotated[str | None, Query(max_length=5)] = None, flag: bool = False) -> dict[str, Any]:
        return {"from": "fastapi", "key": key, "n": n, "q": q, "flag": flag}

    def echo(_: ExposedRoute) -> LaneHandler:
        async def handler(call: LaneCall) -> LaneAnswer | None:
            if call.params["key"] == "declined":
                return None
            if call.params["key"] == "missing":
                raise NotFound("no such thing")
            return LaneAnswer(orjson.dumps({"from": "lane", **call.params}), admitted)

        return handler

    lane = FastLane(runtime)
    lane.get("/v1/things/{key}", echo)
    lane.bind(app.router.routes)
    app.add_middleware(FastLaneMiddleware, lane=lane)
    return app, lane


async def test_the_lane_reads_parameters_as_fastapi_does(runtime: Runtime) -> None:
    app, lane = build(runtime)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://lane.test") as client:
        for query in ("", "n=5", "n=5&n=7", "q=", "q=%C3%A9t%C3%A9", "q=a+b", "flag=yes", "flag=0", "n=05",
                      "q=toolong", "n=0", "n=x", "n=", "flag=maybe", "other=1&n=2"):
            lane.enabled = True
            on = await client.get(f"/v1/things/abc?{query}")
            lane.enabled = False
            off = await client.get(f"/v1/things/abc?{query}")
            assert on.status_code == off.status_code, query
            if on.status_code == 200:
                assert on.json()["from"] == "lane" and off.json()["from"] == "fastapi", query
                assert {**on.json(), "from": ""} == {**off.json(), "from": ""}, query
            else:
                assert on.content == off.content, query


async def test_the_lane_leaves_other_routes_and_what_it_declines(runtime: Runtime) -> None:
    app, _ = build(runtime)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://lane.test") as client:
        assert (await client.get("/v1/things/special")).json() == {"from": "special"}  # matched first by FastAPI
        assert (await client.get("/v1/things/other")).json()["from"] == "lane"
        assert (await client.get("/v1/things/declined")).json()["from"] == "fastapi"
        assert (await client.get("/v1/things/missing")).json()["from"] == "fastapi"  # a refusal: FastAPI says it
        assert (await client.get("/v1/things/BAD")).status_code == 422  # FastAPI's own validation
        assert (await client.head("/v1/things/other")).status_code == 405
        assert (await client.get("/v1/things/other/")).status_code in (307, 404)


def test_the_lane_stands_in_only_for_routes_the_app_serves(runtime: Runtime) -> None:
    app, _ = build(runtime)
    lane = FastLane(runtime)
    lane.get("/v1/nothing/{key}", lambda _: admitted)  # type: ignore[arg-type,return-value]
    with pytest.raises(LookupError):
        lane.bind(app.router.routes)
