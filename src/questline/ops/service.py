"""Readiness and metrics of one process, whatever roles it runs.

The base checks (the database, Redis when configured) always run. What a role needs beyond
them (its background loop alive, the event log reachable, the schema migrated) is registered by
the composition root with ``add_ready_check``; what a scrape should refresh first (lag per
partition, JetStream pending) with ``add_metrics_refresher``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import sqlalchemy as sa

from questline.kit.runtime import Runtime

ReadyCheck = Callable[[], Awaitable[str]]  # "ok", or why not
Refresher = Callable[[], Awaitable[None]]
_CHECKS = "ops.ready_checks"
_REFRESHERS = "ops.metrics_refreshers"


def add_ready_check(runtime: Runtime, name: str, check: ReadyCheck) -> None:
    runtime.extensions.setdefault(_CHECKS, {})[name] = check


def add_metrics_refresher(runtime: Runtime, refresher: Refresher) -> None:
    runtime.extensions.setdefault(_REFRESHERS, []).append(refresher)


async def readiness(runtime: Runtime) -> dict[str, str]:
    """Each dependency's state: "ok" or why not."""
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(3), runtime.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure means "not ready"; the reason is reported
        checks["database"] = f"unreachable: {type(exc).__name__}"
    if runtime.redis is not None:
        try:
            async with asyncio.timeout(3):
                await runtime.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"unreachable: {type(exc).__name__}"
    extra: dict[str, ReadyCheck] = runtime.extensions.get(_CHECKS, {})
    for name, check in extra.items():
        try:
            async with asyncio.timeout(3):
                checks[name] = await check()
        except Exception as exc:
            checks[name] = f"unreachable: {type(exc).__name__}"
    return checks


async def render_metrics(runtime: Runtime) -> bytes:
    """The process's metrics, gauges refreshed first (a refresher that fails leaves its old values)."""
    refreshers: list[Refresher] = runtime.extensions.get(_REFRESHERS, [])
    for refresh in refreshers:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(3):
                await refresh()
    return runtime.metrics.render()
