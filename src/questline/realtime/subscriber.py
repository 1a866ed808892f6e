"""Live channels' subscriber of the outbox relay: publishes messages on their channels."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.runtime import Runtime
from questline.realtime import service
from questline.relay.service import RelayMessage


class RealtimeSubscriber:
    """Publishes inside the relay's batch: a batch relayed twice is published once (the hub
    deduplicates by message id), and a publish that fails (Redis away) makes the batch come again."""

    name = "realtime"

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def handle(self, session: AsyncSession, messages: Sequence[RelayMessage]) -> None:
        await service.publish(self.runtime, messages)
