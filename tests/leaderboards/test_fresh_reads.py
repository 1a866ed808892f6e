"""Issue 10 point 1: a board that has been read keeps following every later score
(on SQLite, PostgreSQL, and PostgreSQL with Redis)."""

from __future__ import annotations

import httpx

from questline.kit.runtime import Runtime
from tests.conftest import Factory
from tests.leaderboards.helpers import board, define, play, player, scored
from tests.leaderboards.tiers import backend, settings, tier  # noqa: F401  (fixtures)


async def test_each_score_is_read_back_after_its_event(client: httpx.AsyncClient, factory: Factory,
                                                       runtime: Runtime) -> None:
    keys = await factory.app()
    await define(client, keys, {"leaderboard": {"points": {"event_type": "match.end", "field": "data.points"}}})
    await player(client, keys, "alice")
    await player(client, keys, "bob")
    await play(client, keys, runtime, [scored("bob", 25, "2026-03-10T09:00:00Z")])
    seen = []
    for i in range(5):
        await play(client, keys, runtime, [scored("alice", 10, f"2026-03-10T10:0{i}:00Z")])
        top = await board(client, keys.server, "points")
        own = (await client.get("/v1/leaderboards/points/players/alice", headers=keys.server,
                                params={"around": 1})).json()
        seen.append(own["me"]["score"])
        expected = sorted([("alice", 10 * (i + 1)), ("bob", 25)], key=lambda pair: -pair[1])
        assert [(e["player_id"], e["score"]) for e in top["items"]] == expected
        assert [(e["player_id"], e["score"]) for e in own["items"]] == expected
    assert seen == [10, 20, 30, 40, 50]
