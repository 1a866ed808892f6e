"""In-process caches of database rows, invalidated explicitly and, when scaled out, in every process.

What a request or a batch reads again and again and rarely changes (API keys, apps and their
settings, token revocation state, compiled rule sets, time zones) is held in process. Staleness is
never left to a timer: whatever changes such a row invalidates its entry once the change commits.

- An area declares a cache once, at module level, as an immutable ``CacheSpec``::

      APPS = CacheSpec[str, AppRecord]("tenancy.apps", keep_missing=False)

  and reads through it with the session it would have queried with::

      app = await APPS.get(session, app_id, lambda: load_app(session, app_id))

  A service that changes the row says so in the same transaction::

      APPS.invalidate(session, app_id)   # dropped here and in every process, after commit

- The entries live in the ``CacheHub`` of the runtime that made the session (its session
  factories carry it in ``session.info``), so two runtimes in one process (tests) never share one.
- Without Redis, invalidation is in-process only. With Redis, the hub publishes every
  invalidation on one pub/sub channel and a listener, started and stopped in the app's lifespan,
  applies the other processes' invalidations. While that listener is not subscribed (Redis down,
  or a process that never started it, such as a CLI command) the caches are bypassed, and when it
  (re)subscribes every cache is cleared, since messages sent meanwhile are lost.
- Every entry also expires after ``max_age_seconds`` (``QUESTLINE_CACHE_MAX_AGE_SECONDS``): the
  backstop for changes made by a process that cannot reach this one (a CLI command on the
  embedded tier). ``0`` turns caching off.

A load that overlaps an invalidation of the same cache is returned but not kept, so a value read
just before a change commits is never stored after its invalidation went by. Load through a
session that has not itself written the row: an uncommitted value must not be cached.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import orjson
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from questline.kit.db import after_commit

if TYPE_CHECKING:  # the scaled tier's client, imported where it is made (kit.runtime)
    from redis.asyncio import Redis

__all__ = ["HUB_INFO_KEY", "Cache", "CacheHub", "CacheSpec", "hub_of"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
# Where a session factory keeps its runtime's hub (``async_sessionmaker(info=...)``).
HUB_INFO_KEY = "questline.cache_hub"
_log = structlog.get_logger("questline.cache")


class Cache(Generic[K, V]):
    """One named cache: bounded (least recently used entries go first), each entry with a max age."""

    def __init__(self, hub: CacheHub, name: str, *, max_entries: int, keep_missing: bool) -> None:
        self.hub = hub
        self.name = name
        self.max_entries = max_entries
        self.keep_missing = keep_missing
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        # Moves on every invalidation: a load that saw it move keeps nothing.
        self._generation = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def generation(self) -> int:
        """Moves on every invalidation (here or from another process): what was derived from
        this cache's entries under an older generation may be stale."""
        return self._generation

    def put(self, key: K, value: V) -> None:
        """Keep ``value`` now (a holder that is filled in later); nothing while the hub is not serving."""
        if not self.hub.serving:
            return
        self._entries[key] = (self.hub.monotonic() + self.hub.max_age_seconds, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def peek(self, key: K) -> tuple[bool, V | None]:
        """``(True, value)`` for a live entry, else ``(False, None)``; never loads."""
        if not self.hub.serving:
            return False, None
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        if entry[0] < self.hub.monotonic():
            del self._entries[key]
            return False, None
        self._entries.move_to_end(key)
        return True, entry[1]

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        found, value = self.peek(key)
        if found:
            self.hits += 1
            return value  # type: ignore[return-value]
        self.misses += 1
        generation = self._generation
        loaded = await load()
        if generation == self._generation and self.hub.serving and (loaded is not None or self.keep_missing):
            self._entries[key] = (self.hub.monotonic() + self.hub.max_age_seconds, loaded)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return loaded

    async def get_many(self, keys: Iterable[K],
                       load: Callable[[list[K]], Awaitable[dict[K, V]]]) -> dict[K, V]:
        """The live entries of ``keys``, and ``load(missing)`` for the rest in one call (kept as
        ``get`` keeps a load; a key ``load`` leaves out is missing: kept as None if ``keep_missing``)."""
        out: dict[K, V] = {}
        missing: list[K] = []
        # ``peek`` inlined, the clock read once: board reads look up hundreds of keys per request.
        if self.hub.serving:
            now = self.hub.monotonic()
            entries = self._entries
            for key in keys:
                entry = entries.get(key)
                if entry is not None and entry[0] >= now:
                    entries.move_to_end(key)
                    if entry[1] is not None:
                        out[key] = entry[1]
                    continue
                if entry is not None:
                    del entries[key]
                if key not in out:
                    missing.append(key)
        else:
            missing = list(keys)
        self.hits += len(out)
        missing = list(dict.fromkeys(missing))
        if not missing:
            return out
        self.misses += len(missing)
        generation = self._generation
        loaded = await load(missing)
        keep = generation == self._generation and self.hub.serving
        expires = self.hub.monotonic() + self.hub.max_age_seconds
        for key in missing:
            value = loaded.get(key)
            if value is not None:
                out[key] = value
            if keep and (value is not None or self.keep_missing):
                self._entries[key] = (expires, value)  # type: ignore[assignment]
                self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return out

    def drop(self, keys: Iterable[K]) -> None:
        """Forget these keys in this process only (see ``CacheHub.invalidate`` for every process)."""
        self._generation += 1
        for key in keys:
            self._entries.pop(key, None)

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()


@dataclass(frozen=True)
class CacheSpec(Generic[K, V]):
    """A cache's declaration: its name, its bound, and whether a missing row (None) is kept.

    Keys must survive JSON (strings, or tuples of strings and numbers), since invalidations
    travel between processes.
    """

    name: str
    max_entries: int = 10_000
    keep_missing: bool = True

    def of(self, hub: CacheHub) -> Cache[K, V]:
        return hub.cache(self)

    async def get(self, session: AsyncSession, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """The cached value, or ``load()`` (kept when it is safe to keep)."""
        hub = hub_of(session)
        if hub is None:
            return await load()
        return await hub.cache(self).get(key, load)

    async def get_many(self, session: AsyncSession, keys: Iterable[K],
                       load: Callable[[list[K]], Awaitable[dict[K, V]]]) -> dict[K, V]:
        """The cached values of ``keys``, loading the missing ones with one ``load(missing)``."""
        hub = hub_of(session)
        if hub is None:
            wanted = list(dict.fromkeys(keys))
            return {k: v for k, v in (await load(wanted)).items() if v is not None} if wanted else {}
        return await hub.cache(self).get_many(keys, load)

    def invalidate(self, session: AsyncSession, *keys: K) -> None:
        """Once ``session`` commits, drop these keys here and in every process (nothing on rollback)."""
        hub = hub_of(session)
        if hub is not None and keys:
            after_commit(session, lambda: hub.invalidate(self.name, keys))


def hub_of(session: AsyncSession) -> CacheHub | None:
    hub = session.info.get(HUB_INFO_KEY)
    return hub if isinstance(hub, CacheHub) else None


class CacheHub:
    """The caches of one runtime, and the pub/sub link that keeps them right across processes."""

    def __init__(self, redis: Redis | None, *, channel: str, max_age_seconds: float,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.redis = redis
        self.channel = channel
        self.max_age_seconds = max_age_seconds
        self.monotonic = monotonic  # entries' age is measured with this (tests move it)
        self.origin = uuid.uuid4().hex
        self._caches: dict[str, Cache[Any, Any]] = {}
        self._subscribed = False
        self._listener: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.received = 0  # invalidations applied from other processes

    @property
    def serving(self) -> bool:
        """Whether entries may be served and kept: always in process; with Redis, while subscribed."""
        if self.max_age_seconds <= 0:
            return False
        return self.redis is None or self._subscribed

    def cache(self, spec: CacheSpec[K, V]) -> Cache[K, V]:
        found = self._caches.get(spec.name)
        if found is None:
            found = self._caches[spec.name] = Cache(self, spec.name, max_entries=spec.max_entries,
                                                    keep_missing=spec.keep_missing)
        return found

    def clear_all(self) -> None:
        for cache in self._caches.values():
            cache.clear()

    async def invalidate(self, name: str, keys: Iterable[Hashable]) -> None:
        """Drop ``keys`` of cache ``name`` here, then tell every other process (best effort)."""
        keys = list(keys)
        cache = self._caches.get(name)
        if cache is not None:
            cache.drop(keys)
        if self.redis is None:
            return
        message = orjson.dumps({"origin": self.origin, "cache": name, "keys": keys})
        try:
            await self.redis.publish(self.channel, message)
        except Exception as exc:  # the change is committed; the others' entries expire with max age
            _log.warning("cache_invalidation_not_published", cache=name, error=str(exc))

    async def invalidate_all(self, name: str) -> None:
        """Drop every entry of cache ``name`` here, then in every other process (best effort)."""
        cache = self._caches.get(name)
        if cache is not None:
            cache.clear()
        if self.redis is None:
            return
        try:
            await self.redis.publish(self.channel, orjson.dumps({"origin": self.origin, "cache": name, "all": True}))
        except Exception as exc:  # as ``invalidate``: the others' entries expire with max age
            _log.warning("cache_invalidation_not_published", cache=name, error=str(exc))

    def apply(self, raw: bytes) -> None:
        """Apply one invalidation message from the channel (our own are already applied)."""
        try:
            message = orjson.loads(raw)
            if message["origin"] == self.origin:
                return
            cache = self._caches.get(str(message["cache"]))
            if message.get("all") is True:
                self.received += 1
                if cache is not None:
                    cache.clear()
                return
            keys = [tuple(k) if isinstance(k, list) else k for k in message["keys"]]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            _log.warning("cache_invalidation_unreadable", error=str(exc))
            self.clear_all()  # cannot tell what changed: forget everything
            return
        self.received += 1
        if cache is not None:
            cache.drop(keys)

    async def start(self) -> None:
        """Listen for other processes' invalidations (with Redis); a no-op in process."""
        if self.redis is None or self._listener is not None or self.max_age_seconds <= 0:
            return
        self._stopping.clear()
        tried = asyncio.Event()
        self._listener = asyncio.create_task(self._listen(tried), name="cache-invalidations")
        # Wait for the first attempt, so a fresh process serves from cache at once; if Redis is
        # down the listener keeps trying and the caches are bypassed until it gets through.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(tried.wait(), timeout=2)

    async def stop(self) -> None:
        self._stopping.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener
        self._subscribed = False
        self.clear_all()

    async def _listen(self, tried: asyncio.Event) -> None:
        assert self.redis is not None
        delay = 0.1
        while not self._stopping.is_set():
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                # Whatever was published while we were not listening is lost: start empty.
                self.clear_all()
                self._subscribed = True
                tried.set()
                delay = 0.1
                while not self._stopping.is_set():
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self.apply(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._subscribed:
                    _log.warning("cache_invalidations_lost", error=str(exc))
                self._subscribed = False
                self.clear_all()
                tried.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=delay)
                delay = min(delay * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
