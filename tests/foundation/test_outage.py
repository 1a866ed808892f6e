"""PostgreSQL goes away and comes back: the engine answers 503 quickly, recovers without a
restart, and loses no acknowledged write.

A small TCP proxy that the test controls sits between the engine and PostgreSQL. Cutting it
closes the listener and every connection, as a crashed or partitioned database would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from questline.app import create_app
from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from questline.tenancy import service as tenancy
from tests.conftest import BACKENDS, lifespan, problem

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
# A call during the outage must answer within this (connect timeout 5s, plus scheduling slack).
ANSWER_WITHIN = 15.0


class Proxy:
    """Forwards TCP connections to ``upstream``; ``cut()`` drops everything, ``restore()`` reopens."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.port = 0
        self.server: asyncio.Server | None = None
        self.links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self.pumps: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_w.transport.abort()
            return
        link = (client_w, up_w)
        self.links.add(link)
        for task in (asyncio.create_task(self._pump(client_r, up_w)), asyncio.create_task(self._pump(up_r, client_w))):
            self.pumps.add(task)
            task.add_done_callback(self.pumps.discard)

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for client_w, up_w in self.links:
            client_w.transport.abort()
            up_w.transport.abort()
        self.links.clear()
        for task in list(self.pumps):
            task.cancel()
        await asyncio.gather(*self.pumps, return_exceptions=True)
        self.server = None

    async def restore(self) -> None:
        await self.start()  # the same port: the engine's URL does not change

    async def close(self) -> None:
        if self.server is not None:
            await self.cut()


@pytest.fixture
async def proxy(settings: Settings) -> AsyncIterator[Proxy]:
    url = make_url(settings.database_url)
    proxy = Proxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    yield proxy
    await proxy.close()


class Writer:
    """Writes players one after another; remembers which writes were acknowledged (200)."""

    def __init__(self, client: httpx.AsyncClient, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers
        self.acked: list[str] = []
        self.refused: list[int] = []
        self.stop = asyncio.Event()
        self.progress = asyncio.Event()
        self.met_outage = asyncio.Event()

    async def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            pid = f"w{i:05d}"
            i += 1
            async with asyncio.timeout(ANSWER_WITHIN):
                resp = await self.client.put(f"/v1/players/{pid}/account", headers=self.headers,
                                             json={"display_name": f"written {pid}"})
            if resp.status_code == 200:
                self.acked.append(pid)
                self.progress.set()
            else:
                assert resp.status_code == 503, resp.text  # unavailable, never a 500
                self.refused.append(resp.status_code)
                self.met_outage.set()
                await asyncio.sleep(0.05)  # a client backing off, not hammering

    async def wait_for(self, count: int) -> None:
        while len(self.acked) < count:
            self.progress.clear()
            await asyncio.wait_for(self.progress.wait(), timeout=30)


async def timed(call: Awaitable[httpx.Response]) -> httpx.Response:
    """The reply, which must come within ANSWER_WITHIN seconds (no hanging on a dead database)."""
    async with asyncio.timeout(ANSWER_WITHIN):
        return await call


@dataclass
class Proxied:
    runtime: Runtime
    client: httpx.AsyncClient
    app_id: str
    server: dict[str, str]


@asynccontextmanager
async def through(proxy: Proxy, settings: Settings) -> AsyncIterator[Proxied]:
    """The engine on a database reached through ``proxy``, with an app of its own."""
    direct_url = make_url(settings.database_url)
    proxied = settings.model_copy(update={
        "database_url": direct_url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
    })
    runtime = Runtime.build(proxied)
    app = create_app(runtime=runtime, background=False)
    try:
        async with lifespan(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://proxied.test") as client:
                async with unit_of_work(runtime.sessions) as session:
                    org = await tenancy.create_org(session, runtime.clock, "Proxied Org")
                    made, server_key, _ = await tenancy.create_app(session, runtime.clock, org.id, "Proxied Game")
                yield Proxied(runtime, client, made.id, {"Authorization": f"Bearer {server_key}"})
    finally:
        await runtime.close()


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b == "postgres"])
async def test_database_outage_answers_503_recovers_and_keeps_every_acknowledged_write(
        settings: Settings, proxy: Proxy, backend: str) -> None:
    direct_url = make_url(settings.database_url)
    async with through(proxy, settings) as engine:
        client, server, app_id = engine.client, engine.server, engine.app_id
        assert (await client.get("/readyz")).status_code == 200

        writer = Writer(client, server)
        writing = asyncio.create_task(writer.run())
        await writer.wait_for(20)

        # The database goes away.
        await proxy.cut()
        acked_at_cut = len(writer.acked)
        ready = await timed(client.get("/readyz"))
        body = problem(ready, 503, "not_ready")
        assert body["checks"]["database"].startswith("unreachable")
        assert int(ready.headers["retry-after"]) > 0
        read = await timed(client.get("/v1/players/w00000/account", headers=server))
        problem(read, 503, "database_unavailable")
        assert int(read.headers["retry-after"]) > 0
        write = await timed(client.put("/v1/players/during/account", headers=server, json={}))
        problem(write, 503, "database_unavailable")
        with_key = await timed(client.post("/v1/players/during/tokens", json={},
                                           headers={**server, "Idempotency-Key": "during-outage"}))
        problem(with_key, 503, "database_unavailable")
        await asyncio.wait_for(writer.met_outage.wait(), timeout=ANSWER_WITHIN)  # the writer met it too
        assert len(writer.acked) <= acked_at_cut + 1  # at most the one in flight at the cut

        # It comes back: the same engine recovers, no restart.
        await proxy.restore()
        for _ in range(100):  # bounded: a real reconnect is the event waited for
            if (await timed(client.get("/readyz"))).status_code == 200:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the engine did not become ready again")
        await writer.wait_for(len(writer.acked) + 20)
        writer.stop.set()
        await asyncio.wait_for(writing, timeout=ANSWER_WITHIN)
        assert (await client.get("/v1/players/w00000/account", headers=server)).status_code == 200
        retried = await client.post("/v1/players/during/tokens", json={},
                                    headers={**server, "Idempotency-Key": "during-outage"})
        assert retried.status_code == 201  # the failed attempt left the key free to retry

    # Every acknowledged write is in the database (read directly, not through the proxy).
    conn = await asyncpg.connect(host=direct_url.host, port=direct_url.port, user=direct_url.username,
                                 database=direct_url.database)
    try:
        rows = await conn.fetch("SELECT player_id, display_name FROM players WHERE app_id = $1", app_id)
    finally:
        await conn.close()
    stored = {r["player_id"]: r["display_name"] for r in rows}
    lost = [pid for pid in writer.acked if stored.get(pid) != f"written {pid}"]
    assert not lost, f"acknowledged writes lost: {lost}"
    assert len(writer.acked) >= 40 and writer.refused


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b == "postgres"])
async def test_a_dead_pooled_connection_is_replaced_without_a_failed_request(settings: Settings, proxy: Proxy,
                                                                             backend: str) -> None:
    """No pre-ping: when the database restarted between two requests, the next request finds its
    pooled connection dead, and the edge runs it once more on a fresh one. The caller sees a 200."""
    async with through(proxy, settings) as engine:
        client, server, runtime = engine.client, engine.server, engine.runtime
        assert (await client.put("/v1/players/p/account", headers=server, json={})).status_code == 200
        assert (await client.get("/v1/players/p/account", headers=server)).status_code == 200
        assert runtime.engine.pool.checkedin() >= 1  # type: ignore[attr-defined]

        await proxy.cut()  # every pooled connection dies, as in a database restart
        await proxy.restore()
        for attempt in range(3):  # reads and writes alike, each once per pooled connection
            read = await timed(client.get("/v1/players/p/account", headers=server))
            assert read.status_code == 200, (attempt, read.text)
            write = await timed(client.patch("/v1/players/p/account", headers=server,
                                             json={"display_name": f"after restart {attempt}"}))
            assert write.status_code == 200, (attempt, write.text)
        assert (await client.get("/v1/players/p/account", headers=server)).json()["display_name"] == \
            "after restart 2"
