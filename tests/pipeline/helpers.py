"""Helpers for pipeline tests: configure an app through the API and run the worker to idle."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import event as sa_event

from questline.kit.runtime import Runtime
from questline.pipeline.worker import drain
from tests.conftest import AppKeys

BASIC_CONFIG: dict[str, dict[str, dict[str, Any]]] = {
    "stat": {
        "wins": {"event_type": "match.won"},
        "score": {"event_type": "match.won", "aggregation": "sum", "field": "data.score"},
        "best": {"event_type": "match.won", "aggregation": "max", "field": "data.score"},
        "last_score": {"event_type": "match.won", "aggregation": "last", "field": "data.score"},
    },
    "xp_track": {
        "xp": {"name": "Experience", "curve": {"type": "quadratic", "base": 100}, "max_level": 100,
               "level_names": {"1": "Rookie", "2": "Regular", "3": "Veteran"},
               "level_up_reward": {"currency": "points", "amount": 200}},
        "rp": {"name": "Reputation", "curve": {"type": "geometric", "base": 50, "factor": 1.3}},
    },
    "xp_rule": {
        "win-xp": {"track": "xp", "event_type": "match.won", "amount": 60, "daily_cap": 150},
        "big-win-rp": {"track": "rp", "event_type": "match.won", "amount": 10,
                       "filter": {"field": "data.score", "op": "gte", "value": 1000}},
    },
}


async def configure(client: httpx.AsyncClient, keys: AppKeys,
                    config: dict[str, dict[str, dict[str, Any]]] | None = None) -> None:
    resp = await client.put("/v1/currencies/points", headers=keys.server, json={"name": "Points"})
    assert resp.status_code in (200, 201), resp.text
    resp = await client.post("/v1/definitions:bulk", headers=keys.server,
                             json={"definitions": config or BASIC_CONFIG})
    assert resp.status_code == 200, resp.text


async def send(client: httpx.AsyncClient, keys: AppKeys, events: list[dict[str, Any]],
               headers: dict[str, str] | None = None) -> httpx.Response:
    return await client.post("/v1/events", headers=headers or keys.server, json={"events": events})


async def settle(runtime: Runtime) -> int:
    """Run the worker until nothing is pending (tests drive it instead of a background loop)."""
    return await drain(runtime)


async def until(check: Callable[[], Awaitable[bool]], seconds: float = 120.0, what: str = "the condition",
                poll: float = 0.05) -> None:
    """Poll ``check`` until it holds, for waits on real processes or background loops doing real
    work; fail once ``seconds`` have passed (a bound against a hang, not a timing). Bounded by time,
    not by a count of polls: on a loaded box one poll can take far longer than its sleep. Each poll
    is a query in this process, competing for the CPU with the work it waits for: not too often."""
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"waited {seconds:g} s until {what}, in vain"
        await asyncio.sleep(poll)


@contextmanager
def recorded_statements(runtime: Runtime) -> Iterator[list[str]]:
    """The SQL text of every statement the runtime's engine sends inside the block, in order,
    whitespace folded; transaction control (SQLite's explicit BEGIN) left out. Statements on the
    bare driver connection (``kit.db`` prebuilt ones) are heard too; ``kit.prebuilt`` reads are not."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        folded = " ".join(statement.split())
        if not folded.upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            seen.append(folded)

    sa_event.listen(runtime.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa_event.remove(runtime.engine.sync_engine, "before_cursor_execute", record)
