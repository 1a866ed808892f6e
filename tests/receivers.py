"""A real local HTTP receiver (uvicorn on a free port) for outbound calls: webhooks, callbacks, chat APIs.

It records every request and answers from a script per path (``fail_next``), 200 with ``{"ok": true}``
otherwise: a stand-in for a studio's server, a game server, Discord's or Telegram's API.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import uvicorn
from standardwebhooks.webhooks import Webhook

from tests.serving import free_port

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)

    def verified(self, secret: str) -> Any:
        """The body, once its Standard Webhooks signature checks out with ``secret`` (at the signed time:
        tests run on a manual clock, so the library's own five-minute window against the wall clock
        does not apply)."""
        at = datetime.fromtimestamp(int(self.headers["webhook-timestamp"]), tz=UTC)
        expected = Webhook(secret).sign(self.headers["webhook-id"], at, self.body.decode())
        assert expected in self.headers["webhook-signature"].split(" "), "bad signature"
        return self.json()


@dataclass
class Receiver:
    base: str = ""
    requests: list[Received] = field(default_factory=list)
    script: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))

    def fail_next(self, path: str, *statuses: int) -> None:
        """Answer the next requests to ``path`` with these statuses (then 200 again)."""
        self.script[path].extend(statuses)

    def to(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.requests.append(Received(scope["method"], scope["path"], headers, body))
        queue = self.script.get(scope["path"])
        status = queue.pop(0) if queue else 200
        reply = orjson.dumps({"ok": 200 <= status < 300, "result": {"message_id": len(self.requests)}})
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": reply})


@contextlib.asynccontextmanager
async def receiving() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(receiver, host="127.0.0.1", port=port, log_level="error",
                                           lifespan="on", access_log=False))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
        if task.done():
            task.result()
    receiver.base = f"http://127.0.0.1:{port}"
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task
