"""SQL statements an authenticated request makes, per kind of caller (counted, not timed).

    python bench/auth_statements.py                       # embedded tier (a SQLite file)
    QUESTLINE_DATABASE_URL=postgresql+asyncpg://…/scratch QUESTLINE_REDIS_URL=redis://… python bench/auth_statements.py

(the PostgreSQL database is migrated and gets a bench organization: give it a scratch one).

The engine runs in process (its lifespan started, caches as in production); each request kind is
sent once cold (just after start) and then ``--repeat`` times warm, and every statement the
engine's connection pool executes is counted with an ``after_cursor_execute`` listener (SQLite's
explicit ``BEGIN`` excluded, as PostgreSQL's is implicit). ``GET /v1/players/{id}/account`` reads
its one row on a bare driver connection (``kit.prebuilt``), which that listener does not see, so
what is counted is the cost of knowing who calls; ``POST /v1/events`` as a player also reads the
app's client event types.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from asgi_lifespan import LifespanManager
from rich.console import Console
from rich.table import Table

from questline import migrations
from questline.app import create_app
from questline.kit.db import unit_of_work
from questline.kit.logging import configure_logging
from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from questline.tenancy import service as tenancy
from questline.tenancy.schemas import Role


async def measure(database_url: str, redis_url: str | None, repeat: int) -> list[tuple[str, int, float]]:
    settings = Settings(env="test", database_url=database_url, redis_url=redis_url,
                        redis_namespace=f"bench:{uuid.uuid4().hex[:8]}", log_json=False,
                        secret_key="bench-secret-key-that-is-long-enough-0123456789",  # type: ignore[arg-type]
                        rate_limit_per_key="1000000/minute", rate_limit_per_player="1000000/minute")
    migrations.upgrade(database_url)
    runtime = Runtime.build(settings)
    async with unit_of_work(runtime.sessions) as session:
        org = await tenancy.create_org(session, runtime.clock, "Bench")
        app, server_key, client_key = await tenancy.create_app(session, runtime.clock, org.id, "Bench")
        email = f"bench-{uuid.uuid4().hex[:6]}@example.test"
        await tenancy.create_admin(session, runtime.clock, email, "bench password 123")
        await tenancy.add_member(session, runtime.clock, org.id, email, Role.ADMIN)
        await tenancy.set_client_event_types(session, app.id, ["bench.tap"])
    engine = create_app(runtime=runtime, background=False)
    count = [0]

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.startswith("BEGIN"):
            count[0] += 1

    results: list[tuple[str, int, float]] = []
    async with LifespanManager(engine):
        transport = httpx.ASGITransport(app=engine)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench.test") as client:
            server = {"Authorization": f"Bearer {server_key}"}
            await client.put("/v1/players/alice/account", headers=server, json={})
            minted = await client.post("/v1/players/alice/tokens", headers=server, json={})
            player = {"Authorization": f"Bearer {minted.json()['token']}"}
            login = await client.post("/v1/auth/login", json={"email": email, "password": "bench password 123"})
            admin = {"Authorization": f"Bearer {login.json()['access_token']}", "X-Questline-App": app.id}
            # "Cold": as just after start (earlier versions kept verified keys in an extension).
            hub = getattr(runtime, "caches", None)
            if hub is not None:
                hub.clear_all()
            runtime.extensions.pop("tenancy.keys", None)
            sa.event.listen(runtime.engine.sync_engine, "after_cursor_execute", record)
            for name, headers in (("server key", server), ("player token", player), ("admin", admin)):
                count[0] = 0
                assert (await client.get("/v1/players/alice/account", headers=headers)).status_code == 200
                cold = count[0]
                count[0] = 0
                for _ in range(repeat):
                    assert (await client.get("/v1/players/alice/account", headers=headers)).status_code == 200
                results.append((f"{name}: GET account", cold, count[0] / repeat))
            # Ingest as a player: the app's client event types are read for every request.
            sent = iter(range(repeat + 1))

            async def tap() -> None:
                event = {"id": f"tap-{next(sent)}", "player_id": "alice", "type": "bench.tap"}
                resp = await client.post("/v1/events", headers=player, json={"events": [event]})
                assert resp.status_code == 202 and not resp.json()["rejected"], resp.text

            count[0] = 0
            await tap()
            cold = count[0]
            count[0] = 0
            for _ in range(repeat):
                await tap()
            results.append(("player token: POST 1 event", cold, count[0] / repeat))
            sa.event.remove(runtime.engine.sync_engine, "after_cursor_execute", record)
    del client_key
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=50, help="warm requests per caller kind")
    args = parser.parse_args()
    configure_logging("WARNING", json=False)
    database_url = os.environ.get("QUESTLINE_DATABASE_URL")
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        rows = asyncio.run(measure(url, os.environ.get("QUESTLINE_REDIS_URL"), args.repeat))
    table = Table(title=f"SQL statements per request ({url.split(':')[0]}, {args.repeat} warm requests each)")
    for column in ("caller", "cold (first request)", "warm (mean)"):
        table.add_column(column)
    for name, cold, warm in rows:
        table.add_row(name, str(cold), f"{warm:.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()
