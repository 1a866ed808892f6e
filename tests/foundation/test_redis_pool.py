"""The engine's Redis connections: a burst of calls larger than the pool waits for a connection
instead of failing (redis-py's default pool raises MaxConnectionsError, which a request answered
as 503 when 64 readers, the worker's index writes and the relay met at once)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.skipif(not REDIS_URL, reason="needs QUESTLINE_TEST_REDIS_URL")


def settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(env="test", database_url=f"sqlite+aiosqlite:///{tmp_path / 'engine.db'}", redis_url=REDIS_URL,
                    redis_namespace=f"qlt{uuid.uuid4().hex[:8]}", **overrides)


async def burst(runtime: Runtime, calls: int) -> tuple[int, int]:
    """``calls`` INCRs of one key at once: (the key's final value, connections the pool opened)."""
    redis = runtime.redis
    assert redis is not None
    key = f"{runtime.settings.redis_namespace}:burst"
    try:
        await asyncio.gather(*(redis.incr(key) for _ in range(calls)))
        value = int(await redis.get(key) or 0)
        pool = redis.connection_pool  # every connection it opened is back in the pool by now
        return value, len(pool._available_connections) + len(pool._in_use_connections)
    finally:
        await redis.delete(key)


async def test_a_burst_larger_than_the_pool_waits_for_connections(tmp_path: Path) -> None:
    runtime = Runtime.build(settings(tmp_path))
    try:
        value, opened = await burst(runtime, 250)  # more than the default 100 connections
    finally:
        await runtime.close()
    assert value == 250
    assert opened <= 100


async def test_the_pool_size_is_a_setting(tmp_path: Path) -> None:
    runtime = Runtime.build(settings(tmp_path, redis_max_connections=3))
    try:
        value, opened = await burst(runtime, 40)
    finally:
        await runtime.close()
    assert value == 40
    assert opened == 3
