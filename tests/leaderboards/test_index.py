"""The rank index against a brute-force sort: the embedded index on SQLite runs, Redis on PostgreSQL runs."""

from __future__ import annotations

import random
import uuid

import httpx

from questline.kit.runtime import Runtime
from questline.leaderboards.index import BoardRef, Entry
from questline.leaderboards.service import Boards
from questline.pipeline.replay import start_replay
from tests.conftest import Factory
from tests.leaderboards.helpers import board, define, play, ranks, scored
from tests.pipeline.helpers import settle


def _expected(entries: dict[str, Entry], ref: BoardRef, partition: str) -> list[str]:
    kept = [e for e in entries.values() if e.partition == partition and ref.ranked(e.score)]
    sign = -1 if ref.descending else 1
    kept.sort(key=lambda e: (sign * e.score, e.reached_us, e.seq, e.player_id))
    return [e.player_id for e in kept]


async def test_index_matches_a_full_sort(runtime: Runtime) -> None:
    rng = random.Random(7)
    boards = Boards(runtime)
    index = boards.index
    app = f"app_{uuid.uuid4().hex[:8]}"
    for descending in (True, False):
        ref = BoardRef(app, "b", "all", descending, min_score=-50)
        await index.prepare(ref)
        await index.merge(ref, [], mark_ready=True)
        truth: dict[str, Entry] = {}
        for step in range(1, 600):
            pid = f"p{rng.randrange(80)}"
            old = truth.get(pid)
            version = (old.version if old else 0) + 1
            # Few distinct scores and timestamps: lots of ties, broken by time then log position.
            entry = Entry(pid, rng.choice(["", "", "x"]), rng.randrange(-60, 40) * 10**rng.choice([0, 0, 12]),
                          1_700_000_000_000_000 + rng.randrange(5), step, version)
            truth[pid] = entry
            stale = Entry(pid, "", 999, 0, 0, version - 1)  # an out-of-date write is ignored
            await index.merge(ref, [entry, stale] if rng.random() < 0.2 else [entry])
        for partition in ("", "x"):
            expected = _expected(truth, ref, partition)
            assert await index.size(ref, partition) == len(expected)
            window = await index.window(ref, partition, 0, len(expected) + 5)
            assert [e.player_id for e in window] == expected
            assert [e.player_id for e in await index.window(ref, partition, 3, 4)] == expected[3:7]
            for position, pid in enumerate(expected):
                found = await index.rank(ref, pid)
                assert found is not None and found[0] == position and found[1] == truth[pid]
        below = [p for p, e in truth.items() if e.score < -50]
        for pid in below:
            assert await index.rank(ref, pid) is None
        looked = await index.lookup(ref, ["p1", "p2", "nobody"])
        assert set(looked) <= {"p1", "p2"} and all(looked[p] == truth[p] for p in looked)
    await index.drop(app)
    assert not await index.ready(BoardRef(app, "b", "all", True, -50))


async def test_replay_rebuilds_the_same_boards(client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    await define(client, keys, {"leaderboard": {
        "points": {"event_type": "match.end", "field": "data.points"},
        "weekly": {"event_type": "match.end", "field": "data.points", "operator": "best", "period": "week"}}})
    await play(client, keys, runtime, [scored(f"p{i % 7}", (i * 37) % 101, f"2026-03-10T10:{i:02d}:00Z")
                                       for i in range(40)])
    before = [ranks(await board(client, keys.server, key, limit=50)) for key in ("points", "weekly")]
    assert await start_replay(runtime, keys.app_id) == 40
    await settle(runtime)
    assert [ranks(await board(client, keys.server, key, limit=50)) for key in ("points", "weekly")] == before
