"""How long the event loop keeps ready work waiting, and how long the garbage collector stops it.

One process serves requests, runs the worker and the scheduler on one event loop: any stretch of
synchronous work (a worker batch's handling, a collection of the old generation) delays every
request in flight by as long. ``watch_loop`` measures it from inside: a timer due every
``PROBE_SECONDS`` records how late it fired (``questline_event_loop_lag_seconds``), and a
``gc.callbacks`` hook records each collection's pause by generation
(``questline_gc_pause_seconds``). Both are histograms on ``/metrics``.

``settle_gc`` is what those figures led to (docs/benchmarks.md, "Single events"): with
CPython's defaults a busy ``serve`` ran a full collection every second or so, each walking every
object the process holds (about 300,000 after start: modules, classes, routes, schemas) and
stopping the loop for 0.2-1 s, about a third of the process's time under load.
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

from questline.kit.metrics import HttpMetrics

PROBE_SECONDS = 0.025  # 40 wake-ups a second: well under 0.1% of a core
# Young-generation threshold of a settled server (CPython's default: 700). Requests in flight hold
# their objects for tens of milliseconds: with 700, many live through two young collections and
# are promoted, then fill the old generation and bring on full collections.
YOUNG_GENERATION = 5000


class _GcTimer:
    """A ``gc.callbacks`` entry: the time of each collection, by generation."""

    def __init__(self, metrics: HttpMetrics) -> None:
        self._metrics = metrics
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started:
            self._metrics.gc_pause.labels(str(info.get("generation", "?"))).observe(
                time.perf_counter() - self._started)
            self._started = 0.0


async def watch_loop(metrics: HttpMetrics, stop: asyncio.Event) -> None:
    """Until ``stop``: the event loop's lag and the collector's pauses into ``metrics``."""
    loop = asyncio.get_running_loop()
    timer = _GcTimer(metrics)
    gc.callbacks.append(timer)
    try:
        while not stop.is_set():
            due = loop.time() + PROBE_SECONDS
            await asyncio.sleep(PROBE_SECONDS)
            metrics.loop_lag.observe(max(0.0, loop.time() - due))
    finally:
        gc.callbacks.remove(timer)


def settle_gc() -> None:
    """Once a long-running server has started: collect, move every object alive then (modules,
    classes, routes, schemas, pools; they live as long as the process) out of the collector's
    reach with ``gc.freeze``, so a full collection walks only what was made since, and let the
    young generation grow to ``YOUNG_GENERATION`` objects between collections."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION, middle, old)
