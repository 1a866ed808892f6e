"""Issue 10 point 1: every read equals a ranking computed from the database, whatever happened.

Hypothesis draws sequences of steps against several boards with different operators and
orders: single events and batches, reads of the top (with the next page through its cursor),
a player's own place with neighbours, restarts (a new process: the in-process index is gone,
a shared Redis index stays) and rebuilds (the index dropped, then built again from the
database on the next read). Every read is compared with a sort of ``leaderboard_entries``,
and the database's scores with a fold of the events sent. Runs on SQLite, PostgreSQL, and
PostgreSQL with Redis.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from questline.kit.runtime import Runtime
from questline.leaderboards.models import LeaderboardEntry
from questline.leaderboards.service import boards_of
from tests.conftest import START, Factory
from tests.leaderboards.helpers import define, play, player, scored
from tests.leaderboards.tiers import backend, settings, tier  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow

PLAYERS = [f"p{i}" for i in range(7)]
# board -> (operator, highest first, min_score)
BOARDS: dict[str, tuple[str, bool, int | None]] = {
    "total": ("sum", True, None),
    "best": ("best", True, None),
    "lowest": ("best", False, None),
    "last": ("set", True, 0),
    "games": ("increment", True, 2),
}
DEFINITIONS = {"leaderboard": {
    key: {"event_type": "match.end", "operator": op, "order": "desc" if desc else "asc",
          **({"field": "data.points"} if op != "increment" else {}),
          **({"min_score": floor} if floor is not None else {})}
    for key, (op, desc, floor) in BOARDS.items()}}

POINTS = st.sampled_from([-10, -5, 0, 5, 5, 10, 10, 20, 35])  # few values: many ties
EVENT = st.tuples(st.sampled_from(PLAYERS), POINTS, st.booleans())  # (player, points, at the same time as the last)
BOARD = st.sampled_from(list(BOARDS))
STEP = st.one_of(
    st.tuples(st.just("send"), st.lists(EVENT, min_size=1, max_size=1)),
    st.tuples(st.just("send"), st.lists(EVENT, min_size=1, max_size=1)),
    st.tuples(st.just("send"), st.lists(EVENT, min_size=2, max_size=12)),
    st.tuples(st.just("top"), st.tuples(BOARD, st.integers(1, 8))),
    st.tuples(st.just("place"), st.tuples(BOARD, st.sampled_from(PLAYERS), st.integers(0, 3))),
    st.tuples(st.just("restart"), st.none()),
    st.tuples(st.just("rebuild"), st.none()),
)


def fold(model: dict[tuple[str, str], int], pid: str, points: int) -> None:
    for key, (op, desc, _) in BOARDS.items():
        old = model.get((key, pid))
        if op == "sum":
            new = points + (old or 0)
        elif op == "increment":
            new = (old or 0) + 1
        elif op == "best":
            new = points if old is None else (max(old, points) if desc else min(old, points))
        else:
            new = points
        model[(key, pid)] = new


async def ranking(runtime: Runtime, app_id: str, key: str) -> list[tuple[int, str, int]]:
    """(rank, player, score) of a board, computed from the database's rows."""
    _, desc, floor = BOARDS[key]
    E = LeaderboardEntry
    async with runtime.read_sessions() as session:
        rows = (await session.execute(sa.select(E.player_id, E.score, E.reached_at, E.seq).where(
            E.app_id == app_id, E.board == key))).all()
    kept = sorted((r for r in rows if floor is None or r.score >= floor),
                  key=lambda r: (-r.score if desc else r.score, r.reached_at, r.seq, r.player_id))
    return [(i + 1, r.player_id, r.score) for i, r in enumerate(kept)]


def shown(items: list[dict[str, Any]]) -> list[tuple[int, str, int]]:
    return [(e["rank"], e["player_id"], e["score"]) for e in items]


async def get(client: httpx.AsyncClient, headers: dict[str, str], path: str, **params: Any) -> dict[str, Any]:
    resp = await client.get(path, headers=headers, params=params)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


@hypothesis_settings(max_examples=12, deadline=None, database=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                            HealthCheck.data_too_large])
@given(steps=st.lists(STEP, min_size=4, max_size=16))
async def test_every_read_equals_the_database(client: httpx.AsyncClient, factory: Factory, runtime: Runtime,
                                              steps: list[tuple[str, Any]]) -> None:
    keys = await factory.app()  # one app per example: examples never see each other's entries
    await define(client, keys, DEFINITIONS)
    for pid in PLAYERS:
        await player(client, keys, pid)
    model: dict[tuple[str, str], int] = {}
    moment = itertools.count()
    last = 0
    for kind, arg in steps:
        if kind == "send":
            events = []
            for pid, points, same_time in arg:
                last = last if same_time else next(moment)
                at = (START - timedelta(days=1) + timedelta(seconds=last)).isoformat().replace("+00:00", "Z")
                events.append(scored(pid, points, at))
                fold(model, pid, points)
            await play(client, keys, runtime, events)
        elif kind == "top":
            key, limit = arg
            expected = await ranking(runtime, keys.app_id, key)
            page = await get(client, keys.server, f"/v1/leaderboards/{key}", limit=limit)
            assert shown(page["items"]) == expected[:limit], (key, steps)
            assert page["ranked"] == len(expected)
            if page["next_cursor"] is not None:
                following = await get(client, keys.server, f"/v1/leaderboards/{key}", limit=limit,
                                      cursor=page["next_cursor"])
                assert shown(following["items"]) == expected[limit:2 * limit], (key, steps)
            else:
                assert len(expected) <= limit
        elif kind == "place":
            key, pid, around = arg
            expected = await ranking(runtime, keys.app_id, key)
            page = await get(client, keys.server, f"/v1/leaderboards/{key}/players/{pid}", around=around)
            mine = next((i for i, (_, who, _) in enumerate(expected) if who == pid), None)
            if mine is None:
                assert page["me"] is None and page["items"] == [], (key, pid, steps)
            else:
                assert page["me"]["rank"] == mine + 1 and page["me"]["score"] == expected[mine][2], (key, pid, steps)
                assert shown(page["items"]) == expected[max(mine - around, 0):mine + around + 1], (key, pid, steps)
        elif kind == "restart":
            # A new process: its in-process index and caches start empty (a shared index stays in Redis).
            runtime.extensions.pop("leaderboards.boards", None)
        else:
            await boards_of(runtime).forget(keys.app_id)
    # At the end, every board's whole order and every player's place.
    for key in BOARDS:
        expected = await ranking(runtime, keys.app_id, key)
        page = await get(client, keys.server, f"/v1/leaderboards/{key}", limit=len(PLAYERS))
        assert shown(page["items"]) == expected, (key, steps)
        for pid in PLAYERS:
            place = await get(client, keys.server, f"/v1/leaderboards/{key}/players/{pid}")
            assert shown(place["items"]) == [row for row in expected if row[1] == pid], (key, pid, steps)
    # The database itself holds what the events add up to.
    E = LeaderboardEntry
    async with runtime.read_sessions() as session:
        rows = (await session.execute(sa.select(E.board, E.player_id, E.score).where(E.app_id == keys.app_id))).all()
    assert {(r.board, r.player_id): r.score for r in rows} == model
