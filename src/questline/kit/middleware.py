"""The ASGI edge: request ids, a request-body size limit, metrics and access logs."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import structlog
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from questline.kit.errors import ProblemError, problem_response
from questline.kit.ids import ulid
from questline.kit.metrics import HttpMetrics

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_log = structlog.get_logger("questline.http")


class PayloadTooLarge(ProblemError):
    status, code, title = 413, "payload_too_large", "Payload too large"


@dataclass
class _Exchange:
    status: int = 500
    started: bool = False
    received: int = 0
    refused: bool = False
    limit: int = 0


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, metrics: HttpMetrics,
                 max_upload_bytes: int | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # multipart/form-data (file uploads such as badge images) may be larger; routes bound each file.
        self.max_upload_bytes = max(max_body_bytes, max_upload_bytes or 0)
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        incoming = request.headers.get("x-request-id", "")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else f"req_{ulid()}"
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        # ``refused``: the body outgrew the limit while the app was reading it. Whatever the
        # app makes of that (frameworks wrap errors raised while reading a body in their
        # own 400), the client gets the 413, so the app's own reply is dropped.
        state = _Exchange()
        multipart = request.headers.get("content-type", "").lower().startswith("multipart/form-data")
        state.limit = self.max_upload_bytes if multipart else self.max_body_bytes

        async def send_wrapper(message: Message) -> None:
            if state.refused:
                return
            if message["type"] == "http.response.start":
                state.status, state.started = message["status"], True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        async def bounded_receive() -> Message:
            message: dict[str, Any] = dict(await receive())
            if message["type"] == "http.request":
                state.received += len(message.get("body", b""))
                if state.received > state.limit and not state.started:
                    state.refused = True
                    raise self._too_large(state.limit)
            return message

        try:
            declared = request.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > state.limit:
                await self._reply_too_large(request, scope, receive, send_wrapper, state.limit)
                return
            try:
                await self.app(scope, bounded_receive, send_wrapper)
            except PayloadTooLarge:
                if not state.refused:
                    raise
            if state.refused:
                state.refused = False
                await self._reply_too_large(request, scope, receive, send_wrapper, state.limit)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(scope["method"], template, state.status, elapsed)
            _log.info("request", method=scope["method"], path=scope["path"], route=template,
                      status=state.status, ms=round(elapsed * 1000, 2))
            structlog.contextvars.unbind_contextvars("request_id")

    @staticmethod
    def _too_large(limit: int) -> PayloadTooLarge:
        return PayloadTooLarge(f"request bodies are limited to {limit} bytes")

    async def _reply_too_large(self, request: Request, scope: Scope, receive: Receive, send: Send,
                               limit: int) -> None:
        response = problem_response(request, self._too_large(limit))
        response.headers["connection"] = "close"  # the rest of the body is not read
        await response(scope, receive, send)
