"""Replay: delete derived state and let the worker reprocess the whole log.

A replay may run beside live engines (``questline serve``, workers) and must leave every
per-player read as live processing left it:

- The reset and the marking of the log happen in one transaction that is the writer of every
  partition (PostgreSQL: every partition's advisory lock; SQLite: its single write lock). A busy
  database delays it (growing pauses, as for worker batches); it never fails the replay.
- Any worker (this command's, or an engine's) then processes the marked events in log order.
- Scheduled jobs are held while marked events are pending (``jobs_held``), in every process:
  they read derived state that is half rebuilt (a streak check would break a streak that the
  log has not reached yet) and would append to the log mid-replay.
- The app's replay epoch moves with the reset and with every replayed batch; a process that
  holds derived state in memory (a rank index) rebuilds it when the epoch moves.
"""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.db import is_busy
from questline.kit.runtime import Runtime
from questline.pipeline import repository as event_log
from questline.pipeline.models import REPLAY
from questline.pipeline.states import processors_of
from questline.pipeline.worker import BUSY_BACKOFF_MAX, lock_all_partitions

_log = structlog.get_logger("questline.replay")
# PostgreSQL advisory lock (class, id) between a replay's start (exclusive) and jobs (shared).
REPLAY_LOCK = (0x5155_4553, -1)


async def start_replay(runtime: Runtime, app_id: str | None) -> int:
    """Delete derived state and mark the log for reprocessing, in one transaction; returns how
    many events were marked. A busy database is waited out."""
    backoff = 0.0
    while True:
        try:
            return await _start(runtime, app_id)
        except Exception as exc:
            if not is_busy(exc):
                raise
            backoff = min(BUSY_BACKOFF_MAX, max(0.1, backoff * 2))
            _log.warning("replay_start_deferred_database_busy", retry_in=backoff, error=str(exc).splitlines()[0])
            await asyncio.sleep(backoff)


async def _start(runtime: Runtime, app_id: str | None) -> int:
    """The ledger is not touched: rewards are posted with deterministic idempotency keys, so
    reprocessing finds them already there. Replayed events emit no outbox messages."""
    async with runtime.sessions() as session, session.begin():
        if session.get_bind().dialect.name == "postgresql":
            # Wait for running jobs to finish; the ones that start later see the marked log.
            await session.execute(sa.text("SELECT pg_advisory_xact_lock(:k, :i)"),
                                  {"k": REPLAY_LOCK[0], "i": REPLAY_LOCK[1]})
        await lock_all_partitions(session, runtime.settings.pipeline_partitions)
        for step in processors_of(runtime):
            await step.reset(session, app_id)
        apps = await event_log.apps_in_log(session, app_id)
        marked = await event_log.mark_for_replay(session, app_id, REPLAY)
        await event_log.raise_replay_epochs(session, apps, runtime.clock.now())
        return marked


async def jobs_held(session: AsyncSession) -> bool:
    """Whether scheduled jobs must wait: a replay is under way (in any process).

    Called inside the job's transaction. On PostgreSQL the job holds the replay lock shared
    until it commits, so a replay starts only once running jobs are done; on SQLite the job's
    transaction already holds the write lock a replay's start needs.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(sa.text("SELECT pg_advisory_xact_lock_shared(:k, :i)"),
                              {"k": REPLAY_LOCK[0], "i": REPLAY_LOCK[1]})
    return await event_log.replaying(session)
