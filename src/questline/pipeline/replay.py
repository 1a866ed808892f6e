"""Replay: delete derived state and let the worker reprocess the whole log."""


from __future__ import annotations

from questline.kit.runtime import Runtime
from questline.pipeline import repository as event_log
from questline.pipeline.models import REPLAY
from questline.pipeline.states import processors_of
from questline.pipeline.worker import lock_all_partitions


async def start_replay(runtime: Runtime, app_id: str | None) -> int:
    """Delete derived state and mark the log for reprocessing, in one transaction.

    The ledger is not touched: rewards are posted with deterministic idempotency keys, so
    reprocessing finds them already there. Replayed events emit no outbox messages.
    """
    async with runtime.sessions() as session, session.begin():
        await lock_all_partitions(session, runtime.settings.pipeline_partitions)
        for step in processors_of(runtime):
            await step.reset(session, app_id)
        return await event_log.mark_for_replay(session, app_id, REPLAY)
