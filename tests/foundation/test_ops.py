"""Operations: liveness, readiness (503 problem+json when a dependency is down), metrics, logs."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from questline.app import create_app
from questline.kit import loopwatch
from questline.kit.logging import configure_logging
from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from tests.conftest import Factory, lifespan, problem


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A second engine with its own settings (the fixtures' engine keeps the healthy ones)."""
    runtime = Runtime.build(settings)
    app = create_app(runtime=runtime, background=False)
    async with lifespan(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://ops.test") as client:
            yield client


async def test_healthz_and_readyz(client: httpx.AsyncClient, settings: Settings) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    expected = {"database": "ok", "schema": "ok"} | ({"redis": "ok"} if settings.redis_url else {})
    assert ready.json() == {"status": "ready", "checks": expected}


async def test_readyz_is_503_when_the_database_is_unreachable(settings: Settings, tmp_path: Path) -> None:
    gone = settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{tmp_path}/missing/dir/q.db",
                                       "redis_url": None})
    async with serve(gone) as client:
        resp = await client.get("/readyz")
        body = problem(resp, 503, "not_ready")
        assert body["checks"]["database"].startswith("unreachable")
        assert int(resp.headers["retry-after"]) > 0
        # API calls answer 503 too, never a 500.
        api = await client.get("/v1/players", headers={"Authorization": "Bearer ql_sk_" + "0" * 26 + "_" + "a" * 32})
        problem(api, 503, "database_unavailable")
        assert int(api.headers["retry-after"]) > 0
        assert (await client.get("/healthz")).status_code == 200  # alive, just not ready


async def test_readyz_is_503_when_redis_is_unreachable(settings: Settings, factory: Factory) -> None:
    keys = await factory.app()
    down = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    async with serve(down) as client:
        body = problem(await client.get("/readyz"), 503, "not_ready")
        assert body["checks"]["database"] == "ok" and body["checks"]["redis"].startswith("unreachable")
        # Rate limits live in Redis when it is configured: a call is a clean 503, not a 500.
        resp = await client.get("/v1/players", headers=keys.server)
        problem(resp, 503, "redis_unavailable")
        assert resp.headers["retry-after"]


async def test_metrics_count_requests_and_latency_by_route(client: httpx.AsyncClient, factory: Factory) -> None:
    keys = await factory.app()
    for pid in ("alice", "bob"):
        assert (await client.put(f"/v1/players/{pid}/account", headers=keys.server, json={})).status_code == 200
    await client.get("/v1/players/carol/account", headers=keys.server)  # a 404 on a known route
    await client.get(f"/v1/unknown/{keys.app_id}")  # no route: one label, not one per path
    resp = await client.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    text = resp.text

    def sample(name: str, **labels: str) -> float:
        rendered = ",".join(f'{k}="{v}"' for k, v in labels.items())
        match = re.search(rf"^{re.escape(name)}{{{re.escape(rendered)}}} (\S+)$", text, re.MULTILINE)
        assert match, f"{name}{{{rendered}}} not in /metrics"
        return float(match.group(1))

    route = "/v1/players/{player_id}/account"
    assert sample("questline_http_requests_total", method="PUT", route=route, status="200") == 2
    assert sample("questline_http_requests_total", method="GET", route=route, status="404") == 1
    assert sample("questline_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert sample("questline_http_request_duration_seconds_count", method="PUT", route=route) == 2
    assert sample("questline_http_request_duration_seconds_sum", method="PUT", route=route) > 0
    assert keys.app_id not in text and "alice" not in text


def _sample(text: str, name: str, **labels: str) -> float:
    rendered = ",".join(f'{k}="{v}"' for k, v in labels.items())
    match = re.search(rf"^{re.escape(name)}(?:{{{re.escape(rendered)}}})? (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def test_metrics_show_the_event_loop_held_and_the_collectors_pauses(client: httpx.AsyncClient) -> None:
    """kit/loopwatch.py: synchronous work holding the loop shows as a late timer; a collection as a pause."""

    async def late_ticks() -> float:  # timer ticks that fired more than 50 ms late
        text = (await client.get("/metrics")).text
        return (_sample(text, "questline_event_loop_lag_seconds_count")
                - _sample(text, "questline_event_loop_lag_seconds_bucket", le="0.05"))

    before = await late_ticks()
    held_until = time.perf_counter() + 0.1
    while time.perf_counter() < held_until:  # synchronous work, as a long batch's: the due tick fires >= 75 ms late
        pass
    for _ in range(100):  # the watcher runs on the engine's loop: give it its turn, bounded
        if await late_ticks() > before:
            break
        await asyncio.sleep(0.01)
    assert await late_ticks() > before

    collections = _sample((await client.get("/metrics")).text, "questline_gc_pause_seconds_count", generation="2")
    gc.collect()
    text = (await client.get("/metrics")).text
    assert _sample(text, "questline_gc_pause_seconds_count", generation="2") >= collections + 1
    assert _sample(text, "questline_gc_pause_seconds_sum", generation="2") > 0


async def test_a_settled_server_keeps_what_it_started_with_out_of_the_collectors_walks(settings: Settings) -> None:
    """``questline serve`` settles the collector once started (kit/loopwatch.py ``settle_gc``)."""
    threshold = gc.get_threshold()
    runtime = Runtime.build(settings)
    app = create_app(runtime=runtime, background=False, settle_gc=True)
    try:
        async with lifespan(app):
            assert gc.get_freeze_count() > 100_000  # modules, classes, routes, schemas
            assert gc.get_threshold() == (loopwatch.YOUNG_GENERATION, *threshold[1:])
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://ops.test") as client:
                assert (await client.get("/healthz")).status_code == 200
    finally:
        gc.unfreeze()  # the rest of the suite collects as before
        gc.set_threshold(*threshold)


async def test_logs_are_json_lines_with_the_request_id(client: httpx.AsyncClient, factory: Factory,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    keys = await factory.app()
    configure_logging("INFO", json=True)
    try:
        capsys.readouterr()
        resp = await client.get("/v1/players/alice/account", headers={**keys.server, "X-Request-ID": "log-test-7"})
        assert resp.status_code == 404
        lines = capsys.readouterr().err.splitlines()
    finally:
        configure_logging("WARNING", json=True)
    events = [json.loads(line) for line in lines if line.strip()]
    request = [e for e in events if e["event"] == "request"]
    assert len(request) == 1
    logged = request[0]
    assert logged["request_id"] == "log-test-7" and logged["status"] == 404
    assert logged["route"] == "/v1/players/{player_id}/account" and logged["level"] == "info"
    assert keys.server_key not in "\n".join(lines)  # credentials never reach the logs


async def test_an_exhausted_connection_pool_is_503_database_busy(settings: Settings, factory: Factory) -> None:
    keys = await factory.app()
    small = settings.model_copy(update={"database_pool_size": 1, "database_pool_timeout_seconds": 0.2})
    runtime = Runtime.build(small)
    app = create_app(runtime=runtime, background=False)
    async with lifespan(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://ops.test") as client:
            assert runtime.engine.pool.size() == 1  # type: ignore[attr-defined]
            async with contextlib.AsyncExitStack() as stack:
                # Every connection the pool may open (PostgreSQL: as many again as overflow), taken elsewhere.
                for _ in range(1 if small.is_sqlite else 2):
                    held = await stack.enter_async_context(runtime.engine.connect())
                    await held.exec_driver_sql("SELECT 1")
                resp = await client.get("/v1/players", headers=keys.server)
                problem(resp, 503, "database_busy")
                assert resp.headers["retry-after"] == "1"
            resp = await client.get("/v1/players", headers=keys.server)
            assert resp.status_code == 200, resp.text
    await runtime.close()


async def test_metrics_name_the_docs_and_the_document_by_path(client: httpx.AsyncClient) -> None:
    """FastAPI's own routes (the OpenAPI document, the docs page and its assets) are not ``unmatched``."""
    assert (await client.get("/openapi.json")).status_code == 200
    assert (await client.get("/docs")).status_code == 200
    assert (await client.get("/docs-assets/swagger-ui.css")).status_code == 200
    text = (await client.get("/metrics")).text
    for route in ("/openapi.json", "/docs", "/docs-assets/{path}"):
        assert f'questline_http_requests_total{{method="GET",route="{route}",status="200"}}' in text, route
    assert 'route="unmatched",status="200"' not in text


async def test_no_page_loads_anything_from_the_internet(client: httpx.AsyncClient) -> None:
    """ReDoc fetched scripts and fonts from public CDNs: it is gone; /docs uses the engine's own assets."""
    problem(await client.get("/redoc"), 404, "not_found")
    docs = (await client.get("/docs")).text
    assert re.findall(r"""(?:src|href)=["'](https?:)?//""", docs) == []
