"""What a worker batch sends to the database: each thing looked up once, whatever the batch pays.

Outcomes first (balances, levels, a clean ledger), then the statements that produced them, so a
change that reads something twice per batch fails here rather than only in ``bench/worker.py``.
"""

from __future__ import annotations

import httpx

from questline.kit.runtime import Runtime
from questline.pipeline.models import partition_of
from tests.conftest import Factory
from tests.factories import balance
from tests.ledger.helpers import verify
from tests.pipeline.helpers import configure, recorded_statements, send, settle


async def test_a_batch_that_pays_level_up_rewards_looks_its_players_up_once(
        client: httpx.AsyncClient, factory: Factory, runtime: Runtime) -> None:
    keys = await factory.app()
    await configure(client, keys)
    await settle(runtime)  # what earlier tests left pending is not this batch's
    # Players of one partition: on the JetStream log each partition's stream is a batch of its own.
    partitions = runtime.settings.pipeline_partitions
    players = [p for p in (f"p{i}" for i in range(200))
               if partition_of(keys.app_id, p, partitions) == partition_of(keys.app_id, "p0", partitions)][:3]
    assert len(players) == 3
    # Two wins each: 120 XP, past level 2 (100 XP), whose reward is 200 points.
    events = [{"id": f"{p}-{i}", "player_id": p, "type": "match.won", "data": {"score": 10}}
              for i in range(2) for p in players]
    assert (await send(client, keys, events)).status_code == 202
    with recorded_statements(runtime) as sent:
        assert await settle(runtime) == len(events)
    for player in players:
        assert await balance(client, keys, player) == 200
        profile = (await client.get(f"/v1/players/{player}", headers=keys.server)).json()
        assert profile["levels"]["xp"]["level"] == 2
    assert await verify(runtime, keys.app_id) == []
    # The batch creates its new players and reads their keys; paying them reads nothing more.
    lookups = [s for s in sent if s.lstrip().upper().startswith("SELECT") and "FROM players" in s]
    assert len(lookups) == 2, lookups  # before the insert of the new players, and after it
    # A later batch for the same (now known) players reads them once.
    more = [{"id": f"{p}-again", "player_id": p, "type": "match.won", "data": {"score": 10}} for p in players]
    assert (await send(client, keys, more)).status_code == 202
    with recorded_statements(runtime) as sent:
        assert await settle(runtime) == len(more)
    lookups = [s for s in sent if s.lstrip().upper().startswith("SELECT") and "FROM players" in s]
    assert len(lookups) == 1, lookups
    assert await verify(runtime, keys.app_id) == []
