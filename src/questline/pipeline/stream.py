"""The event log on NATS JetStream (``QUESTLINE_EVENT_LOG=nats://…``).

One stream per partition (``<NS>_EVENTS_<p>``, subjects ``<ns>.events.<p>.<app>``: a subject per
app and partition), so a partition's stream sequence counts 1, 2, 3… with no gaps. Ingest
publishes each accepted event with ``Nats-Msg-Id`` = app and event id (a retried publish is
deduplicated by the server) and answers once JetStream has acknowledged every one. Workers read
each partition through a durable pull consumer; what they apply, and the stream sequence it
reached, commit in one database transaction (``pipeline_offsets``), and a batch is applied only
when it starts right after that sequence and has no gap: a redelivery is skipped, an
out-of-order delivery (a zombie worker, a restart) resets the consumer to the recorded position.
So effects are exactly once whatever JetStream redelivers, and acknowledgements to JetStream
are only housekeeping.

The applied events are also written to the database's ``events`` table (the worker's reads,
``replay`` and the log's audit need them there); the database log stays the embedded default.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
import structlog

from questline.kit.errors import ServiceUnavailable
from questline.kit.runtime import Runtime
from questline.kit.settings import Settings

if TYPE_CHECKING:  # nats (and aiohttp under it) is imported on first use: ~10 MB that the default log never needs
    from collections.abc import Awaitable, Callable

    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js import JetStreamContext

_log = structlog.get_logger("questline.stream")
Key = tuple[str, str]  # (app_id, event_id)
PUBLISH_TIMEOUT = 5.0
CONNECT_TIMEOUT = 3.0
DUPLICATE_WINDOW_SECONDS = 3600.0
ACK_WAIT_SECONDS = 30.0
# Making a stream or a consumer is tried this many times: NATS 2.9's file store answers a make with a
# 500 when it races a delete in the same account (the last stream's delete removes the directory a
# new stream is being made in; a consumer deleted while made loses its files), and a moment later
# the same make succeeds.
MAKE_ATTEMPTS = 4


class EventLogUnavailable(ServiceUnavailable):
    status, code, title = 503, "event_log_unavailable", "Service unavailable"


@dataclass(slots=True)
class StreamEvent:
    """One message of a partition's stream, decoded."""

    seq: int
    row: dict[str, Any]
    msg: Msg | None = None


def _token(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


class StreamLog:
    """A connection to JetStream and the streams and consumers of one namespace."""

    def __init__(self, settings: Settings) -> None:
        self.url = settings.event_log or ""
        self.namespace = _token(settings.event_log_namespace)
        self.partitions = settings.pipeline_partitions
        self.max_age = settings.event_log_max_age_hours * 3600
        self.durable = f"{self.namespace}-worker"
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._streams: set[int] = set()
        self._ready: set[int] = set()
        self._subs: dict[int, JetStreamContext.PullSubscription] = {}
        self._lock = asyncio.Lock()
        # Per partition: the first sequence the stream still holds, when events expired unapplied.
        self.floor: dict[int, int] = {}
        # Counts reconnections: a pull request in flight when the connection dropped is lost with
        # it, and a pull subscription may stay silent after it, so partition tasks position again.
        self.connections = 0

    def stream(self, partition: int) -> str:
        return f"{self.namespace.upper()}_EVENTS_{partition}"

    def subject(self, app_id: str, partition: int) -> str:
        return f"{self.namespace}.events.{partition}.{_token(app_id)}"

    async def js(self) -> JetStreamContext:
        """The JetStream context, connecting on first use; 503 ``event_log_unavailable`` if NATS is not there."""
        if self._js is not None and self._nc is not None and not self._nc.is_closed:
            return self._js
        async with self._lock:
            if self._js is None or self._nc is None or self._nc.is_closed:
                import nats

                try:
                    # Once connected, reconnect forever (a NATS restart is an outage, not an end);
                    # the first connection is bounded, so a request waits seconds, not forever.
                    async with asyncio.timeout(CONNECT_TIMEOUT):
                        self._nc = await nats.connect(self.url, connect_timeout=2, max_reconnect_attempts=-1,
                                                      reconnect_time_wait=0.5, allow_reconnect=True,
                                                      error_cb=_quiet, disconnected_cb=_disconnected,
                                                      reconnected_cb=self._reconnected)
                except Exception as exc:
                    raise EventLogUnavailable("the event log (NATS JetStream) is unreachable; retry shortly",
                                              retry_after=2) from exc
                self._js = self._nc.jetstream(timeout=PUBLISH_TIMEOUT)
                self._streams.clear()
                self._ready.clear()
                self._subs.clear()
        assert self._js is not None
        return self._js

    async def ensure_stream(self, partition: int) -> None:
        """The partition's stream exists (made once per process). Publishers need no more: the
        durable consumer is the workers' to make and to position."""
        if partition in self._streams:
            return
        from nats.js import api as js_api
        from nats.js.errors import NotFoundError

        js = await self.js()
        config = js_api.StreamConfig(
            name=self.stream(partition), subjects=[f"{self.namespace}.events.{partition}.>"],
            retention=js_api.RetentionPolicy.LIMITS, storage=js_api.StorageType.FILE, max_age=self.max_age,
            duplicate_window=min(DUPLICATE_WINDOW_SECONDS, self.max_age),
        )
        try:
            await js.stream_info(config.name or "")
        except NotFoundError:
            await _make(lambda: js.add_stream(config), lambda: js.stream_info(config.name or ""))
        self._streams.add(partition)

    async def ensure(self, partition: int) -> None:
        """The partition's stream and durable consumer exist (made once per process)."""
        if partition in self._ready:
            return
        from nats.js.errors import NotFoundError

        await self.ensure_stream(partition)
        js = await self.js()
        try:
            await js.consumer_info(self.stream(partition), self.durable)
        except NotFoundError:
            await self._add_consumer(js, partition, None)
        self._ready.add(partition)

    async def _add_consumer(self, js: JetStreamContext, partition: int, start: int | None) -> None:
        """Make the durable consumer (``_make``: another worker making or positioning it at the same
        moment is not a failure, a 500 of the file store's own is tried again)."""
        from nats.js import api as js_api

        policy = js_api.DeliverPolicy.ALL if start is None else js_api.DeliverPolicy.BY_START_SEQUENCE
        config = js_api.ConsumerConfig(
            durable_name=self.durable, deliver_policy=policy, opt_start_seq=start,
            ack_policy=js_api.AckPolicy.EXPLICIT, ack_wait=ACK_WAIT_SECONDS, max_ack_pending=-1,
        )
        stream = self.stream(partition)
        await _make(lambda: js.add_consumer(stream, config), lambda: js.consumer_info(stream, self.durable))

    async def publish(self, rows: list[dict[str, Any]]) -> dict[Key, bool]:
        """Publish rows (each with its ``partition``); returns (app, event id) -> True if new, False if
        JetStream already had it. Raises ``EventLogUnavailable`` unless every row is acknowledged."""
        if not rows:
            return {}
        try:
            js = await self.js()
            for partition in {row["partition"] for row in rows}:
                await self.ensure_stream(partition)
            futures = []
            for row in rows:
                headers = {"Nats-Msg-Id": f"{row['app_id']}:{row['event_id']}"}
                futures.append(await js.publish_async(self.subject(row["app_id"], row["partition"]),
                                                      orjson.dumps(row, default=_default), headers=headers,
                                                      wait_stall=PUBLISH_TIMEOUT))
            async with asyncio.timeout(PUBLISH_TIMEOUT):
                acks = await asyncio.gather(*futures)
        except EventLogUnavailable:
            raise
        except Exception as exc:
            _log.warning("event_log_publish_failed", events=len(rows), error=repr(exc))
            raise EventLogUnavailable("the event log (NATS JetStream) did not acknowledge; retry shortly",
                                      retry_after=2) from exc
        return {(row["app_id"], row["event_id"]): not ack.duplicate for row, ack in zip(rows, acks, strict=True)}

    async def fetch(self, partition: int, batch: int, wait: float) -> list[StreamEvent]:
        """Up to ``batch`` messages of the partition's durable consumer (waiting up to ``wait`` seconds for one)."""
        await self.ensure(partition)
        sub = self._subs.get(partition)
        if sub is None:
            js = await self.js()
            sub = self._subs[partition] = await js.pull_subscribe_bind(self.durable, stream=self.stream(partition))
        from nats.errors import TimeoutError as NatsTimeoutError

        try:
            msgs = await sub.fetch(batch, timeout=wait)
        except (TimeoutError, NatsTimeoutError):
            return []
        out = []
        for msg in msgs:
            row = orjson.loads(msg.data)
            for name in ("occurred_at", "received_at"):
                row[name] = datetime.fromisoformat(row[name])
            out.append(StreamEvent(msg.metadata.sequence.stream, row, msg))
        return out

    async def forget(self, partition: int) -> None:
        """Drop this process's pull subscription of a partition it no longer applies."""
        sub = self._subs.pop(partition, None)
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def reset(self, partition: int, start: int) -> None:
        """Deliver the partition's stream again from ``start`` (the next sequence to apply)."""
        from nats.js.errors import NotFoundError

        js = await self.js()
        await self.ensure_stream(partition)
        await self.forget(partition)
        with contextlib.suppress(NotFoundError):
            await js.delete_consumer(self.stream(partition), self.durable)
        info = await js.stream_info(self.stream(partition))
        first = int(info.state.first_seq or 1)
        if first > start and info.state.messages:
            # Events expired from the stream before any worker applied them: say so loudly.
            _log.error("event_log_expired_unapplied", partition=partition, from_seq=start, to_seq=first - 1)
            self.floor[partition] = first
        await self._add_consumer(js, partition, max(start, first))
        self._ready.add(partition)

    async def last_seq(self, partition: int) -> int:
        """The last sequence the partition's stream holds (0: empty)."""
        await self.ensure_stream(partition)
        js = await self.js()
        info = await js.stream_info(self.stream(partition))
        return int(info.state.last_seq or 0)

    async def _reconnected(self) -> None:
        self.connections += 1
        _log.info("event_log_reconnected")

    async def pending(self, partition: int) -> int:
        """Messages of the partition not yet delivered or not yet acknowledged. Asking makes no
        consumer (only the partition's owner makes and positions it); while there is none, every
        message the stream holds counts."""
        from nats.js.errors import NotFoundError

        await self.ensure_stream(partition)
        js = await self.js()
        try:
            info = await js.consumer_info(self.stream(partition), self.durable)
        except NotFoundError:
            return int((await js.stream_info(self.stream(partition))).state.messages or 0)
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)

    async def check(self) -> str:
        if self._nc is not None and not self._nc.is_connected:
            return "unreachable: reconnecting"
        js = await self.js()
        await js.account_info()
        return "ok"

    async def delete_streams(self) -> None:
        """Remove this namespace's streams (tests, and tearing an install down)."""
        from nats.js.errors import NotFoundError

        js = await self.js()
        for partition in range(self.partitions):
            with contextlib.suppress(NotFoundError):
                await js.delete_stream(self.stream(partition))
        self._streams.clear()
        self._ready.clear()
        self._subs.clear()

    async def close(self) -> None:
        if self._nc is not None and not self._nc.is_closed:
            with contextlib.suppress(Exception):
                await self._nc.close()
        self._nc = self._js = None


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__}")


async def _make(make: Callable[[], Awaitable[object]], look: Callable[[], Awaitable[object]]) -> None:
    """Make a stream or consumer. A make that fails (NATS answers a race with another maker with a
    400 or a 500) is fine if ``look`` then finds it; if not, the failure was the file store's own
    (see ``MAKE_ATTEMPTS``) and the make is tried again a moment later."""
    from nats.js.errors import APIError, NotFoundError

    for attempt in range(MAKE_ATTEMPTS):
        try:
            await make()
            return
        except APIError:
            try:
                await look()
                return  # made by another at the same moment
            except NotFoundError:
                if attempt == MAKE_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.05 * 2**attempt)


async def _quiet(exc: Exception) -> None:
    _log.warning("event_log_connection_error", error=repr(exc))


async def _disconnected() -> None:
    _log.warning("event_log_disconnected")


def stream_log(runtime: Runtime) -> StreamLog | None:
    """The runtime's JetStream log, or None when the log is the database's (made on first use)."""
    if not runtime.settings.event_log:
        return None
    found = runtime.extensions.get("pipeline.stream")
    if found is None:
        found = runtime.extensions["pipeline.stream"] = StreamLog(runtime.settings)
        runtime.on_close(found.close)
    assert isinstance(found, StreamLog)
    return found
