"""What the request edge costs the database, counted where the database sees it.

Issue 11 point 4: no session for a request that needs none, no transaction for reads, no pre-ping
on checkout. On PostgreSQL a proxy counts the statements on the wire (simple ``Query`` and
extended ``Execute`` messages, so ``BEGIN``, ``ROLLBACK`` and pings show); on SQLite, SQLite's own
trace callback counts what it executes. Counts, not timings: they hold on any machine.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from bench.edge import SqliteCounter, WireCounter
from sqlalchemy import event
from sqlalchemy.engine import make_url

from questline.app import create_app
from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from questline.players import repository as players_repo
from questline.tenancy import service as tenancy
from tests.conftest import lifespan


@dataclass
class Counted:
    client: httpx.AsyncClient
    server: dict[str, str]
    counter: WireCounter | SqliteCounter
    checkouts: list[int]
    sent: list[int]  # statements SQLAlchemy sent through a cursor (the services' own queries)
    runtime: Runtime
    app_id: str

    async def cost(self, method: str, path: str, **kwargs: Any) -> tuple[int, int, httpx.Response]:
        """Statements and pool checkouts one request costs."""
        statements, checkouts = self.counter.statements, self.checkouts[0]
        resp = await self.client.request(method, path, **kwargs)
        return self.counter.statements - statements, self.checkouts[0] - checkouts, resp


@pytest.fixture
async def counted(settings: Settings) -> AsyncIterator[Counted]:
    settings = settings.model_copy(update={"api_key_cache_seconds": 60})  # production's keys are cached
    wire: WireCounter | None = None
    if not settings.is_sqlite:
        direct = make_url(settings.database_url)
        wire = WireCounter(direct.host or "127.0.0.1", direct.port or 5432)
        await wire.start()
        settings = settings.model_copy(update={"database_url": direct.set(host="127.0.0.1", port=wire.port)
                                               .render_as_string(hide_password=False)})
    runtime = Runtime.build(settings)
    counter = wire if wire is not None else SqliteCounter(runtime)
    checkouts, sent = [0], [0]

    @event.listens_for(runtime.engine.sync_engine, "checkout")
    def _checkout(*_args: Any) -> None:
        checkouts[0] += 1

    @event.listens_for(runtime.engine.sync_engine, "before_cursor_execute")
    def _sent(*_args: Any) -> None:
        sent[0] += 1

    app = create_app(runtime=runtime, background=False)
    try:
        async with lifespan(app):
            async with unit_of_work(runtime.sessions) as session:
                org = await tenancy.create_org(session, runtime.clock, "Counted")
                made, server_key, _ = await tenancy.create_app(session, runtime.clock, org.id, "Counted")
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://cost.test") as client:
                yield Counted(client, {"Authorization": f"Bearer {server_key}"}, counter, checkouts, sent, runtime,
                              made.id)
    finally:
        await runtime.close()
        if wire is not None:
            await wire.close()


async def test_an_authenticated_read_is_one_statement_and_a_dbless_request_none(counted: Counted) -> None:
    put = await counted.client.put("/v1/players/p1/account", headers=counted.server, json={"display_name": "P"})
    assert put.status_code == 200
    await counted.cost("GET", "/v1/players/p1/account", headers=counted.server)  # the key is now cached

    statements, checkouts, resp = await counted.cost("GET", "/v1/players/p1/account", headers=counted.server)
    assert resp.status_code == 200 and resp.json()["display_name"] == "P"
    assert statements == 1, "one SELECT: no BEGIN/ROLLBACK around a read, no ping before it"
    assert checkouts == 1

    # An authenticated route that reads nothing from the database opens no session at all.
    statements, checkouts, resp = await counted.cost("GET", "/v1/definition-kinds", headers=counted.server)
    assert resp.status_code == 200 and resp.json()
    assert (statements, checkouts) == (0, 0)
    statements, checkouts, resp = await counted.cost("GET", "/healthz")
    assert (statements, checkouts, resp.status_code) == (0, 0, 200)

    # A write is one transaction around the service's own statements: BEGIN, them, COMMIT; no ping.
    sent = counted.sent[0]
    statements, checkouts, resp = await counted.cost("PATCH", "/v1/players/p1/account", headers=counted.server,
                                                     json={"display_name": "Q"})
    assert resp.status_code == 200 and resp.json()["display_name"] == "Q"
    assert checkouts == 1
    # SQLite's BEGIN IMMEDIATE goes through a cursor (the engine issues it); asyncpg's BEGIN does not.
    begin_and_commit = 1 if isinstance(counted.counter, SqliteCounter) else 2
    assert statements == counted.sent[0] - sent + begin_and_commit


async def test_a_key_the_cache_holds_is_checked_without_a_session(counted: Counted) -> None:
    runtime = counted.runtime
    factory = runtime.read_sessions
    opened = [0]

    def counting() -> Any:
        opened[0] += 1
        return factory()

    runtime.read_sessions = counting  # type: ignore[assignment]
    first = await counted.client.get("/v1/definition-kinds", headers=counted.server)
    assert first.status_code == 200 and opened[0] == 1  # the key's first use: looked up in a session
    again = await counted.client.get("/v1/definition-kinds", headers=counted.server)
    assert again.status_code == 200 and opened[0] == 1  # from the cache: no session at all

    # The cached record still decides: a wrong secret for that key id is refused, and so is the key
    # once revoked (the revocation drops the cached entry when it commits).
    token = counted.server["Authorization"].removeprefix("Bearer ")
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    refused = await counted.client.get("/v1/definition-kinds", headers={"Authorization": f"Bearer {forged}"})
    assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"
    key_id = tenancy.parse_key(token)[1]  # type: ignore[index]
    async with unit_of_work(runtime.sessions) as session:
        await tenancy.revoke_key(session, runtime.clock, counted.app_id, key_id)
    revoked = await counted.client.get("/v1/definition-kinds", headers=counted.server)
    assert revoked.status_code == 401 and revoked.json()["code"] == "key_revoked"


async def test_sqlite_settles_only_open_transactions_on_the_connection_thread(settings: Settings) -> None:
    """aiosqlite runs every COMMIT and ROLLBACK on the connection's thread: a read-only session has no
    transaction, so closing it must send neither; a write still commits, and a failed one still rolls back."""
    if not settings.is_sqlite:
        pytest.skip("about aiosqlite's connection thread")
    runtime = Runtime.build(settings)
    calls: Counter[str] = Counter()

    @event.listens_for(runtime.engine.sync_engine, "connect")
    def _count(dbapi_conn: Any, _record: Any) -> None:
        driver = dbapi_conn.driver_connection  # aiosqlite.Connection
        for name in ("commit", "rollback"):
            def counting(original: Any = getattr(driver, name), name: str = name) -> Any:
                calls[name] += 1
                return original()
            setattr(driver, name, counting)

    try:
        async with unit_of_work(runtime.sessions) as session:
            org = await tenancy.create_org(session, runtime.clock, "Settles")
            app, _, _ = await tenancy.create_app(session, runtime.clock, org.id, "Settles")
            await players_repo.insert_missing(session, app.id, ["kept"], runtime.clock.now())
        assert calls == Counter(commit=1)

        for _ in range(3):
            async with runtime.read_sessions() as reader:
                assert "kept" in await players_repo.keys_of(reader, app.id, ["kept"])
                await reader.commit()
        assert calls == Counter(commit=1), "a read-only session has nothing to commit or roll back"

        with pytest.raises(RuntimeError):
            async with unit_of_work(runtime.sessions) as session:
                await players_repo.insert_missing(session, app.id, ["dropped"], runtime.clock.now())
                raise RuntimeError("fail after the insert")
        assert calls == Counter(commit=1, rollback=1)
        async with runtime.read_sessions() as reader:
            assert await players_repo.keys_of(reader, app.id, ["dropped"]) == {}
            assert list(await players_repo.keys_of(reader, app.id, ["kept", "dropped"])) == ["kept"]
    finally:
        await runtime.close()
