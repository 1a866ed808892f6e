"""The worker's round reads how many events wait in each partition to group them into batches;
a partition with a backlog of a batch or more is a batch alone, so counting past a batch's size
tells nothing (and read the whole backlog every round)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.ids import ulid
from questline.kit.runtime import Runtime
from questline.pipeline import repository as event_log
from questline.pipeline.models import LIVE, partition_of

AT = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


async def test_a_round_counts_each_partitions_pending_events_up_to_a_batch(runtime: Runtime) -> None:
    """The round's grouping read: every partition with pending events, each counted up to ``cap``
    (PostgreSQL stops at ``cap``), as the full count would say, capped."""
    app_id = f"round_{ulid()}"
    partitions = runtime.settings.pipeline_partitions
    players = ["ann"] * 5 + ["bob"]
    rows = [{"app_id": app_id, "event_id": f"e{i}", "player_id": player, "type": "t", "data": {},
             "occurred_at": AT, "received_at": AT, "source": "server", "pending": LIVE}
            for i, player in enumerate(players)]
    async with runtime.engine.connect() as connection:
        if connection.dialect.name == "postgresql":  # both reads see one state (SQLite: one writer)
            await connection.execution_options(isolation_level="REPEATABLE READ")
        async with AsyncSession(bind=connection) as session, session.begin():
            await event_log.append(session, rows, partitions=partitions)
            full = await event_log.pending_by_partition(session)
            capped = await event_log.pending_by_partition(session, cap=3)
            await session.rollback()
    assert capped == {p: min(n, 3) for p, n in full.items()}
    ann, bob = partition_of(app_id, "ann", partitions), partition_of(app_id, "bob", partitions)
    assert full[ann] >= 5 and capped[ann] == 3
    assert capped[bob] >= 1

