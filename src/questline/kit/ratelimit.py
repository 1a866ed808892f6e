"""Rate limits with the ``limits`` library: in memory by default, in Redis when configured."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from questline.kit.errors import RateLimited


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int


class RateLimiter:
    def __init__(self, redis_url: str | None = None, *, namespace: str = "questline") -> None:
        storage: Storage
        if redis_url:
            url = redis_url.replace("redis://", "async+redis://", 1).replace("rediss://", "async+rediss://", 1)
            # Bounded like every other network call: a hung Redis is a 503, not a hung request.
            made = storage_from_string(url, key_prefix=f"{namespace}:limits", implementation="redispy",
                                       socket_timeout=5, socket_connect_timeout=5)
            assert isinstance(made, Storage)
            storage = made
        else:
            storage = MemoryStorage()
        self._storage = storage
        self._limiter = MovingWindowRateLimiter(storage)

    async def hit(self, rule: str, *identity: str) -> Verdict:
        item = parse(rule)
        if await self._limiter.hit(item, *identity):
            return Verdict(True, 0)
        stats = await self._limiter.get_window_stats(item, *identity)
        return Verdict(False, max(1, math.ceil(stats.reset_time - time.time())))

    async def enforce(self, rule: str, *identity: str, what: str) -> None:
        verdict = await self.hit(rule, *identity)
        if not verdict.allowed:
            raise RateLimited(f"rate limit for {what} exceeded ({rule})", retry_after=verdict.retry_after)

    async def reset(self) -> None:
        await self._storage.reset()
