"""What every call gets: an ``Idempotency-Key`` on each POST, retries that honour ``Retry-After``.

A POST without a key gets a fresh one before its first attempt and keeps it through the retries,
so a retried grant or order is applied once by the engine. 429 and 503 are retried after the
``Retry-After`` the engine gives (or a doubling backoff), as are connection failures; a wait
longer than ``max_wait`` seconds is not made: the problem is raised instead.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import httpx

RETRIED_STATUSES = frozenset({429, 503})


def with_idempotency_key(request: httpx.Request) -> None:
    if request.method == "POST" and "idempotency-key" not in request.headers:
        request.headers["Idempotency-Key"] = uuid.uuid4().hex


def retry_delay(response: httpx.Response | None, attempt: int) -> float:
    """Seconds to wait before the next attempt: ``Retry-After`` when given, else 0.25 s doubling."""
    if response is not None:
        given = str(response.headers.get("retry-after", ""))
        try:
            return max(0.0, float(given))
        except ValueError:
            pass
    return 0.25 * 2.0**attempt


class RetryTransport(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport | None = None, *, attempts: int = 4, max_wait: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.inner = inner or httpx.HTTPTransport()
        self.attempts, self.max_wait, self.sleep = max(1, attempts), max_wait, sleep

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with_idempotency_key(request)
        for attempt in range(self.attempts):
            last = attempt == self.attempts - 1
            try:
                response = self.inner.handle_request(request)
            except httpx.TransportError:
                if last or retry_delay(None, attempt) > self.max_wait:
                    raise
                self.sleep(retry_delay(None, attempt))
                continue
            delay = retry_delay(response, attempt)
            if response.status_code not in RETRIED_STATUSES or last or delay > self.max_wait:
                return response
            response.read()
            response.close()
            self.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover

    def close(self) -> None:
        self.inner.close()


class AsyncRetryTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport | None = None, *, attempts: int = 4,
                 max_wait: float = 30.0, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.inner = inner or httpx.AsyncHTTPTransport()
        self.attempts, self.max_wait, self.sleep = max(1, attempts), max_wait, sleep

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with_idempotency_key(request)
        for attempt in range(self.attempts):
            last = attempt == self.attempts - 1
            try:
                response = await self.inner.handle_async_request(request)
            except httpx.TransportError:
                if last or retry_delay(None, attempt) > self.max_wait:
                    raise
                await self.sleep(retry_delay(None, attempt))
                continue
            delay = retry_delay(response, attempt)
            if response.status_code not in RETRIED_STATUSES or last or delay > self.max_wait:
                return response
            await response.aread()
            await response.aclose()
            await self.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover

    async def aclose(self) -> None:
        await self.inner.aclose()
