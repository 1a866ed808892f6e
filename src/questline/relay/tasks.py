"""The relay loop that ``serve`` and ``worker`` run in-process beside the event worker."""

from __future__ import annotations

import asyncio
import contextlib
import random

import structlog

from questline.kit.db import is_busy
from questline.kit.runtime import Runtime
from questline.pipeline.ingest import signals
from questline.relay import service

_log = structlog.get_logger("questline.relay")
BACKOFF_MAX = 30.0


async def run_relay(runtime: Runtime, stop: asyncio.Event) -> None:
    """Relay the outbox until ``stop``, woken by the worker's batches (or a short poll, for rows
    written by requests): the (subscriber, partition) pairs with messages waiting go together in one
    transaction, but for a partition with a backlog (``service.Backlogs``); a failing pair backs off
    alone. Every process runs this loop: a pair another relay holds is skipped, so idle relays take the free ones."""
    poll = runtime.settings.relay_poll_seconds
    batch = runtime.settings.relay_batch_size
    backoff: dict[tuple[str, int], float] = {}
    retry_at: dict[tuple[str, int], float] = {}
    backlogs = service.Backlogs()
    loop = asyncio.get_running_loop()
    prepared = False
    turn = random.randrange(1024)  # where this process starts its round: relays spread over partitions
    while not stop.is_set():
        progress = signals(runtime).progress  # taken before the work: a batch done meanwhile wakes us
        moved = 0
        try:
            if not prepared:
                await service.prepare(runtime)
                prepared = True
            waiting = await service.waiting(runtime)
        except Exception as exc:
            _log.warning("relay_read_failed", error=str(exc).splitlines()[0] if str(exc) else repr(exc))
            waiting = set()
        parts = service.partitions(runtime)
        turn += 1
        order = parts[turn % len(parts):] + parts[:turn % len(parts)]
        ready = {p: subs for p in order
                 if (subs := [s for s in service.subscribers(runtime) if (s.name, p) in waiting
                              and retry_at.get((s.name, p), 0.0) <= loop.time()])}
        for group in backlogs.groups(ready):
            if sum(len(subs) for subs in group.values()) > 1:
                # Together in one transaction (one lock, one read, one commit); if one of them fails,
                # each goes alone below, so the failing one backs off alone.
                try:
                    counts = await service.step_many(runtime, group, batch)
                except Exception as exc:
                    _log.debug("relay_batch_split", error=repr(exc))
                else:
                    for pair, count in counts.items():
                        moved += count or 0
                        backoff.pop(pair, None)
                        backlogs.note(pair, count, batch)
                    continue
            for partition, members in group.items():
                for subscriber in members:
                    key = (subscriber.name, partition)
                    try:
                        count = await service.step(runtime, subscriber, batch, partition)
                        moved += count
                        backoff.pop(key, None)
                        backlogs.note(key, count, batch)
                    except Exception as exc:
                        wait = min(BACKOFF_MAX, max(0.2, backoff.get(key, 0.0) * 2))
                        backoff[key] = wait
                        retry_at[key] = loop.time() + wait
                        if is_busy(exc):
                            _log.warning("relay_deferred_database_busy", subscriber=subscriber.name,
                                         partition=partition, retry_in=wait)
                        else:
                            _log.exception("relay_subscriber_failed", subscriber=subscriber.name,
                                           partition=partition, retry_in=wait)
        if moved:
            continue
        waiter = asyncio.ensure_future(progress.wait())
        stopper = asyncio.ensure_future(stop.wait())
        with contextlib.suppress(Exception):
            await asyncio.wait({waiter, stopper}, timeout=poll, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        stopper.cancel()
