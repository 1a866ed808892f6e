"""Live channels over WebSocket (``/v1/realtime``) and Server-Sent Events (``/v1/realtime/sse``).

WebSocket protocol (JSON text frames). The client sends
``{"type": "subscribe", "channel": "player:alice", "offset": 41, "epoch": "…"}`` (offset and epoch
optional), ``{"type": "unsubscribe", "channel": …}`` and ``{"type": "pong"}`` (or any frame) in
answer to the server's ``{"type": "ping"}``. The server sends ``subscribed`` (the channel's offset
and epoch), then ``message`` frames ``{"type": "message", "channel", "offset", "epoch", "data"}``, or
``resync`` when the history no longer reaches back to the client's offset; refusals are
``{"type": "error", "code", "detail", "channel"}`` and leave the connection open.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request, WebSocket
from fastapi.responses import StreamingResponse
from starlette.websockets import WebSocketDisconnect, WebSocketState

from questline.kit.errors import ProblemError
from questline.kit.routing import UnitOfWorkRoute
from questline.kit.runtime import Runtime
from questline.realtime import service
from questline.realtime.service import CHANNEL_PATTERN, LiveSession
from questline.tenancy.auth import BRAND, CLIENT, PLAYER, SERVER, STREAMER, Caller, allow
from questline.tenancy.schemas import Role

router = APIRouter(prefix="/v1/realtime", tags=["realtime"], route_class=UnitOfWorkRoute)
MAX_FRAME = 4096
MONITOR_TASK = "realtime.monitor"
SLOW_CONSUMER = 4008  # closes a connection whose queue filled up
HEARTBEAT_TIMEOUT = 4000
LiveCaller = Annotated[Caller, allow(SERVER, CLIENT, PLAYER, BRAND, STREAMER, admin_role=Role.VIEWER)]


def _start_monitor(runtime: Runtime) -> None:
    if MONITOR_TASK in runtime.extensions:
        return
    stop = asyncio.Event()
    task = asyncio.create_task(service.run_monitor(runtime, stop))
    runtime.extensions[MONITOR_TASK] = task

    async def close() -> None:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=5)

    runtime.on_close(close)


def _error(exc: ProblemError, channel: Any = None) -> dict[str, Any]:
    return {"type": "error", "code": exc.code, "detail": exc.detail, "channel": channel}


async def _handle(live: LiveSession, raw: str) -> None:
    if len(raw) > MAX_FRAME:
        live.put({"type": "error", "code": "frame_too_large", "detail": f"frames are at most {MAX_FRAME} bytes"})
        return
    try:
        frame = orjson.loads(raw)
    except orjson.JSONDecodeError:
        frame = None
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        live.put({"type": "error", "code": "invalid_frame", "detail": "send a JSON object with a type"})
        return
    kind, channel = frame["type"], frame.get("channel")
    if kind in ("pong", "ping"):
        if kind == "ping":
            live.put({"type": "pong"})
        return
    if kind not in ("subscribe", "unsubscribe") or not isinstance(channel, str):
        live.put({"type": "error", "code": "invalid_frame", "channel": channel,
                  "detail": "subscribe or unsubscribe, with a channel"})
        return
    if kind == "unsubscribe":
        live.unsubscribe(channel)
        live.put({"type": "unsubscribed", "channel": channel})
        return
    offset, epoch = frame.get("offset"), frame.get("epoch")
    if (offset is not None and (not isinstance(offset, int) or isinstance(offset, bool) or offset < 0)) or (
            epoch is not None and (not isinstance(epoch, str) or len(epoch) > 64)):
        live.put({"type": "error", "code": "invalid_frame", "channel": channel,
                  "detail": "offset is a whole number >= 0 and epoch a string"})
        return
    try:
        await live.subscribe(channel, offset, epoch)
    except ProblemError as exc:
        live.put(_error(exc, channel))


@router.websocket("")
async def realtime(websocket: WebSocket) -> None:
    """Live channels over a WebSocket (see the module's protocol)."""
    runtime: Runtime = websocket.app.state.runtime
    try:
        caller = await service.identify_connection(websocket, runtime)
    except ProblemError as exc:
        await websocket.close(code=4401 if exc.status == 401 else 4403, reason=exc.code)
        return
    await websocket.accept()
    _start_monitor(runtime)
    live = LiveSession(runtime, caller)
    heartbeat = runtime.settings.realtime_heartbeat_seconds
    loop = asyncio.get_running_loop()
    seen = [loop.time()]

    async def reader() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            seen[0] = loop.time()
            raw = message.get("text")
            if raw is None:
                raw = (message.get("bytes") or b"").decode("utf-8", errors="replace")
            await _handle(live, raw)

    async def writer() -> None:
        queue = live.queue
        while True:
            frame = await queue.get()
            await websocket.send_text(service.frame_text(frame))
            # A burst (a fan-out of many publications) goes out in one wake-up of this task.
            while not queue.empty():
                await websocket.send_text(service.frame_text(queue.get_nowait()))

    async def pinger() -> int:
        while True:
            await asyncio.sleep(heartbeat)
            if loop.time() - seen[0] > heartbeat * 2:
                return HEARTBEAT_TIMEOUT
            live.put({"type": "ping"})

    tasks = {asyncio.create_task(reader()), asyncio.create_task(writer()), asyncio.create_task(pinger()),
             asyncio.create_task(live.dropped.wait())}
    code, reason = 1000, "bye"
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if live.dropped.is_set():
            code, reason = SLOW_CONSUMER, "slow consumer"
        for task in done:
            if not task.cancelled() and isinstance(task.exception(), WebSocketDisconnect):
                code = 0
            elif not task.cancelled() and task.exception() is None and task.result() == HEARTBEAT_TIMEOUT:
                code, reason = HEARTBEAT_TIMEOUT, "no answer to heartbeats"
    finally:
        live.close()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        if code and websocket.application_state is WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(websocket.close(code=code, reason=reason), timeout=2)


def _sse(event: str, frame: dict[str, Any]) -> bytes:
    head = f"id: {frame['epoch']}:{frame['offset']}\n" if event == "message" else ""
    return f"{head}event: {event}\ndata: {service.frame_text(frame)}\n\n".encode()


@router.get("/sse", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}, "description": "a stream of events"},
                       403: {"description": "channel_forbidden"},
                       404: {"description": "leaderboard_not_found, competition_not_found, campaign_not_found"},
                       400: {"description": "unknown_channel"},
                       406: {"description": "not_acceptable: send Accept: text/event-stream"}})
async def sse(request: Request, caller: LiveCaller,
              channel: Annotated[str, Query(max_length=160, pattern=CHANNEL_PATTERN)],
              offset: Annotated[int | None, Query(ge=0)] = None,
              epoch: Annotated[str | None, Query(max_length=64)] = None,
              last_event_id: Annotated[str | None, Header(max_length=100)] = None) -> StreamingResponse:
    """One channel as Server-Sent Events, for clients that cannot use WebSockets. Each message's
    ``id`` is ``epoch:offset``: a browser's EventSource reconnects with it (``Last-Event-ID``) and
    gets what it missed, or a ``resync`` event."""
    runtime: Runtime = request.app.state.runtime
    if "text/event-stream" not in request.headers.get("accept", ""):
        # EventSource always asks for it; anything else would wait on a stream that never ends.
        raise ProblemError("this is a stream of Server-Sent Events: send Accept: text/event-stream",
                           code="not_acceptable", status=406)
    if last_event_id and offset is None:
        ep, _, off = last_event_id.partition(":")
        if off.isdigit():
            offset, epoch = int(off), ep
    live = LiveSession(runtime, caller)
    await live.subscribe(channel, offset, epoch)  # refusals answer as problems, before streaming
    _start_monitor(runtime)
    heartbeat = runtime.settings.realtime_heartbeat_seconds

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield b"retry: 3000\n\n"
            while not live.dropped.is_set():
                try:
                    frame = await asyncio.wait_for(live.queue.get(), timeout=heartbeat)
                except TimeoutError:
                    yield b": ping\n\n"
                    continue
                yield _sse(str(frame["type"]), frame)
        finally:
            live.close()

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
