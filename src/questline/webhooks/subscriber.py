"""Webhooks' subscriber of the outbox relay: turns messages into deliveries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.db import after_commit
from questline.kit.runtime import Runtime
from questline.relay.service import RelayMessage
from questline.webhooks import service, tasks


class WebhookSubscriber:
    """Deliveries are rows written with the relay's progress: each (endpoint, message) exactly once."""

    name = "webhooks"

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def handle(self, session: AsyncSession, messages: Sequence[RelayMessage]) -> None:
        if await service.enqueue(session, self.runtime.clock, messages):
            after_commit(session, tasks.wake(self.runtime).set)
