from __future__ import annotations

import asyncio

import sqlalchemy as sa

from questline.kit.runtime import Runtime


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
    return checks
