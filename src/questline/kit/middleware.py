"""The ASGI edge (pure ASGI, no per-request framework objects on the happy path).

For every HTTP request: a request id (the caller's ``X-Request-Id`` when it is safe to echo,
else a new one), bounds on what the server layer lets through (URL length ``414``, header
size ``431``, body size ``413``, a body that stalls ``408``), the rate-limit fields of the limits
the request met (``RateLimit-Policy``/``RateLimit``), CORS, metrics by route template, and one
access-log line.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from dataclasses import dataclass
from typing import Any

import structlog
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from questline.kit.errors import ProblemError, problem_response
from questline.kit.ids import ulid
from questline.kit.metrics import HttpMetrics
from questline.kit.ratelimit import collect_verdicts, rate_limit_headers

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_log = structlog.get_logger("questline.http")


class PayloadTooLarge(ProblemError):
    status, code, title = 413, "payload_too_large", "Payload too large"


class BodyTimeout(ProblemError):
    status, code, title = 408, "request_timeout", "Request timeout"


class UriTooLong(ProblemError):
    status, code, title = 414, "uri_too_long", "URI too long"


class HeadersTooLarge(ProblemError):
    status, code, title = 431, "headers_too_large", "Request header fields too large"


@dataclass(frozen=True)
class EdgeLimits:
    max_body_bytes: int
    max_upload_bytes: int  # multipart/form-data (badge images); routes bound each file
    max_url_bytes: int
    max_header_bytes: int
    body_timeout_seconds: float


@dataclass
class _Exchange:
    status: int = 500
    started: bool = False
    received: int = 0
    body_done: bool = False
    deadline: float | None = None
    refusal: ProblemError | None = None  # set while the app was reading the body; its own reply is dropped


async def _no_app(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("the edge answers CORS itself; this app is never called")


def cors_policy(origins: list[str]) -> CORSMiddleware | None:
    """The engine's CORS rules (None: no origin is allowed, no CORS headers at all). The edge applies
    them with Starlette's own code (``EdgeMiddleware``), without a middleware layer of their own."""
    if not origins:
        return None
    return CORSMiddleware(
        _no_app, allow_origins=origins, allow_credentials=False, allow_methods=["*"], max_age=600,
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Questline-App", "X-Request-ID"],
        expose_headers=["Retry-After", "RateLimit", "RateLimit-Policy", "X-Request-ID", "Idempotent-Replayed"],
    )


def _vary_origin(headers: list[tuple[bytes, bytes]]) -> None:
    """``Vary: Origin`` added as Starlette's CORS adds it to a reply to a request without ``Origin``
    (the reply may differ for one with it): one ``vary`` header, the existing values joined first."""
    found = [index for index, (name, _) in enumerate(headers) if name == b"vary"]
    if not found:
        headers.append((b"vary", b"Origin"))
        return
    value = b", ".join([*(headers[index][1] for index in found), b"Origin"])
    for index in reversed(found[1:]):
        del headers[index]
    headers[found[0]] = (b"vary", value)


class EdgeMiddleware:
    """``cors``: the CORS policy (``cors_policy``). It was Starlette's ``CORSMiddleware`` around this
    one; now a request without ``Origin`` (servers, SDKs, the benchmark) pays only the ``Vary`` header,
    and one with it gets the same answers from the same code: preflights before anything else
    (no request id, no log line, as before), the CORS headers after the edge's own."""

    def __init__(self, app: ASGIApp, *, limits: EdgeLimits, metrics: HttpMetrics,
                 cors: CORSMiddleware | None = None) -> None:
        self.app = app
        self.limits = limits
        self.metrics = metrics
        self.cors = cors
        self._templates: dict[Any, str] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming, content_type, declared, header_bytes, origin, preflight = _read_headers(scope)
        cors = self.cors
        vary = False
        if cors is not None:
            if origin:
                request_headers = Headers(scope=scope)
                if preflight and scope["method"] == "OPTIONS":
                    await cors.preflight_response(request_headers=request_headers)(scope, receive, send)
                    return
                send = functools.partial(cors.send, send=send, request_headers=request_headers)
            else:
                vary = True
        request_id = incoming if incoming and _SAFE_REQUEST_ID.match(incoming) else f"req_{ulid()}"
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        state = _Exchange()
        limit = (self.limits.max_upload_bytes if content_type.startswith("multipart/form-data")
                 else self.limits.max_body_bytes)

        with collect_verdicts() as verdicts:

            async def send_wrapper(message: Message) -> None:
                if state.refusal is not None and not state.started:
                    return
                if message["type"] == "http.response.start":
                    state.status, state.started = message["status"], True
                    headers = list(message.get("headers", []))
                    headers.append((b"x-request-id", request_id.encode()))
                    headers.extend(rate_limit_headers(verdicts))
                    if vary:
                        _vary_origin(headers)
                    message["headers"] = headers
                await send(message)

            async def bounded_receive() -> Message:
                if state.body_done:  # afterwards only http.disconnect is awaited: no bound
                    return await receive()
                loop = asyncio.get_running_loop()
                if state.deadline is None:
                    state.deadline = loop.time() + self.limits.body_timeout_seconds
                try:
                    async with asyncio.timeout_at(state.deadline):
                        message = await receive()
                except TimeoutError:
                    state.refusal = BodyTimeout(
                        f"the request body did not arrive within {self.limits.body_timeout_seconds:g} seconds")
                    raise state.refusal from None
                if message["type"] == "http.request":
                    state.received += len(message.get("body", b""))
                    state.body_done = not message.get("more_body", False)
                    if state.received > limit and not state.started:
                        state.refusal = _too_large(limit)
                        raise state.refusal
                else:
                    state.body_done = True
                return message

            try:
                refusal = self._refuse_up_front(scope, declared, header_bytes, limit)
                if refusal is not None:
                    await self._reply(scope, receive, send_wrapper, refusal)
                    return
                try:
                    await self.app(scope, bounded_receive, send_wrapper)
                except ProblemError as exc:
                    if exc is not state.refusal:
                        raise
                if state.refusal is not None and not state.started:
                    refusal, state.refusal = state.refusal, None
                    await self._reply(scope, receive, send_wrapper, refusal)
            finally:
                elapsed = time.perf_counter() - started
                template = self._template(scope)
                self.metrics.observe(scope["method"], template, state.status, elapsed)
                _log.info("request", method=scope["method"], path=scope["path"], route=template,
                          status=state.status, ms=round(elapsed * 1000, 2))
                structlog.contextvars.unbind_contextvars("request_id")

    def _refuse_up_front(self, scope: Scope, declared: int | None, header_bytes: int,
                         limit: int) -> ProblemError | None:
        url_bytes = len(scope.get("raw_path") or scope["path"].encode()) + len(scope.get("query_string", b""))
        if url_bytes > self.limits.max_url_bytes:
            return UriTooLong(f"URLs are limited to {self.limits.max_url_bytes} bytes (this one has {url_bytes})")
        if header_bytes > self.limits.max_header_bytes:
            return HeadersTooLarge(f"request headers are limited to {self.limits.max_header_bytes} bytes in all")
        if declared is not None and declared > limit:
            return _too_large(limit)
        return None

    def _template(self, scope: Scope) -> str:
        """The matched route's template; routes FastAPI adds itself (``/openapi.json``, ``/docs``) by path."""
        route = scope.get("route")
        template = getattr(route, "path", None)
        if template:
            return str(template)
        endpoint = scope.get("endpoint")
        if endpoint is None:
            return "unmatched"
        if self._templates is None:
            self._templates = _endpoint_templates(scope.get("app"))
        return self._templates.get(endpoint, "unmatched")

    @staticmethod
    async def _reply(scope: Scope, receive: Receive, send: Send, problem: ProblemError) -> None:
        response = problem_response(Request(scope), problem)
        response.headers["connection"] = "close"  # the rest of the request is not read
        await response(scope, receive, send)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request bodies are limited to {limit} bytes")


def _read_headers(scope: Scope) -> tuple[str, str, int | None, int, bool, bool]:
    """The request id header, the content type, the declared length, the headers' total size,
    whether an ``Origin`` came and whether ``Access-Control-Request-Method`` did (a preflight)."""
    request_id = content_type = ""
    declared: int | None = None
    total = 0
    origin = preflight = False
    for name, value in scope["headers"]:
        total += len(name) + len(value) + 4
        if name == b"x-request-id":
            request_id = value.decode("latin-1")
        elif name == b"content-type":
            content_type = value.decode("latin-1").lower()
        elif name == b"content-length" and value.isdigit():
            declared = int(value)
        elif name == b"origin":
            origin = True
        elif name == b"access-control-request-method":
            preflight = True
    return request_id, content_type, declared, total, origin, preflight


def _endpoint_templates(app: Any) -> dict[Any, str]:
    """Endpoint -> path for every plain route and mount of the app (those set no ``scope["route"]``)."""
    templates: dict[Any, str] = {}
    for route in getattr(app, "routes", ()):
        path = getattr(route, "path", None)
        if not path:
            continue
        endpoint = getattr(route, "endpoint", None)
        if endpoint is not None:
            templates.setdefault(endpoint, path)
        mounted = getattr(route, "app", None)
        if mounted is not None and not hasattr(route, "endpoint"):
            templates.setdefault(mounted, f"{path}/{{path}}")
    return templates
