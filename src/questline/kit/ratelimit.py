"""Rate limits in constant time: GCRA, in memory by default, in Redis when scaled out.

A rule such as ``"600/minute"`` (the ``limits`` notation, which the settings validate) allows
bursts up to 600 and a sustained 600 per minute. The generic cell rate algorithm keeps one
number per identity, the theoretical arrival time ``tat``: a hit is allowed when
``max(tat, now) + interval - now <= period`` and moves ``tat`` on by one ``interval``
(``period / limit``). A refusal says exactly when the next hit would pass (``Retry-After``).
In memory that is one dict look-up; in Redis one ``EVALSHA`` round trip (the script reads
Redis's own clock, so processes agree on time).

Every ``enforce``d limit is also reported to the client (IETF HTTPAPI ``RateLimit-Policy`` and
``RateLimit`` fields): the edge opens a ``collect_verdicts()`` scope per request, and the
middleware writes the fields from what was collected.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from limits import parse

from questline.kit.errors import RateLimited

if TYPE_CHECKING:  # the scaled tier's client, imported where it is made (kit.runtime)
    from redis.asyncio import Redis

# The sweep of expired in-memory entries runs when the table grows past this many identities.
_MEMORY_SWEEP_AT = 50_000

_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
if new_tat - now > period then
  return {0, new_tat - period - now, tat - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000))
return {1, 0, new_tat - now}
"""


@dataclass(frozen=True)
class Rule:
    """A parsed rule: at most ``limit`` hits per ``period`` seconds (with bursts up to ``limit``)."""

    text: str
    limit: int
    period: int

    @property
    def interval(self) -> float:
        return self.period / self.limit


@cache
def parse_rule(text: str) -> Rule:
    item = parse(text)
    return Rule(text, int(item.amount), int(item.get_expiry()))


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int  # whole seconds until a hit would be allowed (0 when allowed)
    policy: str = ""
    limit: int = 0
    period: int = 0
    remaining: int = 0  # hits still allowed right now
    reset: int = 0  # whole seconds until the full quota is back


def _verdict(rule: Rule, policy: str, allowed: bool, wait: float, backlog: float) -> Verdict:
    """``wait``: seconds until allowed; ``backlog``: ``tat - now`` after this hit, in seconds."""
    remaining = max(0, math.floor((rule.period - backlog) / rule.interval + 1e-9))
    return Verdict(allowed, 0 if allowed else max(1, math.ceil(wait)), policy, rule.limit, rule.period,
                   remaining if allowed else 0, max(0, math.ceil(backlog)))


_collected: ContextVar[list[Verdict] | None] = ContextVar("questline_rate_verdicts", default=None)


@contextmanager
def collect_verdicts() -> Iterator[list[Verdict]]:
    """Collect the verdicts of every limit enforced inside this block (one request)."""
    verdicts: list[Verdict] = []
    token = _collected.set(verdicts)
    try:
        yield verdicts
    finally:
        _collected.reset(token)


def rate_limit_headers(verdicts: list[Verdict]) -> list[tuple[bytes, bytes]]:
    """``RateLimit-Policy`` and ``RateLimit`` for the limits a request met (one entry per policy)."""
    latest: dict[str, Verdict] = {}
    for verdict in verdicts:
        latest[verdict.policy] = verdict
    if not latest:
        return []
    policies = ", ".join(f'"{v.policy}";q={v.limit};w={v.period}' for v in latest.values())
    current = ", ".join(f'"{v.policy}";r={v.remaining};t={v.reset}' for v in latest.values())
    return [(b"ratelimit-policy", policies.encode()), (b"ratelimit", current.encode())]


class RateLimiter:
    def __init__(self, redis: Redis | None = None, *, namespace: str = "questline",
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._redis = redis
        self._now = monotonic
        self._prefix = f"{namespace}:limits"
        self._tats: dict[str, float] = {}
        self._sweep_at = _MEMORY_SWEEP_AT
        self._script = redis.register_script(_GCRA) if redis is not None else None

    async def hit(self, rule: str, *identity: str) -> Verdict:
        """Count one hit of ``identity`` against ``rule``; the first identity part names the policy."""
        parsed = parse_rule(rule)
        policy = identity[0] if identity else "default"
        key = ":".join((rule, *identity))
        if self._script is None:
            return self._hit_memory(parsed, policy, key)
        micro = 1_000_000
        allowed, wait, backlog = await self._script(
            keys=[f"{self._prefix}:{key}"], args=[round(parsed.interval * micro), parsed.period * micro],
        )
        if allowed:
            return _verdict(parsed, policy, True, 0.0, int(backlog) / micro)
        return _verdict(parsed, policy, False, int(wait) / micro, int(backlog) / micro)

    def _hit_memory(self, rule: Rule, policy: str, key: str) -> Verdict:
        now = self._now()
        tat = max(self._tats.get(key, now), now)
        new_tat = tat + rule.interval
        if new_tat - now > rule.period:
            return _verdict(rule, policy, False, new_tat - rule.period - now, tat - now)
        if len(self._tats) >= self._sweep_at:
            self._sweep(now)
        self._tats[key] = new_tat
        return _verdict(rule, policy, True, 0.0, new_tat - now)

    def _sweep(self, now: float) -> None:
        """Forget identities whose quota is whole again (their entry says nothing any more).

        The next sweep waits until the table has doubled, so the cost stays constant per hit
        even when most identities are active."""
        self._tats = {key: tat for key, tat in self._tats.items() if tat > now}
        self._sweep_at = max(_MEMORY_SWEEP_AT, 2 * len(self._tats))

    async def enforce(self, rule: str, *identity: str, what: str) -> None:
        verdict = await self.hit(rule, *identity)
        collected = _collected.get()
        if collected is not None:
            collected.append(verdict)
        if not verdict.allowed:
            raise RateLimited(f"rate limit for {what} exceeded ({rule})", retry_after=verdict.retry_after)

    async def reset(self) -> None:
        self._tats.clear()
        if self._redis is not None:
            keys = [key async for key in self._redis.scan_iter(match=f"{self._prefix}:*")]
            if keys:
                await self._redis.delete(*keys)
