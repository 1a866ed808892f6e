"""The fulfilment loop: delivers due rewards outside any request (``serve`` runs it in-process)."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from questline.fulfilment import service
from questline.kit.db import is_busy, is_connection_error
from questline.kit.runtime import Runtime

_log = structlog.get_logger("questline.fulfilment")
IDLE_SECONDS = 1.0


async def run_fulfilment(runtime: Runtime, stop: asyncio.Event) -> None:
    wake = service.wake_event(runtime)
    while not stop.is_set():
        worked = 0
        try:
            worked = await service.process_due(runtime)
        except Exception as exc:
            if is_busy(exc) or is_connection_error(exc):
                _log.warning("fulfilment_deferred", reason=type(exc).__name__)
            else:
                _log.exception("fulfilment_loop_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=IDLE_SECONDS)
        if worked:
            continue
        wake.clear()
        waiter = asyncio.ensure_future(wake.wait())
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait({waiter, stopper}, timeout=IDLE_SECONDS, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        stopper.cancel()
