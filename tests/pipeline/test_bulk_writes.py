"""The worker's bulk writes (``kit.db.Bulk``): what they store is what SQLAlchemy's statements stored.

On PostgreSQL they travel as one JSON parameter (``json_to_recordset``); on SQLite, and for rows
JSON cannot carry, as SQLAlchemy's multi-row statements. Every test scopes its rows by an app id
of its own (the PostgreSQL database is shared).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import sqlalchemy as sa

from questline.kit.db import Bulk, unit_of_work
from questline.kit.ids import ulid
from questline.kit.runtime import Runtime
from questline.pipeline import repository as event_log
from questline.pipeline.models import OutboxMessage
from questline.rules.models import PlayerStat
from questline.streaks import repository as streaks
from questline.streaks.models import PlayerStreak

CELLS = Bulk(PlayerStat.__table__, key=("app_id", "player_id", "stat", "period_key"),
             update=("value", "samples", "last_at", "last_seq", "updated_at"))


def _cell(app_id: str, player: str, value: int, at: datetime) -> dict[str, object]:
    return {"app_id": app_id, "player_id": player, "stat": "score", "period_key": "all", "value": value,
            "samples": 1, "last_at": at, "last_seq": value, "updated_at": at}


async def test_bulk_upsert_inserts_then_updates_and_keeps_times_in_utc(runtime: Runtime) -> None:
    app_id = f"bulk_{ulid()}"
    aware = datetime(2026, 3, 10, 12, 30, 15, 123456, tzinfo=UTC)
    naive = datetime(2026, 3, 10, 13, 0)  # naive is UTC, as the column type takes it
    paris = datetime(2026, 3, 10, 15, 0, tzinfo=timezone(timedelta(hours=1)))
    async with unit_of_work(runtime.sessions) as session:
        await CELLS.write(session, [_cell(app_id, "ann", 3, aware), _cell(app_id, "bob", 5, naive)])
    async with unit_of_work(runtime.sessions) as session:
        await CELLS.write(session, [_cell(app_id, "ann", 9, paris), _cell(app_id, "cy", 1, aware)])
        await CELLS.write(session, [])
    async with runtime.read_sessions() as session:
        rows = (await session.execute(
            sa.select(PlayerStat.player_id, PlayerStat.value, PlayerStat.last_seq, PlayerStat.last_at)
            .where(PlayerStat.app_id == app_id).order_by(PlayerStat.player_id))).all()
    assert [tuple(row) for row in rows] == [
        ("ann", 9, 9, datetime(2026, 3, 10, 14, 0, tzinfo=UTC)),  # updated in place, converted to UTC
        ("bob", 5, 5, datetime(2026, 3, 10, 13, 0, tzinfo=UTC)),  # naive was UTC
        ("cy", 1, 1, aware),
    ]
    assert all(row.last_at.utcoffset() == timedelta(0) for row in rows)


async def test_outbox_rows_keep_their_payloads_and_order(runtime: Runtime) -> None:
    app_id = f"bulk_{ulid()}"
    at = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    payloads = [{"text": "héllo \"quoted\" \\ back", "nested": {"list": [1, 2.5, None, True]}},
                {"big": 2 ** 62, "empty": {}}, {}]
    async with unit_of_work(runtime.sessions) as session:
        await event_log.add_outbox(session, [
            event_log.outbox_row(app_id, f"t.{i}", "ann" if i else None, payload, at, event_seq=i or None)
            for i, payload in enumerate(payloads)])
    async with runtime.read_sessions() as session:
        rows = (await session.execute(
            sa.select(OutboxMessage.type, OutboxMessage.player_id, OutboxMessage.event_seq, OutboxMessage.payload,
                      OutboxMessage.created_at, OutboxMessage.published_at)
            .where(OutboxMessage.app_id == app_id).order_by(OutboxMessage.seq))).all()
    assert [tuple(row) for row in rows] == [
        ("t.0", None, None, payloads[0], at, None),
        ("t.1", "ann", 1, payloads[1], at, None),
        ("t.2", "ann", 2, payloads[2], at, None),
    ]


async def test_rows_json_cannot_carry_go_through_sqlalchemy(runtime: Runtime) -> None:
    """A column left out that has a Python-side default, None in a column: written as
    SQLAlchemy would write them, never with NULLs in place of defaults."""
    app_id = f"bulk_{ulid()}"
    at = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    partial = Bulk(PlayerStreak.__table__)  # leaves out ``current``, ``longest``, … (defaults 0)
    async with unit_of_work(runtime.sessions) as session:
        await partial.write(session, [{"app_id": app_id, "player_id": "ann", "streak": "daily", "updated_at": at}])
        await CELLS.write(session, [_cell(app_id, "ann", 1, at), {**_cell(app_id, "bob", 2, at), "last_seq": None}])
    async with runtime.read_sessions() as session:
        states = await streaks.states_of(session, app_id, ["ann"])
        cells = dict(tuple(row) for row in (await session.execute(
            sa.select(PlayerStat.player_id, PlayerStat.last_seq).where(PlayerStat.app_id == app_id))).all())
    assert [(s.current, s.longest, s.freezes_bought) for s in states] == [(0, 0, 0)]
    assert cells == {"ann": 1, "bob": None}



async def test_a_load_per_player_reads_exactly_the_listed_players_rows(runtime: Runtime) -> None:
    """``kit.db.each_of`` (PostgreSQL: one index probe per player, ``unnest … JOIN LATERAL``): the
    stats load returns every listed player's cells of the asked stats and periods, nobody else's,
    and nothing for a player without any; the players' keys come once per player, asked twice or not."""
    from questline.players import repository as players
    from questline.rules.repository import stats_of
    from questline.tenancy import service as tenancy

    async with unit_of_work(runtime.sessions) as session:
        org = await tenancy.create_org(session, runtime.clock, "Each")
        app, _, _ = await tenancy.create_app(session, runtime.clock, org.id, "Each")
    app_id = app.id
    at = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    cells = [{**_cell(app_id, player, value, at), "stat": stat, "period_key": period}
             for player, value in (("ann", 1), ("bob", 2), ("cy", 3))
             for stat in ("score", "wins") for period in ("all", "2026-03-10")]
    async with unit_of_work(runtime.sessions) as session:
        await CELLS.write(session, cells)
        await players.insert_missing(session, app_id, ["ann", "bob"], at)
    async with unit_of_work(runtime.sessions) as session:
        rows = await stats_of(session, app_id, ["ann", "cy", "nobody"], ["score"], ["all", "2026-03-10"])
        assert sorted((r[0], r[1], r[2], r[3]) for r in rows) == [
            ("ann", "score", "2026-03-10", 1), ("ann", "score", "all", 1),
            ("cy", "score", "2026-03-10", 3), ("cy", "score", "all", 3)]
        assert await stats_of(session, app_id, [], ["score"], ["all"]) == []
        keys = await players.keys_of(session, app_id, ["ann", "ann", "bob", "nobody"])
    assert sorted(keys) == ["ann", "bob"] and keys["ann"][0] != keys["bob"][0]
