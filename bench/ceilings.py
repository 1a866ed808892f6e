"""The bare ceilings: what FastAPI on uvicorn does on this box with no engine behind it.

One small app, served exactly as ``questline serve`` serves the engine (uvicorn, one process,
the same event loop and HTTP parser choice), with three routes:

- ``POST /bare/events``: validates the body as the engine's ``POST /v1/events`` does (one event
  or ``{"events": [...]}``, each item through the engine's own ``EventIn`` model) and answers
  ``202`` with the accepted ids. No database.
- ``POST /insert/events``: the same, then ONE ``INSERT … SELECT … FROM unnest(…) ON CONFLICT
  DO NOTHING`` of every event of the request through an asyncpg pool (autocommit: one
  statement, its own transaction), answering once it returned.
- ``GET /select/players/{id}``: ONE primary-key ``SELECT`` of a player row through the pool,
  answered as JSON.

    python bench/ceilings.py --port 9100 --dsn postgresql://postgres@127.0.0.1:5432/test

``--prepare`` creates (or empties) the two tables the routes use and seeds the players, then exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import Body, FastAPI, HTTPException
from fastapi.responses import Response
from pydantic import TypeAdapter, ValidationError

from questline.pipeline.schemas import MAX_BATCH, EventIn

EVENTS_TABLE = "bench_ceiling_events"
PLAYERS_TABLE = "bench_ceiling_players"
APP_ID = "app_ceiling"
_ITEM = TypeAdapter(EventIn)

INSERT = (f"INSERT INTO {EVENTS_TABLE} (app_id, event_id, player_id, type, data, occurred_at) "
          "SELECT $1, e, p, t, d::jsonb, o FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], "
          "$6::timestamptz[]) AS x(e, p, t, d, o) ON CONFLICT (app_id, event_id) DO NOTHING")
SELECT = f"SELECT id, display_name, time_zone, created_at FROM {PLAYERS_TABLE} WHERE app_id = $1 AND id = $2"


def validate(body: Any) -> list[EventIn]:
    """The body as the engine reads it: one event object, a list, or ``{"events": [...]}``."""
    items = body["events"] if isinstance(body, dict) and "events" in body else body
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
        raise HTTPException(422, "one event, a list or {\"events\": [...]} of at most 1000")
    try:
        return [_ITEM.validate_python(item) for item in items]
    except ValidationError as exc:
        raise HTTPException(422, str(exc)) from exc


def _accepted(events: list[EventIn]) -> Response:
    return Response(orjson.dumps({"accepted": [e.id for e in events], "duplicates": [], "rejected": []}),
                    status_code=202, media_type="application/json")


def create_app(dsn: str | None) -> FastAPI:
    pool: Any = None

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        nonlocal pool
        if dsn:
            import asyncpg

            pool = await asyncpg.create_pool(dsn, min_size=4, max_size=16)
        yield
        if pool is not None:
            await pool.close()

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)

    @app.post("/bare/events", status_code=202)
    async def bare(body: Any = Body()) -> Response:
        return _accepted(validate(body))

    @app.post("/insert/events", status_code=202)
    async def insert(body: Any = Body()) -> Response:
        events = validate(body)
        now = datetime.now(UTC)
        await pool.execute(INSERT, APP_ID, [e.id for e in events], [e.player_id for e in events],
                           [e.type for e in events], [orjson.dumps(e.data).decode() for e in events],
                           [e.timestamp or now for e in events])
        return _accepted(events)

    @app.get("/select/players/{player_id}")
    async def select(player_id: str) -> Response:
        row = await pool.fetchrow(SELECT, APP_ID, player_id)
        if row is None:
            raise HTTPException(404, "no such player")
        return Response(orjson.dumps({"id": row["id"], "display_name": row["display_name"],
                                      "time_zone": row["time_zone"], "created_at": row["created_at"]}),
                        media_type="application/json")

    return app


async def prepare(dsn: str, players: int) -> None:
    """Create the ceiling's tables (shaped like the engine's events and players) and seed the players."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"""
            CREATE TABLE IF NOT EXISTS {EVENTS_TABLE} (
                seq bigserial, app_id text NOT NULL, event_id text NOT NULL, player_id text NOT NULL,
                type text NOT NULL, data jsonb NOT NULL, occurred_at timestamptz NOT NULL,
                received_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (app_id, event_id));
            CREATE TABLE IF NOT EXISTS {PLAYERS_TABLE} (
                app_id text NOT NULL, id text NOT NULL, display_name text, time_zone text NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (app_id, id));
            TRUNCATE {EVENTS_TABLE}, {PLAYERS_TABLE};
        """)
        await conn.execute(f"INSERT INTO {PLAYERS_TABLE} (app_id, id, display_name, time_zone) "
                           f"SELECT $1, 'p' || i, 'Player ' || i, 'UTC' FROM generate_series(0, $2 - 1) AS i",
                           APP_ID, players)
        await conn.execute(f"ANALYZE {EVENTS_TABLE}; ANALYZE {PLAYERS_TABLE}")
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--dsn", help="a plain asyncpg DSN (postgresql://…); without it only /bare answers")
    parser.add_argument("--prepare", action="store_true", help="create and seed the tables, then exit")
    parser.add_argument("--players", type=int, default=1000, help="players --prepare seeds")
    args = parser.parse_args()
    if args.prepare:
        if not args.dsn:
            parser.error("--prepare needs --dsn")
        asyncio.run(prepare(args.dsn, args.players))
        return
    import uvicorn

    from questline.kit.server import http_protocol

    uvicorn.run(create_app(args.dsn), host=args.host, port=args.port, log_config=None, access_log=False,
                loop="auto", http=http_protocol())


if __name__ == "__main__":
    main()
