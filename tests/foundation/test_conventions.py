"""API conventions every route gets from shared code: /v1, OpenAPI, problem+json errors,
request ids, bounded bodies, and bad input answered with a 4xx that changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from questline.kit.routing import exposed_api_routes
from questline.kit.settings import Settings
from tests.conftest import Factory, problem

LIMIT = 4096


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_body_bytes": LIMIT})


async def test_openapi_documents_every_v1_route(client: httpx.AsyncClient, engine: FastAPI) -> None:
    resp = await client.get("/openapi.json")
    assert resp.status_code == 200
    spec = resp.json()
    documented = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    for route in exposed_api_routes(engine.routes):
        if not route.path.startswith("/v1/"):
            continue  # the public referral redirects (/c/...) are links, not API operations
        for method in route.methods:
            assert (route.path, method) in documented, f"{method} {route.path} is not in /openapi.json"
    assert all(path.startswith("/v1/") or path in {"/healthz", "/readyz", "/metrics"} for path in spec["paths"])
    assert spec["paths"]["/v1/auth/login"]["post"]["x-access"] == "anonymous"

    docs = await client.get("/docs")
    assert docs.status_code == 200 and "text/html" in docs.headers["content-type"]
    assert "/openapi.json" in docs.text


async def test_unknown_route_is_a_problem_404(client: httpx.AsyncClient) -> None:
    for path in ("/v1/no-such-thing", "/nowhere", "/v2/players"):
        body = problem(await client.get(path), 404, "not_found")
        assert body["instance"] == path
        assert body["type"].endswith("/not_found") and body["title"]


async def test_wrong_method_is_a_problem_405(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    resp = await client.delete("/v1/players", headers=keys.server)
    problem(resp, 405, "method_not_allowed")
    assert resp.headers["allow"] == "GET"


async def test_request_validation_is_422_validation_failed(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    resp = await client.put("/v1/players/alice/account", headers=keys.server,
                            json={"timezone": "Mars/Olympus_Mons", "colour": "red"})
    body = problem(resp, 422, "validation_failed")
    located = {".".join(e["loc"]) for e in body["errors"]}
    assert located == {"body.timezone", "body.colour"}
    assert "timezone" in body["detail"] or "colour" in body["detail"]
    # Path parameters are validated too, and nothing was created by the refused calls.
    problem(await client.put("/v1/players/bad%20id!/account", headers=keys.server, json={}), 422, "validation_failed")
    problem(await client.get("/v1/players/alice/account", headers=keys.server), 404, "player_not_found")


async def test_malformed_json_is_400(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    for raw in (b"{", b'{"display_name": "x",}', b"\xff\xfe"):
        resp = await client.put("/v1/players/alice/account", content=raw,
                                headers={**keys.server, "content-type": "application/json"})
        problem(resp, 400, "malformed_json")
    problem(await client.get("/v1/players/alice/account", headers=keys.server), 404, "player_not_found")


async def test_nul_characters_are_refused_on_every_backend(client: httpx.AsyncClient, factory: Factory) -> None:
    """PostgreSQL cannot store NUL in text; SQLite can. The API refuses it alike on both."""
    keys = await factory.app()
    body = problem(await client.put("/v1/players/alice/account", headers=keys.server,
                                    json={"display_name": "a\u0000b"}), 422, "validation_failed")
    assert "NUL" in body["detail"]
    problem(await client.put("/v1/players/alice/account", headers=keys.server,
                             json={"traits": {"k\u0000": "v"}}), 422, "validation_failed")
    problem(await client.get("/v1/players?cursor=%00", headers=keys.server), 422, "validation_failed")
    # A literal backslash-u sequence is just text, and is kept as sent.
    resp = await client.put("/v1/players/alice/account", headers=keys.server, json={"display_name": "\\u0000"})
    assert resp.status_code == 200 and resp.json()["display_name"] == "\\u0000"


async def test_request_ids_are_echoed_or_made(client: httpx.AsyncClient) -> None:
    mine = await client.get("/v1/nope", headers={"X-Request-ID": "trace-123.abc"})
    assert mine.headers["x-request-id"] == "trace-123.abc"
    assert problem(mine, 404)["request_id"] == "trace-123.abc"
    unsafe = await client.get("/v1/nope", headers={"X-Request-ID": "bad id with spaces"})
    made = problem(unsafe, 404)["request_id"]
    assert made.startswith("req_") and unsafe.headers["x-request-id"] == made
    other = problem(await client.get("/v1/nope"), 404)["request_id"]
    assert other != made


async def test_bodies_over_the_limit_are_413(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    big = {"display_name": "x" * 100, "traits": {f"k{i}": "v" * 100 for i in range(45)}}
    url = "/v1/players/alice/account"

    # Declared with Content-Length: refused before the app reads a byte.
    problem(await client.put(url, headers=keys.server, json=big), 413, "payload_too_large")

    # Streamed (chunked, no Content-Length): refused once the stream outgrows the limit.
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b" " * 1024

    resp = await client.put(url, headers={**keys.server, "content-type": "application/json"}, content=chunks())
    assert "content-length" not in resp.request.headers
    body = problem(resp, 413, "payload_too_large")
    assert str(LIMIT) in body["detail"]

    # Nothing was written, and a body within the limit goes through.
    problem(await client.get(url, headers=keys.server), 404, "player_not_found")
    ok = await client.put(url, headers=keys.server, json={"display_name": "fits"})
    assert ok.status_code == 200 and ok.json()["display_name"] == "fits"


async def test_ops_routes_stay_outside_v1(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    problem(await client.get("/v1/healthz"), 404, "not_found")
