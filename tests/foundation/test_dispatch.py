"""The route table's prefix guards (kit.dispatch) pick exactly the route FastAPI's own walk picks."""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.routing import BaseRoute, Match

from questline.kit.routing import exposed_api_routes


def _scope(method: str, path: str) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": [], "query_string": b""}


def _pick(routes: list[BaseRoute], scope: dict[str, Any], *, guarded: bool) -> tuple[BaseRoute | None, Match]:
    """The route the app's router hands the request to: the first full match, else the first partial."""
    partial = None
    for route in routes:
        match, _ = route.matches(dict(scope)) if guarded else type(route).matches(route, dict(scope))
        if match is Match.FULL:
            return route, match
        if match is Match.PARTIAL and partial is None:
            partial = route
    return partial, Match.PARTIAL if partial is not None else Match.NONE


async def test_every_route_is_reached_as_without_the_guards(engine: FastAPI) -> None:
    routes = engine.router.routes
    assert sum("matches" in vars(route) for route in routes) >= 30  # the areas' routers are guarded
    paths = set()
    for exposed in exposed_api_routes(routes):
        concrete = re.sub(r"\{[^}]+\}", "x1", exposed.path)
        for method in exposed.methods:
            paths.add((method, concrete))
            paths.add(("DELETE", concrete))  # often no such method: a partial match (405)
        paths.add(("GET", concrete + "/"))  # a trailing slash: no route, a redirect probe
    paths |= {("GET", "/"), ("GET", "/v1"), ("GET", "/v1/"), ("GET", "/v1/nothing/here"), ("GET", "/healthz"),
              ("GET", "/console/apps/x1"), ("GET", "/docs"), ("GET", "/v2/players/x1"), ("GET", "//v1/players")}
    for method, path in sorted(paths):
        scope = _scope(method, path)
        assert _pick(routes, scope, guarded=True) == _pick(routes, scope, guarded=False), (method, path)


async def test_requests_still_meet_their_routes(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code == 200
    missing = await client.get("/v1/nothing/here")
    assert missing.status_code == 404
    wrong_method = await client.delete("/v1/players/p1/account")  # the route exists; the method does not
    assert wrong_method.status_code == 405
