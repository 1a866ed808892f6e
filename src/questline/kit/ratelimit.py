"""Rate limits in constant time: GCRA, in memory by default, in Redis when scaled out.

A rule such as ``"600/minute"`` (the ``limits`` package's notation, parsed here by ``parse_rule``;
the settings validate with it) allows
bursts up to 600 and a sustained 600 per minute. The generic cell rate algorithm keeps one
number per identity, the theoretical arrival time ``tat``: a hit is allowed when
``max(tat, now) + interval - now <= period`` and moves ``tat`` on by one ``interval``
(``period / limit``). A refusal says exactly when the next hit would pass (``Retry-After``).
In memory that is one dict look-up.

In Redis (one limit shared by every process) a process does not pay a round trip per hit: it
takes a *lease* of up to ``n`` hits at once (one ``EVALSHA`` moving ``tat`` on by ``n``
intervals; the script reads Redis's own clock, so processes agree on time) and spends it
locally, fetching the next lease in the background when half of it is gone. A key starts with
leases of one hit, exact like a round trip per hit, and its lease grows fourfold each time one
is used up while still fresh, up to what the key's own pace spends in ``LEASE_TARGET_SECONDS`` and at
most ``limit // 50`` (at most 1,000); a key that goes quiet starts again at one. A lease goes
stale twice as long after its grant as the key's pace needs to spend what the process holds
(at least ``LEASE_SECONDS``, at most ``LEASE_MAX_SECONDS``): a steady key, fast or slow, finds
its next hits in hand and refills in the background, about once per ``LEASE_TARGET_SECONDS / 2``
(a busy key capped at ``limit // 50``: once per half lease). A refusal from Redis is remembered
until its ``Retry-After`` has passed.

The bound this keeps, across any number of processes: Redis grants no more hits than exact GCRA
would, and a process holds at most one and a half leases of a key (the rest of one lease and the
next, fetched when half was gone), dropping whatever is left once it is stale (at most
``LEASE_MAX_SECONDS`` after its latest grant). So in any time window the engine admits at most
what exact GCRA admits in that window plus what the processes held at its start: at most
1.5 × ``limit // 50`` hits (3% of the limit) per process. The other side: hits leased by one
process and not yet spent are not available to the others, so a key served by ``k`` processes
may be refused up to ``k`` × 1.5 leases early (for at most ``LEASE_MAX_SECONDS`` after a process
stops spending them). Rules of fewer than 100 hits per period (sign-ins, the tests' small
limits) lease one hit at a time: exact, as a round trip per hit was. ``RateLimit`` fields from a
lease are approximate by the same amount.

Every ``enforce``d limit is also reported to the client (IETF HTTPAPI ``RateLimit-Policy`` and
``RateLimit`` fields): the edge opens a ``collect_verdicts()`` scope per request, and the
middleware writes the fields from what was collected.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from questline.kit.errors import RateLimited

if TYPE_CHECKING:  # the scaled tier's client, imported where it is made (kit.runtime)
    from redis.asyncio import Redis

# The sweep of expired in-memory entries runs when the table grows past this many identities.
_MEMORY_SWEEP_AT = 50_000
# Leases (Redis): how long a process may spend a lease (at least, and at most: about twice what the
# key's pace needs), how many seconds of that pace one lease holds, and its largest size (a share of the limit).
LEASE_SECONDS = 1.0
LEASE_MAX_SECONDS = 10.0
LEASE_TARGET_SECONDS = 5.0
LEASE_SHARE = 50
LEASE_MAX = 1000
LEASE_GROWTH = 4  # a lease used up while fresh: the next is this many times larger (within the pace and cap)

# GCRA for up to ARGV[3] hits at once: grants as many as fit now (at least one, else a refusal).
# Returns {granted, microseconds until a hit would pass (refusals), tat - now after the grant}.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local room = math.floor((period - (tat - now)) / interval)
if room < 1 then
  return {0, tat + interval - period - now, tat - now}
end
local granted = math.min(want, room)
local new_tat = tat + granted * interval
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000))
return {granted, 0, new_tat - now}
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


# The ``limits`` notation ("600/minute", "10 per second", "100/2 hours"; several rules joined by
# , ; or | of which the first counts), parsed here: importing ``limits`` for it cost 1.6 MB of an
# idle server's memory (its storage backends and their dependencies come with it).
_RULE = r"\s*([0-9]+)\s*(?:/|\s*per\s*)\s*([0-9]+)?\s*([a-z]+)\s*"
_RULES = re.compile(rf"^{_RULE}(?:[,;|]{_RULE})*$", re.IGNORECASE)
_ONE = re.compile(_RULE, re.IGNORECASE)
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86_400, "month": 30 * 86_400,
                 "year": 360 * 86_400}
_UNIT_SECONDS |= {f"{unit}s": seconds for unit, seconds in _UNIT_SECONDS.items()}  # "2 hours"


@cache
def parse_rule(text: str) -> Rule:
    """``text`` in the ``limits`` notation; ``ValueError`` when it is not one."""
    rules: list[Rule] = []
    for part in re.split(r"[,;|]", text) if _RULES.match(text) else []:
        match = _ONE.match(part)
        seconds = _UNIT_SECONDS.get(match.group(3).lower()) if match else None
        if match is None or seconds is None:
            break
        rules.append(Rule(text, int(match.group(1)), seconds * int(match.group(2) or 1)))
    else:
        if rules:
            return rules[0]
    raise ValueError(f"couldn't parse rate limit string {text!r}")


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


def _retrieve(task: asyncio.Task[None]) -> None:
    """A refill's failure is seen by the hits that await it; never reported as "never retrieved"."""
    if not task.cancelled():
        task.exception()


def lease_cap(rule: Rule) -> int:
    """The most hits one process leases at once for ``rule`` (1: every hit asks Redis)."""
    return max(1, min(LEASE_MAX, rule.limit // LEASE_SHARE))


class _Lease:
    """Hits of one key that Redis granted this process, to be spent before ``expires``."""

    __slots__ = ("arrived", "backlog", "blocked_until", "expires", "granted_at", "pace", "refill", "size", "tokens",
                 "waiting")

    def __init__(self) -> None:
        self.tokens = 0
        self.size = 0  # the last lease's size: the next is four times it while the key stays busy
        self.expires = 0.0
        self.granted_at = 0.0
        self.backlog = 0.0  # tat - now in Redis after the last grant, in seconds
        self.blocked_until = 0.0  # Redis refused: no hit passes before this
        self.refill: asyncio.Task[None] | None = None
        self.waiting = 0  # hits awaiting the refill in flight
        self.arrived = 0  # hits since the last grant (the key's pace)
        self.pace = math.inf  # hits per second between the last two grants (unknown: as fast as can be)


class RateLimiter:
    def __init__(self, redis: Redis | None = None, *, namespace: str = "questline",
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._redis = redis
        self._now = monotonic
        self._prefix = f"{namespace}:limits"
        self._tats: dict[str, float] = {}
        self._sweep_at = _MEMORY_SWEEP_AT
        self._script = redis.register_script(_GCRA) if redis is not None else None
        self._leases: dict[str, _Lease] = {}
        self.round_trips = 0  # leases asked of Redis (for tests and benchmarks)

    async def hit(self, rule: str, *identity: str) -> Verdict:
        """Count one hit of ``identity`` against ``rule``; the first identity part names the policy."""
        parsed = parse_rule(rule)
        policy = identity[0] if identity else "default"
        key = ":".join((rule, *identity))
        if self._script is None:
            return self._hit_memory(parsed, policy, key)
        lease = self._leases.get(key)
        if lease is None:
            if len(self._leases) >= self._sweep_at:
                self._sweep_leases(self._now())
            lease = self._leases[key] = _Lease()
        lease.arrived += 1
        while True:  # concurrent hits may take what a refill brought before this one wakes: wait again
            now = self._now()
            if lease.tokens > 0 and lease.expires <= now:
                lease.tokens = 0  # too old to spend: the bound above depends on it
            if lease.tokens > 0:
                lease.tokens -= 1
                if (lease.refill is None and lease.size > 1 and lease.tokens <= lease.size // 2
                        and lease.blocked_until <= now):
                    lease.refill = self._start_refill(parsed, key, lease, background=True)
                backlog = lease.backlog - (now - lease.granted_at) - lease.tokens * parsed.interval
                return _verdict(parsed, policy, True, 0.0, max(0.0, backlog))
            if lease.blocked_until > now:
                return _verdict(parsed, policy, False, lease.blocked_until - now, lease.backlog)
            if lease.refill is None:
                lease.refill = self._start_refill(parsed, key, lease, background=False)
            lease.waiting += 1
            try:
                # Shielded: a request that goes away must not cancel the refill other hits wait for.
                await asyncio.shield(lease.refill)
            finally:
                lease.waiting -= 1

    def _start_refill(self, rule: Rule, key: str, lease: _Lease, *, background: bool) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self._refill(rule, key, lease, background=background))
        task.add_done_callback(_retrieve)
        return task

    async def _ask(self, rule: Rule, key: str, want: int) -> tuple[int, float, float]:
        """One round trip: (hits granted, seconds until one would pass, ``tat - now`` in seconds)."""
        assert self._script is not None
        self.round_trips += 1
        micro = 1_000_000
        granted, wait, backlog = await self._script(
            keys=[f"{self._prefix}:{key}"], args=[round(rule.interval * micro), rule.period * micro, want])
        return int(granted), int(wait) / micro, int(backlog) / micro

    async def _refill(self, rule: Rule, key: str, lease: _Lease, *, background: bool) -> None:
        """Fetch the next lease; a background refill that fails leaves the next hit that finds none to ask."""
        try:
            # A lease used up while fresh grows LEASE_GROWTH-fold, up to what the key's pace spends in
            # LEASE_TARGET_SECONDS; after a quiet spell a key starts again at one hit. Hits already
            # waiting are asked for at once.
            grow = 1
            if lease.size > 0 and self._now() < lease.expires:
                grow = lease.size * LEASE_GROWTH
                paced = lease.pace * LEASE_TARGET_SECONDS
                if paced < grow:
                    grow = math.ceil(paced)
            want = min(lease_cap(rule), max(grow, lease.waiting, 1))
            granted, wait, backlog = await self._ask(rule, key, want)
        except Exception:
            if background:
                return
            raise
        finally:
            lease.refill = None
        now = self._now()
        elapsed = now - lease.granted_at
        if lease.arrived and lease.granted_at:
            lease.pace = lease.arrived / elapsed if elapsed > 0 else math.inf
        lease.arrived = 0
        lease.backlog, lease.granted_at = backlog, now
        if granted == 0:
            lease.blocked_until = now + wait
            lease.size = 0
            return
        if lease.expires <= now:
            lease.tokens = 0
        lease.tokens += granted
        lease.size = granted
        # Fresh for twice the time the key's pace needs to spend what is in hand (within the bounds).
        life = 2 * lease.tokens / lease.pace if lease.pace > 0 else LEASE_MAX_SECONDS
        lease.expires = now + min(LEASE_MAX_SECONDS, max(LEASE_SECONDS, life))

    def _sweep_leases(self, now: float) -> None:
        """Forget keys with nothing to spend, nothing in flight and no refusal to remember."""
        self._leases = {key: lease for key, lease in self._leases.items()
                        if lease.refill is not None or (lease.tokens and lease.expires > now)
                        or lease.blocked_until > now}
        self._sweep_at = max(_MEMORY_SWEEP_AT, 2 * len(self._leases))

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
        self._leases.clear()
        if self._redis is not None:
            # SCAN walks the whole keyspace whatever the pattern: 1,000 keys a call, not Redis's 10.
            keys = [key async for key in self._redis.scan_iter(match=f"{self._prefix}:*", count=1000)]
            if keys:
                await self._redis.delete(*keys)
