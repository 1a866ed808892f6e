"""CORS inside the edge answers what Starlette's ``CORSMiddleware`` around the edge answered.

The edge applies the engine's CORS policy itself (``kit.middleware.cors_policy``): a request
without ``Origin`` pays only the ``Vary`` header, one with it goes through Starlette's own code.
Each request below is sent to both arrangements and must get the same status, headers (the
request id aside) and body.
"""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry

from questline.kit.metrics import HttpMetrics
from questline.kit.middleware import EdgeLimits, EdgeMiddleware, cors_policy

LIMITS = EdgeLimits(max_body_bytes=100, max_upload_bytes=100, max_url_bytes=2000, max_header_bytes=8000,
                    body_timeout_seconds=5)


def inner() -> FastAPI:
    app = FastAPI()

    @app.get("/plain")
    async def plain() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/varies")
    async def varies() -> JSONResponse:
        return JSONResponse({"ok": "yes"}, headers={"Vary": "Accept-Encoding"})

    @app.post("/echo")
    async def echo(body: dict[str, str]) -> dict[str, str]:
        return body

    return app


def arrangements(origins: list[str]) -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
    policy = cors_policy(origins)
    assert policy is not None
    before = cors_policy(origins)  # Starlette's middleware, the same options, around an edge without CORS
    assert before is not None
    before.app = EdgeMiddleware(inner(), limits=LIMITS, metrics=HttpMetrics(CollectorRegistry()))
    now = EdgeMiddleware(inner(), limits=LIMITS, metrics=HttpMetrics(CollectorRegistry()), cors=policy)
    return (httpx.AsyncClient(transport=httpx.ASGITransport(app=before), base_url="http://cors.test"),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=now), base_url="http://cors.test"))


def without_request_id(answer: httpx.Response) -> object:
    if "json" not in answer.headers.get("content-type", ""):
        return answer.content
    body = answer.json()
    return {k: v for k, v in body.items() if k != "request_id"} if isinstance(body, dict) else body


TOO_LARGE = b'{"a": "' + b"x" * 200 + b'"}'
REQUESTS: list[tuple[str, str, dict[str, str], bytes | None]] = [
    ("GET", "/plain", {}, None),
    ("GET", "/plain", {"Origin": "https://game.example"}, None),
    ("GET", "/plain", {"Origin": "https://other.example"}, None),
    ("GET", "/plain", {"Origin": ""}, None),
    ("GET", "/varies", {}, None),
    ("GET", "/varies", {"Origin": "https://game.example"}, None),
    ("GET", "/missing", {"Origin": "https://game.example"}, None),
    ("POST", "/echo", {"Origin": "https://game.example", "Content-Type": "application/json"}, b'{"a": "b"}'),
    ("POST", "/echo", {"Content-Type": "application/json"}, TOO_LARGE),  # 413 at the edge
    ("POST", "/echo", {"Origin": "https://game.example", "Content-Type": "application/json"}, TOO_LARGE),
    ("OPTIONS", "/echo", {"Origin": "https://game.example", "Access-Control-Request-Method": "POST",
                          "Access-Control-Request-Headers": "Authorization, Content-Type"}, None),
    ("OPTIONS", "/echo", {"Origin": "https://game.example", "Access-Control-Request-Method": "POST",
                          "Access-Control-Request-Headers": "X-Not-Allowed"}, None),
    ("OPTIONS", "/echo", {"Origin": "https://other.example", "Access-Control-Request-Method": "GET"}, None),
    ("OPTIONS", "/echo", {"Origin": "https://game.example"}, None),  # not a preflight: the app's 405
]


@pytest.mark.parametrize("origins", [["*"], ["https://game.example"]], ids=["any origin", "one origin"])
async def test_cors_in_the_edge_answers_as_starlette_around_it(origins: list[str]) -> None:
    before, now = arrangements(origins)
    async with before, now:
        for method, path, headers, body in REQUESTS:
            old = await before.request(method, path, headers=headers, content=body)
            new = await now.request(method, path, headers=headers, content=body)
            where = (origins, method, path, headers)
            assert new.status_code == old.status_code, where
            assert without_request_id(new) == without_request_id(old), where
            strip = {"x-request-id"}
            assert ([(k, v) for k, v in new.headers.multi_items() if k not in strip]
                    == [(k, v) for k, v in old.headers.multi_items() if k not in strip]), where


def test_no_origins_no_policy() -> None:
    assert cors_policy([]) is None
