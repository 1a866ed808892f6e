"""Slowing password guessing without locking the owner out.

Wrong passwords are counted per pair of (e-mail, source address). The first
``login_free_attempts`` of a pair cost nothing; after that each attempt must wait a delay that
doubles (1 s, 2 s, 4 s, … up to ``login_max_delay_seconds``), answered ``429`` with
``Retry-After`` and without checking the password. A right password clears the pair. So someone
guessing from elsewhere slows only themself: the owner, from their own address, still signs in.

An attempt is counted when it starts (and cleared if it succeeds), so parallel guesses cannot
slip past the delay. In memory for one process; in Redis (one atomic script) when scaled out.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the scaled tier's client, imported where it is made (kit.runtime)
    from redis.asyncio import Redis


__all__ = ["LoginThrottle"]

# KEYS[1]: the pair's hash; ARGV: now, free attempts, max delay, seconds to remember the pair.
# Returns the seconds to wait as a string ("0": go ahead, the attempt is now counted).
_BEGIN = """
local now = tonumber(ARGV[1])
local blocked = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if blocked > now then return tostring(blocked - now) end
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local free = tonumber(ARGV[2])
local delay = 0
if failures > free then delay = math.min(2 ^ (failures - free - 1), tonumber(ARGV[3])) end
redis.call('HSET', KEYS[1], 'until', tostring(now + delay))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return '0'
"""
_REMEMBER_SECONDS = 24 * 3600
_MAX_PAIRS_IN_MEMORY = 100_000


class LoginThrottle:
    def __init__(self, redis: Redis | None, *, namespace: str, free_attempts: int, max_delay_seconds: int) -> None:
        self.redis = redis
        self.namespace = namespace
        self.free_attempts = free_attempts
        self.max_delay_seconds = max_delay_seconds
        # pair -> (failures, blocked until, last attempt), all in epoch seconds
        self._pairs: dict[str, tuple[int, float, float]] = {}

    def _pair(self, email: str, source: str) -> str:
        digest = hashlib.sha256(email.encode()).hexdigest()[:32]  # no e-mail addresses in Redis keys
        return f"{self.namespace}:login:{digest}:{source}"

    def delay_after(self, failures: int) -> float:
        if failures <= self.free_attempts:
            return 0.0
        return float(min(2 ** (failures - self.free_attempts - 1), self.max_delay_seconds))

    async def begin(self, email: str, source: str, now: datetime) -> int:
        """Seconds this pair must still wait (0: go ahead; the attempt counts until it succeeds)."""
        pair = self._pair(email, source)
        at = now.timestamp()
        if self.redis is not None:
            raw = await self.redis.eval(
                _BEGIN, 1, pair, repr(at), str(self.free_attempts), str(self.max_delay_seconds),
                str(_REMEMBER_SECONDS))
            wait = float(raw.decode() if isinstance(raw, bytes) else raw)
            return math.ceil(wait) if wait > 0 else 0
        failures, blocked_until, _ = self._pairs.get(pair, (0, 0.0, 0.0))
        if blocked_until > at:
            return math.ceil(blocked_until - at)
        failures += 1
        self._pairs.pop(pair, None)  # re-insert: the dict stays ordered by last attempt
        self._pairs[pair] = (failures, at + self.delay_after(failures), at)
        self._forget_old(at)
        return 0

    async def succeeded(self, email: str, source: str) -> None:
        pair = self._pair(email, source)
        if self.redis is not None:
            await self.redis.delete(pair)
        else:
            self._pairs.pop(pair, None)

    def _forget_old(self, now: float) -> None:
        while self._pairs:
            oldest = next(iter(self._pairs))
            _, _, last = self._pairs[oldest]
            if len(self._pairs) <= _MAX_PAIRS_IN_MEMORY and last > now - _REMEMBER_SECONDS:
                return
            del self._pairs[oldest]
