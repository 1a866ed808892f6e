"""``questline serve`` with every event-loop callback timed by thread CPU time: what holds the loop.

Run it in place of ``python -m questline`` (same arguments), e.g. through ``bench/edge_boards.py
--wrap bench/edge_loopcpu.py``. The server runs on the standard library's asyncio loop (uvloop's
callbacks cannot be wrapped), so its absolute costs are a little higher than under ``serve``.
``kill -USR1 <pid>`` writes the report to ``$LOOPCPU_OUT`` (default ``/tmp/loopcpu-<pid>.txt``) and starts
counting afresh:

- each kind of callback (a task by its coroutine's name) with its count, total and longest CPU time;
- the steps that took more than ``$LOOPCPU_MS`` (default 30) ms of CPU;
- the stacks of callbacks still running after that many ms of wall time (sampled by a thread);
- the rate limiter's Redis round trips by policy, and its hits.

CPU time, not wall time, so a busy machine (the server waiting for its core) does not make a
callback look long; the stacks are wall-time samples and do.
"""

from __future__ import annotations

import asyncio
import collections
import os
import runpy
import signal
import sys
import tempfile
import threading
import time
import traceback
from types import FrameType
from typing import Any

STALL_MS = float(os.environ.get("LOOPCPU_MS", "30"))
OUT = os.environ.get("LOOPCPU_OUT", os.path.join(tempfile.gettempdir(), f"loopcpu-{os.getpid()}.txt"))

_loop_thread = threading.get_ident()
_running: dict[str, Any] = {"started": 0.0, "sampled": False}
_stats: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0, 0.0])  # count, CPU total, CPU max
_long: list[tuple[float, str]] = []
_stacks: collections.Counter[str] = collections.Counter()
_limiter: collections.Counter[str] = collections.Counter()
_run = asyncio.events.Handle._run


def _name(handle: asyncio.events.Handle) -> str:
    callback = handle._callback  # type: ignore[attr-defined]
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro = owner.get_coro()
        return f"task {getattr(coro, '__qualname__', coro)}"
    return str(getattr(callback, "__qualname__", repr(callback)))[:120]


def _timed(self: asyncio.events.Handle) -> None:
    _running["sampled"] = False
    cpu = time.thread_time()
    _running["started"] = time.perf_counter()
    try:
        _run(self)
    finally:
        cpu = time.thread_time() - cpu
        _running["started"] = 0.0
        name = _name(self)
        entry = _stats[name]
        entry[0] += 1
        entry[1] += cpu
        entry[2] = max(entry[2], cpu)
        if cpu * 1000 > STALL_MS:
            _long.append((cpu * 1000, name))


def _sampler() -> None:
    while True:
        time.sleep(0.005)
        started = _running["started"]
        if started and not _running["sampled"] and (time.perf_counter() - started) * 1000 > STALL_MS:
            frame: FrameType | None = sys._current_frames().get(_loop_thread)
            if frame is not None:
                _running["sampled"] = True
                _stacks["".join(traceback.format_stack(frame)[-20:])] += 1


def _count_limiter() -> None:
    from questline.kit import ratelimit

    ask, hit = ratelimit.RateLimiter._ask, ratelimit.RateLimiter.hit

    async def counted_ask(self: ratelimit.RateLimiter, rule: ratelimit.Rule, key: str,
                          want: int) -> tuple[int, float, float]:
        _limiter[f"round trip, policy {key.split(':')[1]}, {'one hit' if want == 1 else 'more'}"] += 1
        return await ask(self, rule, key, want)

    async def counted_hit(self: ratelimit.RateLimiter, rule: str, *identity: str) -> ratelimit.Verdict:
        _limiter[f"hit, policy {identity[0] if identity else 'default'}"] += 1
        return await hit(self, rule, *identity)

    ratelimit.RateLimiter._ask = counted_ask  # type: ignore[method-assign]
    ratelimit.RateLimiter.hit = counted_hit  # type: ignore[method-assign]


def _report(*_: object) -> None:
    with open(OUT, "w") as out:
        print("== callbacks by CPU: count, total ms, longest ms", file=out)
        for name, (count, total, longest) in sorted(_stats.items(), key=lambda kv: -kv[1][1])[:40]:
            print(f"{int(count):8d} {total * 1000:10.1f} {longest * 1000:8.1f}  {name}", file=out)
        print(f"== steps over {STALL_MS:g} ms of CPU: {len(_long)}", file=out)
        for name, count in collections.Counter(n for _, n in _long).most_common(30):
            print(f"{count:6d} longest {max(ms for ms, n in _long if n == name):7.1f} ms  {name}", file=out)
        print("== rate limiter", file=out)
        for what, count in sorted(_limiter.items()):
            print(f"{count:8d}  {what}", file=out)
        print(f"== stacks of callbacks still running after {STALL_MS:g} ms of wall time", file=out)
        for stack, count in _stacks.most_common(25):
            print(f"---- {count} times\n{stack}", file=out)
    _stats.clear()
    _long.clear()
    _stacks.clear()
    _limiter.clear()


def main() -> None:
    import uvicorn

    asyncio.events.Handle._run = _timed  # type: ignore[method-assign]
    threading.Thread(target=_sampler, daemon=True).start()
    signal.signal(signal.SIGUSR1, _report)
    _count_limiter()
    run = uvicorn.run
    uvicorn.run = lambda *a, **k: run(*a, **{**k, "loop": "asyncio"})
    sys.argv = ["questline", *sys.argv[1:]]
    runpy.run_module("questline", run_name="__main__")


if __name__ == "__main__":
    main()
