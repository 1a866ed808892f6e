"""Channels' offsets and bounded history, and the fan-out to this process's connections.

A channel (``key``: app id and channel name) numbers its messages 1, 2, 3… (the *offset*) within an
*epoch*; the hub keeps the last ``history_size`` of them for ``history_seconds``. A client that comes
back with its last offset gets what it missed from that history, or is told to resync when the
history no longer reaches back that far (or the epoch changed: the history was lost), after
Centrifugo's recovery model.

Two hubs, one interface: ``MemoryHub`` (one process, the embedded tier) and ``RedisHub`` (the
scaled tier: offsets and history in Redis, published through Redis pub/sub to every process, each
of which hands the message to its own connections). Both drop a message whose id was already
published on its channel, so a batch the relay hands over twice is published once.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import orjson
import structlog

from questline.kit.clock import Clock

if TYPE_CHECKING:  # the scaled tier's client, imported where it is made (kit.runtime)
    from redis.asyncio import Redis

_log = structlog.get_logger("questline.realtime")
SEEN_KEPT = 10_000  # message ids remembered per channel (the memory hub) for deduplication
SWEEP_EVERY = 10_000  # publications between sweeps of quiet channels (the memory hub)


@dataclass(frozen=True, slots=True)
class Publication:
    offset: int
    at: float  # the clock's time of publishing, in seconds since the epoch
    data: dict[str, Any]
    # Its frame's JSON per (channel, epoch), made once and sent to every subscriber of this process.
    texts: dict[tuple[str, str], str] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Recovery:
    epoch: str
    top: int  # the channel's latest offset
    missed: list[Publication] | None  # None: the history does not reach back far enough (resync)


Listener = Callable[[str, str, Publication], None]  # (key, epoch, publication); must not block


@dataclass
class Fanout:
    """This process's listeners per channel key."""

    listeners: dict[str, set[Listener]] = field(default_factory=dict)

    def add(self, key: str, listener: Listener) -> None:
        self.listeners.setdefault(key, set()).add(listener)

    def remove(self, key: str, listener: Listener) -> None:
        found = self.listeners.get(key)
        if found is not None:
            found.discard(listener)
            if not found:
                del self.listeners[key]

    def deliver(self, key: str, epoch: str, publication: Publication) -> None:
        for listener in list(self.listeners.get(key, ())):
            try:
                listener(key, epoch, publication)
            except Exception:  # one bad listener never stops the others
                _log.exception("realtime_listener_failed", key=key)


class Hub(Protocol):
    fanout: Fanout

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, key: str, data: dict[str, Any], message_id: str | None = None) -> int | None:
        """Publish on a channel; returns its offset (None: this message id was published there already)."""
        ...

    async def publish_many(self, items: Sequence[tuple[str, dict[str, Any], str | None]]) -> list[int | None]:
        """``publish`` of each (key, data, message id), in order; their offsets."""
        ...

    async def recover(self, key: str, since: int | None, epoch: str | None) -> Recovery: ...


def _recover(epoch: str, top: int, entries: list[Publication], since: int | None, client_epoch: str | None,
             oldest_kept: float) -> Recovery:
    """What a client at ``since`` missed, from ``entries`` (oldest first) still within their age limit."""
    if since is None:
        return Recovery(epoch, top, [])
    if (client_epoch is not None and client_epoch != epoch) or since > top:
        return Recovery(epoch, top, None)
    wanted = [e for e in entries if e.offset > since]
    if len(wanted) != top - since or (wanted and wanted[0].at < oldest_kept):
        return Recovery(epoch, top, None)
    return Recovery(epoch, top, wanted)


class MemoryHub:
    """Offsets and history in this process (the embedded tier: one process serves every socket)."""

    def __init__(self, clock: Clock, *, history_size: int, history_seconds: float) -> None:
        self.fanout = Fanout()
        self._clock = clock
        self._size, self._seconds = history_size, history_seconds
        self._epoch = secrets.token_hex(4)
        self._top: dict[str, int] = {}
        self._history: dict[str, deque[Publication]] = {}
        self._seen: dict[str, tuple[set[str], deque[str]]] = {}
        self._published = 0

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def publish_many(self, items: Sequence[tuple[str, dict[str, Any], str | None]]) -> list[int | None]:
        return [await self.publish(key, data, message_id) for key, data, message_id in items]

    async def publish(self, key: str, data: dict[str, Any], message_id: str | None = None) -> int | None:
        if message_id is not None:
            ids, order = self._seen.setdefault(key, (set(), deque()))
            if message_id in ids:
                return None
            ids.add(message_id)
            order.append(message_id)
            if len(order) > SEEN_KEPT:
                ids.discard(order.popleft())
        offset = self._top.get(key, 0) + 1
        self._top[key] = offset
        publication = Publication(offset, self._clock.now().timestamp(), data)
        self._published += 1
        if self._published % SWEEP_EVERY == 0:
            self._sweep(publication.at - self._seconds)
        if self._size:
            self._history.setdefault(key, deque(maxlen=self._size)).append(publication)
        self.fanout.deliver(key, self._epoch, publication)
        return offset

    def _sweep(self, oldest: float) -> None:
        """Forget quiet channels (their history has aged out and nobody listens here); a client
        that comes back to one is told to resync (its offset is past the restarted count)."""
        for key in [k for k, h in self._history.items() if h and h[-1].at < oldest]:
            if key not in self.fanout.listeners:
                self._history.pop(key, None)
                self._top.pop(key, None)
                self._seen.pop(key, None)

    async def recover(self, key: str, since: int | None, epoch: str | None) -> Recovery:
        oldest = self._clock.now().timestamp() - self._seconds
        return _recover(self._epoch, self._top.get(key, 0), list(self._history.get(key, ())), since, epoch, oldest)


# One atomic step per publication: dedupe by message id, number it, keep it, announce it.
_PUBLISH = """
if ARGV[4] ~= '' then
  if not redis.call('SET', KEYS[4], '1', 'NX', 'EX', ARGV[3]) then return false end
end
redis.call('SET', KEYS[3], ARGV[6], 'NX', 'EX', ARGV[3])
local epoch = redis.call('GET', KEYS[3])
redis.call('EXPIRE', KEYS[3], ARGV[3])
local offset = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
local entry = offset .. '|' .. ARGV[5] .. '|' .. ARGV[1]
if tonumber(ARGV[2]) > 0 then
  redis.call('LPUSH', KEYS[2], entry)
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[2]) - 1)
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
redis.call('PUBLISH', ARGV[7], ARGV[8] .. '\\n' .. epoch .. '\\n' .. entry)
return {offset, epoch}
"""


# ``_PUBLISH`` for several messages of one channel in one call (its keys share a slot): KEYS are the
# channel's offset, history and epoch, then each message's dedupe key; ARGV the history's size, the
# keys' lifetime, a new epoch, the bus, the channel key and the time, then (message id, data) per
# message. Returns the epoch, then each message's offset (0: published there already).
_PUBLISH_MANY = """
local size, keep = tonumber(ARGV[1]), ARGV[2]
redis.call('SET', KEYS[3], ARGV[3], 'NX', 'EX', keep)
local epoch = redis.call('GET', KEYS[3])
redis.call('EXPIRE', KEYS[3], keep)
local out = {epoch}
local head = ARGV[5] .. '\\n' .. epoch .. '\\n'
for i = 1, (#ARGV - 6) / 2 do
  local id, data = ARGV[5 + 2 * i], ARGV[6 + 2 * i]
  if id ~= '' and not redis.call('SET', KEYS[3 + i], '1', 'NX', 'EX', keep) then
    out[#out + 1] = 0
  else
    local offset = redis.call('INCR', KEYS[1])
    local entry = offset .. '|' .. ARGV[6] .. '|' .. data
    if size > 0 then redis.call('LPUSH', KEYS[2], entry) end
    redis.call('PUBLISH', ARGV[4], head .. entry)
    out[#out + 1] = offset
  end
end
redis.call('EXPIRE', KEYS[1], keep)
if size > 0 then
  redis.call('LTRIM', KEYS[2], 0, size - 1)
  redis.call('EXPIRE', KEYS[2], keep)
end
return out
"""


def _entry(raw: str) -> Publication:
    offset, at, data = raw.split("|", 2)
    return Publication(int(offset), float(at), orjson.loads(data))


class RedisHub:
    """Offsets and history in Redis; every process hears every publication through pub/sub."""

    def __init__(self, redis: Redis, clock: Clock, *, namespace: str, history_size: int,
                 history_seconds: float) -> None:
        self.fanout = Fanout()
        self._redis, self._clock, self._ns = redis, clock, namespace
        self._size, self._seconds = history_size, history_seconds
        # Keys outlive the history a while, so a quiet channel keeps its epoch and offsets.
        self._keep = int(max(history_seconds * 4, 3600))
        self._bus = f"{namespace}:realtime"
        self._script = redis.register_script(_PUBLISH)
        self._many = redis.register_script(_PUBLISH_MANY)
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    def _keys(self, key: str, message_id: str = "") -> list[str]:
        base = f"{self._ns}:rt:{{{key}}}"
        return [f"{base}:offset", f"{base}:history", f"{base}:epoch", f"{base}:seen:{message_id}"]

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._listen())
        await asyncio.wait_for(self._ready.wait(), timeout=10)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _listen(self) -> None:
        while True:
            try:
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                await pubsub.subscribe(self._bus)
                self._ready.set()
                try:
                    while True:
                        message = await pubsub.get_message(timeout=1.0)
                        if message is None:
                            continue
                        raw = message["data"]
                        key, epoch, entry = (raw.decode() if isinstance(raw, bytes) else raw).split("\n", 2)
                        self.fanout.deliver(key, epoch, _entry(entry))
                finally:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis went away: listen again shortly
                _log.warning("realtime_bus_lost", error=str(exc))
                await asyncio.sleep(1.0)

    async def publish(self, key: str, data: dict[str, Any], message_id: str | None = None) -> int | None:
        got = await self._script(keys=self._keys(key, message_id or ""), args=[
            orjson.dumps(data).decode(), self._size, self._keep, message_id or "", repr(self._clock.now().timestamp()),
            secrets.token_hex(4), self._bus, key])
        return None if got is None else int(got[0])

    async def publish_many(self, items: Sequence[tuple[str, dict[str, Any], str | None]]) -> list[int | None]:
        """One script call per channel for all of its messages (``_PUBLISH_MANY``), every channel's in
        one pipelined round trip: the relay publishes a whole batch at once, and a call's fixed cost
        (packing, a reply) was most of a message's."""
        if len(items) == 1:
            return [await self.publish(*items[0])]
        by_key: dict[str, list[int]] = {}
        for i, (key, _, _) in enumerate(items):
            by_key.setdefault(key, []).append(i)
        at = repr(self._clock.now().timestamp())
        calls = []
        for key, indexes in by_key.items():
            offset_key, history_key, epoch_key, _ = self._keys(key)
            keys = [offset_key, history_key, epoch_key, *(self._keys(key, items[i][2] or "")[3] for i in indexes)]
            args: list[Any] = [self._size, self._keep, secrets.token_hex(4), self._bus, key, at]
            for i in indexes:
                args += [items[i][2] or "", orjson.dumps(items[i][1]).decode()]
            calls.append((keys, args))
        if len(calls) == 1:
            replies = [await self._many(keys=calls[0][0], args=calls[0][1])]
        else:
            async with self._redis.pipeline(transaction=False) as pipe:
                for keys, args in calls:
                    await self._many(keys=keys, args=args, client=pipe)
                replies = await pipe.execute()
        out: list[int | None] = [None] * len(items)
        for indexes, reply in zip(by_key.values(), replies, strict=True):
            for i, offset in zip(indexes, reply[1:], strict=True):
                out[i] = int(offset) or None  # 0: published there already
        return out

    async def recover(self, key: str, since: int | None, epoch: str | None) -> Recovery:
        offset_key, history_key, epoch_key, _ = self._keys(key)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(offset_key)
            pipe.get(epoch_key)
            pipe.lrange(history_key, 0, -1)
            top, current, raw = await pipe.execute()
        if current is None:  # nothing published yet (or forgotten): start an epoch now
            await self._redis.set(epoch_key, secrets.token_hex(4), nx=True, ex=self._keep)
            current = await self._redis.get(epoch_key)
        entries = [_entry(r.decode() if isinstance(r, bytes) else r) for r in reversed(raw)]
        current_epoch = current.decode() if isinstance(current, bytes) else str(current)
        oldest = self._clock.now().timestamp() - self._seconds
        return _recover(current_epoch, int(top or 0), entries, since, epoch, oldest)
