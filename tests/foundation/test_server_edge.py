"""What the server layer refuses before the app sees a request, and bodies that stall.

Issue 10 point 20: long URLs and raw NUL bytes got uvicorn's plain-text 400, and a body that
stalled held the request forever. Against a real ``questline serve`` (raw sockets: no client
library would send these), every refusal is problem+json now.
"""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from questline.app import create_app
from questline.kit.runtime import Runtime
from questline.kit.settings import Settings
from tests.conftest import lifespan, problem
from tests.serving import serving


def exchange(port: int, data: bytes, *, pause_after: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    """Send ``data`` on a fresh connection (stopping at ``pause_after`` to stall), read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(data if pause_after is None else data[:data.index(pause_after) + len(pause_after)])
        received = b""
        while b"\r\n\r\n" not in received or len(received.split(b"\r\n\r\n", 1)[1]) < _length(received):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def _length(received: bytes) -> int:
    for line in received.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 10**9


def expect_problem(answer: tuple[int, dict[str, str], bytes], status: int, code: str) -> dict[str, Any]:
    got, headers, body = answer
    assert got == status, (got, headers, body[:300])
    assert headers["content-type"].startswith("application/problem+json"), headers
    parsed: dict[str, Any] = json.loads(body)
    assert parsed["status"] == status and parsed["code"] == code and parsed["request_id"], parsed
    return parsed


@pytest.mark.slow
def test_the_server_layer_answers_problem_json(tmp_path: Path) -> None:
    with serving(tmp_path, QUESTLINE_BODY_TIMEOUT_SECONDS="1", QUESTLINE_LOG_LEVEL="WARNING") as served:
        port = int(served.base.rsplit(":", 1)[1])
        # Refused by uvicorn's parser before the app: now problem+json.
        expect_problem(exchange(port, b"GET /v1/play\x00ers HTTP/1.1\r\nHost: x\r\n\r\n"), 400, "malformed_http")
        expect_problem(exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Odd: a\x00b\r\n\r\n"), 400,
                       "malformed_http")
        huge = b"GET /v1/" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        expect_problem(exchange(port, huge), 400, "malformed_http")
        # Let through by the parser, refused by the app's edge.
        long_url = b"GET /v1/players?q=" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        expect_problem(exchange(port, long_url), 414, "uri_too_long")
        big_headers = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 20_000 + b"\r\n\r\n"
        expect_problem(exchange(port, big_headers), 431, "headers_too_large")
        escaped_nul = b"GET /v1/players/a%00b/account HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer x\r\n\r\n"
        expect_problem(exchange(port, escaped_nul), 422, "validation_failed")
        # A body that stops arriving is answered once the body timeout passes, not held forever.
        stalled = (b"PUT /v1/players/alice/account HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Content-Length: 100\r\nAuthorization: Bearer x\r\n\r\n{\"display_name\": ")
        body = expect_problem(exchange(port, stalled, pause_after=b'{"display_name": '), 408, "request_timeout")
        assert "within 1 seconds" in body["detail"]
        # And the server is as well as before.
        assert httpx.get(f"{served.base}/healthz", timeout=10).json() == {"status": "ok"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"body_timeout_seconds": 0.5})


async def test_a_stalled_body_is_408_in_process(runtime: Runtime) -> None:
    """The same bound at the ASGI level, with a client that sends half a body and then nothing."""
    app = create_app(runtime=runtime, background=False)
    async with lifespan(app):
        sent: list[dict[str, Any]] = []
        never = asyncio.Event()
        parts = [{"type": "http.request", "body": b'{"display_', "more_body": True}]

        async def receive() -> dict[str, Any]:
            if parts:
                return parts.pop(0)
            await never.wait()  # the client neither sends more nor disconnects
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "PUT",
                 "scheme": "http", "path": "/v1/players/alice/account", "raw_path": b"/v1/players/alice/account",
                 "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1), "server": ("test", 80),
                 "headers": [(b"content-type", b"application/json"), (b"content-length", b"40"),
                             (b"authorization", b"Bearer ql_sk_x")]}
        await asyncio.wait_for(app(scope, receive, send), timeout=30)
        start = next(m for m in sent if m["type"] == "http.response.start")
        headers = dict(start["headers"])
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        response = httpx.Response(start["status"], headers=list(headers.items()), content=body)
        problem(response, 408, "request_timeout")
        assert headers[b"connection"] == b"close"
