"""The webhook sender: calls the due deliveries, records each answer, schedules the retries.

Times come from the runtime's clock (the retry schedule is testable without sleeping). A round
claims due deliveries with a lease (so a sender that dies mid-call leaves them due again when the
lease ends), calls them concurrently, then records every answer in one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import TYPE_CHECKING

import structlog

from questline.kit import egress
from questline.kit.db import is_busy, unit_of_work
from questline.kit.runtime import Runtime
from questline.webhooks import outbound, service
from questline.webhooks import repository as repo
from questline.webhooks.models import WebhookDelivery, WebhookEndpoint

if TYPE_CHECKING:
    import httpx  # imported where it is used: most processes never call out (idle memory)

_log = structlog.get_logger("questline.webhooks")
CLIENT = "webhooks.client"
WAKE = "webhooks.wake"


def http_client(runtime: Runtime) -> httpx.AsyncClient:
    """One pooled client per runtime: every connection's address checked as it is opened (one lookup),
    no redirects followed, every call timed out."""
    import httpx
    found = runtime.extensions.get(CLIENT)
    if found is None:
        timeout = runtime.settings.webhooks_timeout_seconds
        found = runtime.extensions[CLIENT] = egress.client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            allow_private=lambda: service.allow_private(runtime.settings),
            resolver=egress.resolver_of(runtime.extensions),
            limits=httpx.Limits(max_connections=runtime.settings.webhooks_concurrency))
        runtime.on_close(found.aclose)
    assert isinstance(found, httpx.AsyncClient)
    return found


def wake(runtime: Runtime) -> asyncio.Event:
    """Set when new deliveries are made (the relay's subscriber), so the sender calls at once."""
    found = runtime.extensions.get(WAKE)
    if found is None:
        found = runtime.extensions[WAKE] = asyncio.Event()
    assert isinstance(found, asyncio.Event)
    return found


async def send_due(runtime: Runtime, limit: int | None = None) -> int:
    """One round: call every due delivery (up to ``limit``); returns how many calls were made."""
    limit = limit or runtime.settings.webhooks_concurrency * 4
    now = runtime.clock.now()
    lease = now + timedelta(seconds=runtime.settings.webhooks_timeout_seconds * 3 + 30)
    async with unit_of_work(runtime.sessions) as session:
        claimed = await repo.claim_due(session, now, limit, lease)
    if not claimed:
        return 0
    client = http_client(runtime)
    gate = asyncio.Semaphore(runtime.settings.webhooks_concurrency)

    async def call(delivery: WebhookDelivery, endpoint: WebhookEndpoint) -> outbound.Answer:
        async with gate:
            at = runtime.clock.now()
            headers = service.sign(service.secrets_of(runtime.settings, endpoint, at), delivery.message_id, at,
                                   delivery.body.encode())
            return await outbound.post(client, endpoint.url, delivery.body.encode(), headers)

    answers = await asyncio.gather(*(call(d, e) for d, e in claimed))
    at = runtime.clock.now()
    async with unit_of_work(runtime.sessions) as session:
        for (delivery, endpoint), answer in zip(claimed, answers, strict=True):
            status = await service.record(session, runtime, delivery, endpoint, answer, at)
            if status == "dead":
                _log.warning("webhook_dead_letter", delivery=delivery.id, endpoint=endpoint.id,
                             status=answer.status, error=answer.error)
    return len(claimed)


async def run_sender(runtime: Runtime, stop: asyncio.Event) -> None:
    """Send until ``stop``; woken by new deliveries, else polling for retries that fall due."""
    signal = wake(runtime)
    poll = runtime.settings.webhooks_poll_seconds
    backoff = 0.0
    while not stop.is_set():
        signal.clear()
        try:
            sent = await send_due(runtime)
            backoff = 0.0
        except Exception as exc:
            sent = 0
            backoff = min(30.0, max(0.5, backoff * 2))
            if is_busy(exc):
                _log.warning("webhooks_deferred_database_busy", retry_in=backoff)
            else:
                _log.exception("webhooks_round_failed", retry_in=backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=backoff)
            continue
        if sent:
            continue
        waiter = asyncio.ensure_future(signal.wait())
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait({waiter, stopper}, timeout=poll, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        stopper.cancel()
