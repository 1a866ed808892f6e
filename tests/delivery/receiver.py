"""A real local HTTP receiver for webhook tests: answers from a script of statuses, records requests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from standardwebhooks import Webhook


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """``answers``: statuses to give, in order (then ``default``); ``delay``: seconds before answering."""

    answers: list[int] = field(default_factory=list)
    default: int = 200
    delay: float = 0.0
    location: str | None = None
    requests: list[Received] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            _, path, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append(Received(path, headers, body))
            status = self.answers.pop(0) if self.answers else self.default
            if self.delay:
                await asyncio.sleep(self.delay)
            extra = f"Location: {self.location}\r\n" if self.location and 300 <= status < 400 else ""
            reply = f"answer {status}".encode()
            writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: {len(reply)}\r\n{extra}Connection: close\r\n\r\n"
                         .encode() + reply)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def unique_ids(self) -> list[str]:
        return list(dict.fromkeys(r.headers["webhook-id"] for r in self.requests))


@contextlib.asynccontextmanager
async def receiving(**kwargs: object) -> AsyncIterator[Receiver]:
    receiver = Receiver(**kwargs)  # type: ignore[arg-type]
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()


def signed_by(secret: str, request: Received) -> bool:
    """The request carries a valid Standard Webhooks signature by ``secret`` (any timestamp: the
    engine runs on a test clock, so the library's freshness window is not the point here)."""
    h = request.headers
    at = datetime.fromtimestamp(int(h["webhook-timestamp"]), UTC)
    expected = Webhook(secret).sign(h["webhook-id"], at, request.body)
    return expected in h["webhook-signature"].split(" ")
