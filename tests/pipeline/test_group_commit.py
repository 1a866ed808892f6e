"""The group commit's insert: every value stored as sent, log positions in order, and on PostgreSQL
one statement text whatever the number of rows (prepared once per connection)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import event as sa_event

from questline.kit.clock import ManualClock
from questline.kit.db import unit_of_work
from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from questline.pipeline import repository as repo
from questline.pipeline.models import DONE, LIVE, EventRecord
from questline.pipeline.worker import drain
from tests.conftest import Factory
from tests.pipeline.helpers import send

DATA: dict[str, Any] = {"name": "Zoë ✓ \"quoted\" \\ back", "nested": {"list": [1, 2.5, None, True, "x"]},
                        "big": 2**63 + 5, "negative": -(2**63), "empty": {}, "zero": 0}


async def test_events_are_stored_as_sent_in_request_order(client: httpx.AsyncClient, factory: Factory,
                                                           runtime: Runtime, clock: ManualClock,
                                                           settings: Settings) -> None:
    keys = await factory.app()
    events = [
        {"id": "g-1", "player_id": "zoe", "type": "match.won", "data": DATA, "timestamp": "2026-03-10T12:00:00+02:00"},
        {"id": "g-2", "player_id": "zoe", "type": "match.won", "timestamp": "2026-03-10T12:00:00"},  # naive: UTC
        {"id": "g-3", "player_id": "ann", "type": "enemy.killed", "data": {"boss": False},
         "timestamp": "2026-03-10T12:00:00.123456Z"},
        {"id": "g-4", "player_id": "ann", "type": "enemy.killed"},  # no timestamp: received now
    ]
    resp = await send(client, keys, events)
    assert resp.status_code == 202, resp.text
    assert resp.json()["accepted"] == ["g-1", "g-2", "g-3", "g-4"]
    if settings.event_log:  # JetStream: events reach the database log as the worker applies them
        assert await drain(runtime) == 4

    async with runtime.read_sessions() as session:
        rows = (await session.execute(sa.select(EventRecord).where(EventRecord.app_id == keys.app_id)
                                      .order_by(EventRecord.seq))).scalars().all()
    ids = [r.event_id for r in rows]
    if settings.event_log:  # a stream per partition: the log keeps each player's order
        assert [i for i in ids if i < "g-3"] == ["g-1", "g-2"] and [i for i in ids if i >= "g-3"] == ["g-3", "g-4"]
        rows = sorted(rows, key=lambda r: r.event_id)
    else:
        assert ids == ["g-1", "g-2", "g-3", "g-4"]  # log positions follow the request
    assert rows[0].data == DATA
    assert rows[1].data == {} and rows[2].data == {"boss": False}
    assert rows[0].occurred_at == datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
    assert rows[0].occurred_at.utcoffset() == timedelta(0)
    assert rows[1].occurred_at == datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    assert rows[2].occurred_at == datetime(2026, 3, 10, 12, 0, 0, 123456, tzinfo=UTC)
    assert rows[3].occurred_at == rows[3].received_at == clock.now()
    pending = DONE if settings.event_log else LIVE
    assert {(r.player_id, r.type, r.source, r.pending) for r in rows} == {
        ("zoe", "match.won", "server", pending), ("ann", "enemy.killed", "server", pending)}

    again = await send(client, keys, [events[1], {**events[0], "id": "g-5"}])  # a duplicate and a new one
    assert again.json()["duplicates"] == ["g-2"] and again.json()["accepted"] == ["g-5"]


async def test_one_statement_text_for_any_number_of_events(runtime: Runtime, settings: Settings,
                                                           factory: Factory, clock: ManualClock) -> None:
    if settings.is_sqlite:
        pytest.skip("PostgreSQL's prepared statements")
    keys = await factory.app()
    texts: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("INSERT INTO events"):
            texts.append(statement)

    def rows(prefix: str, n: int) -> list[dict[str, Any]]:
        return [{"app_id": keys.app_id, "event_id": f"{prefix}-{i}", "player_id": f"p{i}", "type": "match.won",
                 "data": {"i": i}, "occurred_at": clock.now(), "received_at": clock.now(), "source": "server",
                 "pending": LIVE} for i in range(n)]

    sa_event.listen(runtime.engine.sync_engine, "before_cursor_execute", record)
    try:
        added = {}
        for n in (1, 2, 7):
            async with unit_of_work(runtime.sessions) as session:
                added |= await repo.append(session, rows(f"n{n}", n), partitions=settings.pipeline_partitions)
    finally:
        sa_event.remove(runtime.engine.sync_engine, "before_cursor_execute", record)
    assert len(texts) == 3 and len(set(texts)) == 1
    assert len(added) == 10
    for n in (1, 2, 7):  # each call's log positions follow its rows' order
        seqs = [added[(keys.app_id, f"n{n}-{i}")] for i in range(n)]
        assert seqs == sorted(seqs)
