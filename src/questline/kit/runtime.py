"""The objects one running engine shares: built in the app's lifespan, never at import time."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from questline.kit.cache import HUB_INFO_KEY, CacheHub
from questline.kit.clock import Clock, SystemClock
from questline.kit.db import OUTBOX_PARTITIONS_INFO_KEY, create_engine, session_factory
from questline.kit.idempotency import IdempotencyStore
from questline.kit.metrics import HttpMetrics
from questline.kit.ratelimit import RateLimiter
from questline.kit.security import use_password_cost
from questline.kit.settings import Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from questline.kit.routing import EdgeHook


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    read_sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    limiter: RateLimiter
    idempotency: IdempotencyStore
    metrics: HttpMetrics
    caches: CacheHub
    redis: Redis | None = None
    # Per-area singletons (caches, wake-up signals), keyed by the area that owns them.
    extensions: dict[str, Any] = field(default_factory=dict)
    # Run inside every successful state-changing request's transaction (the audit log's recorder).
    edge_hooks: list[EdgeHook] = field(default_factory=list)
    # Run by ``close`` before the database goes: areas finish what they hold (queued writes).
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def on_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        self._closers.append(closer)

    @classmethod
    def build(cls, settings: Settings, clock: Clock | None = None) -> Runtime:
        clock = clock or SystemClock()
        use_password_cost(settings.password_hash_cost)
        engine = create_engine(settings.database_url, pool_size=settings.database_pool_size,
                               pool_timeout=settings.database_pool_timeout_seconds)
        redis: Redis | None = None
        if settings.redis_url:  # the scaled tier only: the embedded engine never loads the client (~7 MB)
            from redis.asyncio import BlockingConnectionPool, Redis

            # A blocking pool: with every connection busy (a burst of requests, the worker's index
            # writes, the relay) a call waits for one instead of failing with MaxConnectionsError.
            pool = BlockingConnectionPool.from_url(settings.redis_url, max_connections=settings.redis_max_connections,
                                                   timeout=5, socket_timeout=5, socket_connect_timeout=5)
            redis = Redis.from_pool(pool)
        caches = CacheHub(redis, channel=f"{settings.redis_namespace}:cache-invalidations",
                          max_age_seconds=settings.cache_max_age_seconds)
        # Sessions carry the hub, so what reads or changes a cached row finds its cache.
        # They carry the relay partitions too: every outbox row is written into its partition.
        info = {HUB_INFO_KEY: caches, OUTBOX_PARTITIONS_INFO_KEY: settings.relay_partitions}
        sessions = session_factory(engine, info=info)
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            read_sessions=session_factory(engine, readonly=True, info=info),
            clock=clock,
            limiter=RateLimiter(redis, namespace=settings.redis_namespace),
            idempotency=IdempotencyStore(
                sessions, clock, ttl_seconds=settings.idempotency_ttl_seconds,
                lock_seconds=settings.idempotency_lock_seconds,
            ),
            metrics=HttpMetrics(CollectorRegistry()),
            caches=caches,
            redis=redis,
        )

    async def close(self) -> None:
        closers, self._closers = self._closers, []
        for closer in reversed(closers):
            await closer()
        await self.caches.stop()
        if self.redis is not None:
            await self.redis.aclose()
        await self.engine.dispose()
