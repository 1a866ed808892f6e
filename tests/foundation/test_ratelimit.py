"""The rate limiter itself: GCRA in memory (on a clock the test moves) and in Redis (one round trip)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from redis.asyncio import Redis

from questline.kit import ratelimit
from questline.kit.errors import RateLimited
from questline.kit.ratelimit import RateLimiter, collect_verdicts, rate_limit_headers
from questline.kit.settings import Settings
from tests.conftest import REDIS_URL


@pytest.mark.parametrize(("text", "limit", "period"), [
    ("600/minute", 600, 60), ("10 per second", 10, 1), ("100/2 hours", 100, 7200), ("5 / 3 Minutes", 5, 180),
    ("7/month", 7, 30 * 86_400), ("3/years", 3, 360 * 86_400), ("1 per 2 days, 5/second", 1, 172_800),
    ("1/hour;2/minute", 1, 3600), ("  10 / second  ", 10, 1),
])
def test_rules_in_the_limits_notation_are_read(text: str, limit: int, period: int) -> None:
    rule = ratelimit.parse_rule(text)
    assert (rule.limit, rule.period, rule.text) == (limit, period, text)


@pytest.mark.parametrize("text", ["", "abc", "10/s", "10/fortnight", "/minute", "10 minute", "10/secondss",
                                  "5;6", "1/hour|2/min", "ten/second"])
def test_what_is_not_a_rule_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="couldn't parse rate limit string"):
        ratelimit.parse_rule(text)


def test_a_setting_that_is_not_a_rule_stops_the_engine() -> None:
    with pytest.raises(ValueError, match="is not a rate limit such as"):
        Settings(rate_limit_per_key="100/fortnight")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_burst_then_one_per_interval_in_memory() -> None:
    clock = Clock()
    limiter = RateLimiter(monotonic=clock)
    verdicts = [await limiter.hit("6/minute", "caller", "k1") for _ in range(6)]
    assert all(v.allowed for v in verdicts)
    assert [v.remaining for v in verdicts] == [5, 4, 3, 2, 1, 0]
    assert verdicts[-1].reset == 60 and verdicts[0].reset == 10
    refused = await limiter.hit("6/minute", "caller", "k1")
    assert (refused.allowed, refused.retry_after, refused.remaining) == (False, 10, 0)
    assert (await limiter.hit("6/minute", "caller", "k2")).allowed  # another identity, its own budget
    clock.now += 9.5
    assert not (await limiter.hit("6/minute", "caller", "k1")).allowed  # a refusal costs nothing
    clock.now += 0.5
    assert (await limiter.hit("6/minute", "caller", "k1")).allowed  # one interval later: one more
    assert not (await limiter.hit("6/minute", "caller", "k1")).allowed
    clock.now += 60
    assert (await limiter.hit("6/minute", "caller", "k1")).remaining == 5  # whole again


async def test_enforce_reports_what_it_met() -> None:
    limiter = RateLimiter(monotonic=Clock())
    with collect_verdicts() as met:
        await limiter.enforce("2/second", "caller", "k", what="this key")
        await limiter.enforce("10/minute", "player", "p", what="this player")
        await limiter.enforce("2/second", "caller", "k", what="this key")
        with pytest.raises(RateLimited) as refused:
            await limiter.enforce("2/second", "caller", "k", what="this key")
    assert refused.value.headers["Retry-After"] == "1"
    assert dict(rate_limit_headers(met)) == {
        b"ratelimit-policy": b'"caller";q=2;w=1, "player";q=10;w=60',
        b"ratelimit": b'"caller";r=0;t=1, "player";r=9;t=6',
    }


async def test_the_memory_table_forgets_whole_quotas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ratelimit, "_MEMORY_SWEEP_AT", 100)
    clock = Clock()
    limiter = RateLimiter(monotonic=clock)
    for i in range(100):
        await limiter.hit("10/second", "caller", f"k{i}")
    clock.now += 1
    await limiter.hit("10/second", "caller", "late")
    assert len(limiter._tats) == 1  # the hundred were whole again and forgotten
    for i in range(300):  # all active: the table grows, and sweeps only when it has doubled
        await limiter.hit("10/second", "caller", f"busy{i}")
    assert len(limiter._tats) == 301 and limiter._sweep_at >= 200


@pytest.mark.redis
@pytest.mark.skipif(not REDIS_URL, reason="needs Redis (QUESTLINE_TEST_REDIS_URL)")
async def test_a_burst_then_refusal_in_redis() -> None:
    redis = Redis.from_url(REDIS_URL or "")
    namespace = f"qltest:{uuid.uuid4().hex[:8]}"
    try:
        limiter, other_process = RateLimiter(redis, namespace=namespace), RateLimiter(redis, namespace=namespace)
        allowed = [await (limiter if i % 2 else other_process).hit("6/minute", "caller", "k") for i in range(6)]
        assert all(v.allowed for v in allowed) and [v.remaining for v in allowed] == [5, 4, 3, 2, 1, 0]
        refused = await limiter.hit("6/minute", "caller", "k")
        assert not refused.allowed and 1 <= refused.retry_after <= 10
        keys = [k async for k in redis.scan_iter(match=f"{namespace}:limits:*", count=1000)]
        assert len(keys) == 1 and 0 < await redis.pttl(keys[0]) <= 60_000
        await limiter.reset()
        assert [k async for k in redis.scan_iter(match=f"{namespace}:limits:*", count=1000)] == []
    finally:
        await redis.aclose()


@pytest.mark.redis
@pytest.mark.skipif(not REDIS_URL, reason="needs Redis (QUESTLINE_TEST_REDIS_URL)")
async def test_two_processes_share_one_limit_through_leases_within_the_bound() -> None:
    """Two limiters with their own Redis connections (two processes) hammer one key at once: they
    admit the limit give or take the stated bound, asking Redis far less often than once a hit."""
    rule = "1000/hour"  # one interval is 3.6 s: nothing refills while the test runs
    cap = ratelimit.lease_cap(ratelimit.parse_rule(rule))
    assert cap == 20
    clients = [Redis.from_url(REDIS_URL or ""), Redis.from_url(REDIS_URL or "")]
    namespace = f"qltest:{uuid.uuid4().hex[:8]}"
    try:
        one, two = (RateLimiter(client, namespace=namespace) for client in clients)

        async def hammer(limiter: RateLimiter, hits: int) -> list[bool]:
            verdicts = await asyncio.gather(*(limiter.hit(rule, "caller", "hot") for _ in range(hits)))
            return [v.allowed for v in verdicts]

        first, second = await asyncio.gather(hammer(one, 800), hammer(two, 800))
        allowed = sum(first) + sum(second)
        # Redis grants at most the limit (plus a hit per 3.6 s elapsed); hits one process leased and
        # never spent are lost to the other: at most 1.5 leases each.
        assert 1000 - 2 * 1.5 * cap <= allowed <= 1001
        assert sum(first) > 0 and sum(second) > 0
        trips = one.round_trips + two.round_trips
        assert trips <= 200, trips  # against 1,600 round trips without leases
        # Redis's own state agrees: the key's tat is a whole period ahead
        assert 3_540_000 <= await clients[0].pttl(f"{namespace}:limits:{rule}:caller:hot") <= 3_600_000

        # Spend what is left in hand; then refusals come from the remembered Retry-After, not Redis.
        while (await one.hit(rule, "caller", "hot")).allowed:
            pass
        before = one.round_trips
        refused = await one.hit(rule, "caller", "hot")
        assert not refused.allowed and refused.retry_after >= 1 and one.round_trips == before
    finally:
        for client in clients:
            await client.aclose()


@pytest.mark.redis
@pytest.mark.skipif(not REDIS_URL, reason="needs Redis (QUESTLINE_TEST_REDIS_URL)")
async def test_a_lease_grows_while_the_key_is_busy_and_is_dropped_when_stale() -> None:
    clock = Clock()
    redis = Redis.from_url(REDIS_URL or "")
    namespace = f"qltest:{uuid.uuid4().hex[:8]}"
    rule = "6000/minute"  # leases of up to 120 hits
    try:
        limiter = RateLimiter(redis, namespace=namespace, monotonic=clock)
        started = time.monotonic()
        first = await limiter.hit(rule, "caller", "k")
        assert first.allowed and first.remaining == 5999 and limiter.round_trips == 1  # a cold key: one hit
        verdicts = [await limiter.hit(rule, "caller", "k") for _ in range(499)]
        assert all(v.allowed for v in verdicts)
        assert limiter.round_trips <= 10  # 1, 4, 16, 64, then 120 at a time
        refilled = (time.monotonic() - started) * 100  # Redis's clock gives back a hit per 10 ms
        # What the client is told: the limit less the 500 hits spent (hits leased but unspent are still ours)
        assert 5499 <= verdicts[-1].remaining <= 5500 + refilled + 1
        # Redis counted every hit spent, plus at most a lease and a half still in hand
        granted = (await redis.pttl(f"{namespace}:limits:{rule}:caller:k") / 10) + refilled
        assert 495 <= granted <= 500 + 1.5 * 120 + 1
        clock.now += ratelimit.LEASE_SECONDS + 0.5  # the hits in hand go stale
        before = limiter.round_trips
        assert (await limiter.hit(rule, "caller", "k")).allowed
        assert limiter.round_trips == before + 1  # nothing stale was spent: it asked Redis again
    finally:
        await redis.aclose()


@pytest.mark.redis
@pytest.mark.skipif(not REDIS_URL, reason="needs Redis (QUESTLINE_TEST_REDIS_URL)")
async def test_a_steady_key_keeps_a_lease_sized_to_its_pace() -> None:
    """A key hit ten times a second: its lease grows to what it spends in LEASE_TARGET_SECONDS (not to
    the cap), stays fresh past LEASE_SECONDS, and is refilled before it runs out; stale at LEASE_MAX_SECONDS."""
    clock = Clock()
    redis = Redis.from_url(REDIS_URL or "")
    namespace = f"qltest:{uuid.uuid4().hex[:8]}"
    # Leases of up to 1,000 hits; a hit is 10 ms of Redis's clock, so the test's own real time (which
    # Redis gives back, counted below) stays well under what it spends even on a loaded machine.
    rule = "60000/10 minutes"
    try:
        limiter = RateLimiter(redis, namespace=namespace, monotonic=clock)
        started = time.monotonic()
        waited = 0
        for _ in range(300):  # 30 s at 10 hits a second
            before = limiter.round_trips
            assert (await limiter.hit(rule, "caller", "steady")).allowed
            waited += limiter.round_trips > before  # a background refill only asks Redis once the loop runs it
            await asyncio.sleep(0)  # a background refill runs
            clock.now += 0.1
        lease = limiter._leases[f"{rule}:caller:steady"]
        # The pace is 10 hits a second: leases of about 50 hits, refilled in the background at half.
        assert 40 <= lease.size <= 60, lease.size
        assert lease.expires - clock.now > ratelimit.LEASE_SECONDS
        # 1, 4, 16, then the pace's 50 while it grows, then one per 25 hits or so (without pacing: a round trip
        # for most hits, as every lease of 16 went stale after a second with hits left).
        assert limiter.round_trips <= 20, limiter.round_trips
        assert waited <= 3, waited  # only the first leases (of 1 hit) made a hit wait for Redis
        # Redis counted the hits spent and at most a lease and a half in hand (its clock gives back one per 10 ms).
        granted = (await redis.pttl(f"{namespace}:limits:{rule}:caller:steady") / 10
                   + (time.monotonic() - started) * 100)
        assert 290 <= granted <= 301 + 1.5 * 60 + 1, granted
        clock.now += ratelimit.LEASE_MAX_SECONDS + 0.1  # whatever is left goes stale
        before = limiter.round_trips
        assert (await limiter.hit(rule, "caller", "steady")).allowed
        assert limiter.round_trips == before + 1 and lease.size == 1  # asked again, from one hit
    finally:
        await redis.aclose()
