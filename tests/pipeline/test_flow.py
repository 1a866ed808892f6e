from __future__ import annotations

import httpx

from questline.kit.clock import ManualClock
from questline.kit.runtime import Runtime
from tests.conftest import Factory
from tests.pipeline.helpers import configure, send, settle


def won(i: int, player: str = "alice", score: int = 500, ts: str = "2026-03-10T12:00:00Z") -> dict[str, object]:
    return {"id": f"w-{player}-{i}", "player_id": player, "type": "match.won", "data": {"score": score},
            "timestamp": ts}


async def test_events_to_stats_xp_levels_and_points(client: httpx.AsyncClient, factory: Factory,
                                                     runtime: Runtime, clock: ManualClock) -> None:
    keys = await factory.app()
    await configure(client, keys)
    resp = await send(client, keys, [won(1, score=1200), won(2, score=300), won(3, score=800)])
    assert resp.status_code == 202, resp.text
    assert resp.json()["accepted"] == ["w-alice-1", "w-alice-2", "w-alice-3"]
    # At least ours: on the shared PostgreSQL database another test may have left events pending.
    assert await settle(runtime) >= 3

    stats = (await client.get("/v1/players/alice/stats", headers=keys.server,
                              params={"at": "2026-03-10T12:00:00+00:00"})).json()
    assert stats["wins"] == {"all": 3, "day": 3, "week": 3, "month": 3}
    assert stats["score"]["all"] == 2300
    assert stats["best"]["all"] == 1200
    assert stats["last_score"]["all"] == 800  # same timestamp: the later log position wins

    profile = (await client.get("/v1/players/alice", headers=keys.server)).json()
    xp = profile["levels"]["xp"]
    # 60 + 60 + 30 (daily cap 150); level 2 starts at 100 XP (1² x 100).
    assert xp["total_xp"] == 150 and xp["level"] == 2 and xp["name"] == "Regular"
    assert xp["xp_in_level"] == 50 and xp["xp_for_next_level"] == 400
    assert profile["levels"]["rp"]["total_xp"] == 10
    assert profile["balances"]["points"]["balance"] == 200


async def test_profile_carries_streaks_as_they_come(client: httpx.AsyncClient, factory: Factory,
                                                    runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys)
    resp = await client.put("/v1/definitions/streak/daily", headers=keys.server,
                            json={"name": "Daily", "event_types": ["match.won"]})
    assert resp.status_code == 201, resp.text
    await send(client, keys, [won(1, ts="2026-03-09T12:00:00Z"), won(2, ts="2026-03-10T11:00:00Z")])
    await settle(runtime)
    profile = (await client.get("/v1/players/alice", headers=keys.server)).json()
    assert profile["streaks"]["daily"]["current"] == 2 and profile["streaks"]["daily"]["longest"] == 2


def test_batch_sizer_keeps_lock_holds_short() -> None:
    from questline.pipeline.worker import BatchSizer

    sizer = BatchSizer(ceiling=500, target=1.0)
    sizer.observe(500, 5.0)
    assert sizer.size == 250
    sizer.observe(100, 0.01)  # a partial batch: the log ran dry, nothing learned
    assert sizer.size == 250
    for _ in range(10):
        sizer.observe(sizer.size, 9.0)
    assert sizer.size == 20
    for _ in range(10):
        sizer.observe(sizer.size, 0.1)
    assert sizer.size == 500


def test_a_busy_sqlite_is_a_503_not_a_500() -> None:
    import sqlite3

    import sqlalchemy as sa

    from questline.kit.errors import to_problem

    locked = sa.exc.OperationalError("BEGIN IMMEDIATE", {}, sqlite3.OperationalError("database is locked"))
    problem = to_problem(locked)
    assert (problem.status, problem.code, problem.headers["Retry-After"]) == (503, "database_busy", "1")


async def test_docs_work_offline(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower()
    script = await client.get("/docs-assets/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.content) > 100_000


def test_stat_numbers_are_finite_numbers_only() -> None:
    from questline.pipeline.stats import number_getter

    get = number_getter("data.x", 100)
    assert get({"data": {"x": 1.234}}) == 123 and get({"data": {"x": 2}}) == 200
    for bad in (float("inf"), float("nan"), True, "7", None, [1]):
        assert get({"data": {"x": bad}}) is None
    assert get({"data": {}}) is None and number_getter(None, 1)({}) == 1
